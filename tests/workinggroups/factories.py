import datetime

import factory
from django.utils import timezone

from apps.workinggroups.models import (
    GroupMember,
    Meeting,
    Motion,
    MotionOption,
    Post,
    Thread,
    WorkingGroup,
)
from tests.factories import OrganizationFactory, OrgRoleFactory, UserFactory


def member_user(**kwargs):
    """A user of an organization with an active alliance membership."""
    role = OrgRoleFactory(**kwargs)
    return role.user


class WorkingGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkingGroup

    slug = factory.Sequence(lambda n: f"wg-{n}")
    name_ja = factory.Sequence(lambda n: f"テスト分科会{n}")
    name_en = factory.Sequence(lambda n: f"Test working group {n}")
    charter_ja = "医療画像 AI の知見を共有する。"
    charter_en = "Share know-how on medical imaging AI."
    industry = "medical"
    visibility = "members_only"
    join_policy = "open"
    status = "active"


class GroupMemberFactory(factory.django.DjangoModelFactory):
    """A seat; by default for a user of a fresh member organization, representing it."""

    class Meta:
        model = GroupMember

    group = factory.SubFactory(WorkingGroupFactory)
    user = factory.LazyFunction(member_user)
    organization = factory.LazyAttribute(
        lambda o: o.user.org_roles.first().organization if o.user.org_roles.exists() else None
    )
    role = "member"


class MeetingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Meeting

    group = factory.SubFactory(WorkingGroupFactory)
    title = factory.Sequence(lambda n: f"第{n}回 定例会")
    starts_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=7))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + datetime.timedelta(hours=2))
    location = "東京都千代田区 会議室A"
    online_url = "https://meet.example.jp/wg"
    agenda = "1. 開会\n2. 報告"


class ThreadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Thread

    group = factory.SubFactory(WorkingGroupFactory)
    title = factory.Sequence(lambda n: f"議題 {n}")
    author = factory.SubFactory(UserFactory)
    post_count = 0


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    thread = factory.SubFactory(ThreadFactory)
    author = factory.SubFactory(UserFactory)
    body = factory.Sequence(lambda n: f"メッセージ {n}")


class MotionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Motion
        skip_postgeneration_save = True

    group = factory.SubFactory(WorkingGroupFactory)
    title = factory.Sequence(lambda n: f"議案 {n}")
    scope = "person"
    is_secret = False
    opens_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=1))
    closes_at = factory.LazyFunction(lambda: timezone.now() + datetime.timedelta(days=3))
    quorum_kind = "ballots"
    quorum_value = 1

    @factory.post_generation
    def options(obj, create, extracted, **kwargs):
        if create:
            for i, label in enumerate(extracted or ["賛成", "反対", "棄権"]):
                MotionOption.objects.create(motion=obj, label=label, position=i)


__all__ = ["OrganizationFactory", "UserFactory"]
