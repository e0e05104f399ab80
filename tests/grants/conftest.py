import datetime

import pytest
from django.utils import timezone

from tests.factories import PoolPeriodFactory, StaffFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def actor(db):
    return StaffFactory()


@pytest.fixture
def period(db):
    """An H200 pool period covering today and the next months (capacity 10,000 GPU-hours)."""
    today = timezone.localdate()
    return PoolPeriodFactory(
        starts_on=today.replace(day=1) - datetime.timedelta(days=31),
        ends_on=today + datetime.timedelta(days=400),
        capacity_gpu_hours="10000.00",
    )


@pytest.fixture
def freeze(monkeypatch):
    """freeze(moment): timezone.now() answers ``moment`` from now on (time travel without a dependency)."""

    def set_now(moment):
        monkeypatch.setattr("django.utils.timezone.now", lambda: moment)

    return set_now


# The provider simulator (a real HTTP server in its own process), shared with the provider tests.
from tests.providers.conftest import _simulator_process, simulator  # noqa: E402, F401
