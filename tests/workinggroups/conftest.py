import pytest

from tests.factories import UserFactory
from tests.workinggroups.factories import GroupMemberFactory, WorkingGroupFactory, member_user


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Uploads go to a temporary folder, removed with the test."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def group(db):
    return WorkingGroupFactory()


@pytest.fixture
def chair(group):
    return GroupMemberFactory(group=group, role="chair").user


@pytest.fixture
def member(group):
    """A member of ``group`` (of a member organization)."""
    return GroupMemberFactory(group=group).user


@pytest.fixture
def alliance_member(db):
    """A person of a member organization who is not in the group."""
    return member_user()


@pytest.fixture
def outsider(db):
    """Logged in, but of no member organization."""
    return UserFactory()
