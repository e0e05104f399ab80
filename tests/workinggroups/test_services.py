"""Services: every use case's happy path and its refusals, audit events and e-mails."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.workinggroups import services
from apps.workinggroups.models import GroupMember, JoinRequest, MemberSettings, Post, WorkingGroup
from apps.workinggroups.tasks import discussion_digest_task
from tests.factories import UserFactory
from tests.workinggroups.factories import (
    GroupMemberFactory,
    MeetingFactory,
    PostFactory,
    ThreadFactory,
    WorkingGroupFactory,
    member_user,
)

pytestmark = pytest.mark.django_db

GROUP_DATA = {
    "name_ja": "医療AI分科会",
    "name_en": "Medical AI",
    "charter_ja": "憲章",
    "charter_en": "Charter",
    "industry": "medical",
    "visibility": "members_only",
    "join_policy": "request",
    "allow_outside_researchers": False,
}


# --- Groups -------------------------------------------------------------------------------------


def test_staff_create_a_group_with_its_chair_audited(staff):
    chair = member_user()
    group = services.group_create(actor=staff, data=GROUP_DATA, chair=chair)
    assert group.status == "proposed"
    assert group.slug == "medical-ai"
    assert GroupMember.objects.get(group=group, role="chair").user == chair
    actions = set(AuditEvent.objects.filter(target_id=str(group.pk)).values_list("action", flat=True))
    assert {"workinggroup.created", "workinggroup.chair_assigned"} <= actions


def test_only_staff_create_groups(alliance_member):
    with pytest.raises(ApplicationError) as exc:
        services.group_create(actor=alliance_member, data=GROUP_DATA)
    assert exc.value.code == "forbidden"
    assert not WorkingGroup.objects.exists()


def test_group_lifecycle_proposed_active_closed(staff):
    group = services.group_create(actor=staff, data=GROUP_DATA)
    services.group_activate(group_id=group.pk, actor=staff)
    with pytest.raises(ApplicationError):
        services.group_activate(group_id=group.pk, actor=staff)
    closed = services.group_close(group_id=group.pk, actor=staff, reason="目的を達成")
    assert closed.status == "closed"
    assert closed.closed_at is not None
    with pytest.raises(ApplicationError):
        services.group_close(group_id=group.pk, actor=staff)


def test_closing_declines_pending_requests(staff, alliance_member):
    group = WorkingGroupFactory(join_policy="request")
    services.join_request_create(group_id=group.pk, user=alliance_member)
    services.group_close(group_id=group.pk, actor=staff)
    assert JoinRequest.objects.get().status == "rejected"


def test_assigning_a_new_chair_keeps_the_old_one_as_member(staff, group, chair):
    newcomer = member_user()
    services.group_assign_chair(group_id=group.pk, user=newcomer, actor=staff)
    assert GroupMember.objects.get(group=group, user=chair).role == "member"
    assert GroupMember.objects.get(group=group, user=newcomer).role == "chair"
    assert GroupMember.objects.filter(group=group, role="chair").count() == 1


def test_chair_edits_the_group_but_a_member_cannot(group, chair, member):
    services.group_update(group_id=group.pk, actor=chair, data={"charter_en": "New charter"})
    group.refresh_from_db()
    assert group.charter_en == "New charter"
    with pytest.raises(ApplicationError):
        services.group_update(group_id=group.pk, actor=member, data={"charter_en": "x"})


# --- Join flow ----------------------------------------------------------------------------------


def test_member_of_a_member_org_joins_an_open_group_representing_it(alliance_member):
    group = WorkingGroupFactory(join_policy="open")
    seat = services.member_join(group_id=group.pk, user=alliance_member)
    assert seat.role == "member"
    assert seat.organization == alliance_member.org_roles.get().organization
    assert AuditEvent.objects.filter(action="workinggroup.member_joined").exists()


def test_joining_twice_is_refused(alliance_member):
    group = WorkingGroupFactory(join_policy="open")
    services.member_join(group_id=group.pk, user=alliance_member)
    with pytest.raises(ApplicationError) as exc:
        services.member_join(group_id=group.pk, user=alliance_member)
    assert exc.value.code == "already_member"


def test_outside_researcher_joins_only_where_the_group_allows(outsider):
    closed_to_outsiders = WorkingGroupFactory(join_policy="open", visibility="public")
    with pytest.raises(ApplicationError) as exc:
        services.member_join(group_id=closed_to_outsiders.pk, user=outsider)
    assert exc.value.code == "not_eligible"
    open_to_outsiders = WorkingGroupFactory(
        join_policy="open", visibility="public", allow_outside_researchers=True
    )
    seat = services.member_join(group_id=open_to_outsiders.pk, user=outsider)
    assert seat.organization is None


def test_members_of_a_suspended_organization_are_not_alliance_members(db):
    user = member_user(organization__membership__status="suspended")
    group = WorkingGroupFactory(join_policy="open")
    with pytest.raises(ApplicationError) as exc:
        services.member_join(group_id=group.pk, user=user)
    # A members-only group does not even exist for them.
    assert exc.value.code == "not_found"


def test_proposed_and_closed_groups_take_no_members(alliance_member):
    for status in ("proposed", "closed"):
        group = WorkingGroupFactory(join_policy="open", status=status, closed_at=timezone.now())
        with pytest.raises(ApplicationError) as exc:
            services.member_join(group_id=group.pk, user=alliance_member)
        assert exc.value.code == "not_active"


def test_open_join_is_refused_for_request_and_invitation_groups(alliance_member):
    for policy in ("request", "invitation"):
        group = WorkingGroupFactory(join_policy=policy)
        with pytest.raises(ApplicationError):
            services.member_join(group_id=group.pk, user=alliance_member)


def test_join_request_approved_by_the_chair_with_e_mails(django_capture_on_commit_callbacks, chair):
    group = GroupMember.objects.get(user=chair).group
    group.join_policy = "request"
    group.save()
    applicant = member_user()
    with django_capture_on_commit_callbacks(execute=True):
        join_request = services.join_request_create(group_id=group.pk, user=applicant, message="参加希望です")
    assert [m.to for m in mail.outbox] == [[chair.email]]
    with pytest.raises(ApplicationError) as exc:
        services.join_request_create(group_id=group.pk, user=applicant)
    assert exc.value.code == "pending"
    with django_capture_on_commit_callbacks(execute=True):
        services.join_request_decide(request_id=join_request.pk, actor=chair, approve=True)
    assert GroupMember.objects.filter(group=group, user=applicant, role="member").exists()
    assert mail.outbox[-1].to == [applicant.email]
    with pytest.raises(ApplicationError) as exc:
        services.join_request_decide(request_id=join_request.pk, actor=chair, approve=False)
    assert exc.value.code == "decided"


def test_only_the_chair_decides_join_requests(chair, member):
    group = GroupMember.objects.get(user=chair).group
    group.join_policy = "request"
    group.save()
    join_request = services.join_request_create(group_id=group.pk, user=member_user())
    with pytest.raises(ApplicationError) as exc:
        services.join_request_decide(request_id=join_request.pk, actor=member, approve=True)
    assert exc.value.code == "forbidden"
    services.join_request_decide(request_id=join_request.pk, actor=chair, approve=False, reason="定員")
    join_request.refresh_from_db()
    assert join_request.status == "rejected"
    assert not GroupMember.objects.filter(user=join_request.user).exists()


def test_chair_adds_a_member_by_invitation(chair):
    group = GroupMember.objects.get(user=chair).group
    person = member_user()
    seat = services.member_add(group_id=group.pk, actor=chair, email=person.email.upper(), role="observer")
    assert seat.role == "observer"
    with pytest.raises(ApplicationError):
        services.member_add(group_id=group.pk, actor=chair, email="nobody@example.jp")
    with pytest.raises(ApplicationError):
        services.member_add(group_id=group.pk, actor=chair, email=person.email)


def test_leaving_and_the_chair_cannot_leave(group, chair, member):
    services.member_leave(group_id=group.pk, user=member)
    assert not GroupMember.objects.filter(user=member).exists()
    with pytest.raises(ApplicationError) as exc:
        services.member_leave(group_id=group.pk, user=chair)
    assert exc.value.code == "chair"
    with pytest.raises(ApplicationError):
        services.member_leave(group_id=group.pk, user=member)


def test_roles_change_but_never_to_or_from_chair(group, chair, member):
    seat = GroupMember.objects.get(user=member)
    assert services.member_set_role(seat_id=seat.pk, actor=chair, role="secretary").role == "secretary"
    with pytest.raises(ApplicationError):
        services.member_set_role(seat_id=seat.pk, actor=chair, role="chair")
    chair_seat = GroupMember.objects.get(user=chair)
    with pytest.raises(ApplicationError):
        services.member_set_role(seat_id=chair_seat.pk, actor=chair, role="member")
    with pytest.raises(ApplicationError):
        services.member_set_role(seat_id=chair_seat.pk, actor=member, role="member")


# --- Meetings -----------------------------------------------------------------------------------


def test_secretary_schedules_and_updates_a_meeting(group):
    secretary = GroupMemberFactory(group=group, role="secretary").user
    start = timezone.now() + datetime.timedelta(days=3)
    meeting = services.meeting_create(
        group_id=group.pk,
        actor=secretary,
        data={"title": "第1回", "starts_at": start, "ends_at": start + datetime.timedelta(hours=1)},
    )
    assert meeting.sequence == 0
    meeting = services.meeting_update(meeting_id=meeting.pk, actor=secretary, data={"minutes": "# 議事録"})
    assert meeting.sequence == 1
    assert meeting.minutes == "# 議事録"


def test_meetings_refuse_members_and_backwards_times(group, chair, member):
    start = timezone.now()
    with pytest.raises(ApplicationError):
        services.meeting_create(
            group_id=group.pk, actor=member, data={"title": "x", "starts_at": start, "ends_at": start}
        )
    with pytest.raises(ApplicationError) as exc:
        services.meeting_create(
            group_id=group.pk,
            actor=chair,
            data={"title": "x", "starts_at": start, "ends_at": start - datetime.timedelta(hours=1)},
        )
    assert exc.value.code == "times"


def test_attendance_marks_members_present_or_absent(group, chair, member):
    meeting = MeetingFactory(group=group)
    stranger = UserFactory()
    assert (
        services.attendance_record(
            meeting_id=meeting.pk, actor=chair, present_user_ids=[member.pk, stranger.pk]
        )
        == 1
    )
    rows = dict(meeting.attendance.values_list("user_id", "present"))
    assert rows == {member.pk: True, chair.pk: False}


# --- Discussions --------------------------------------------------------------------------------


def test_posting_notifies_members_immediately_except_author_and_opted_out(
    django_capture_on_commit_callbacks, group, chair, member
):
    quiet = GroupMemberFactory(group=group).user
    services.member_settings_update(user=quiet, notify="off")
    digest = GroupMemberFactory(group=group).user
    services.member_settings_update(user=digest, notify="daily")
    with django_capture_on_commit_callbacks(execute=True):
        thread = services.thread_create(group_id=group.pk, actor=member, title="データ共有", body="提案です")
    assert [m.to for m in mail.outbox] == [[chair.email]]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.post_create(thread_id=thread.pk, actor=chair, body="賛成です")
    assert len(callbacks) == 1
    assert [m.to for m in mail.outbox] == [[member.email]]
    thread.refresh_from_db()
    assert thread.post_count == 2


def test_nothing_is_sent_when_the_post_rolls_back(django_capture_on_commit_callbacks, group, member):
    thread = ThreadFactory(group=group)
    with django_capture_on_commit_callbacks(execute=False) as callbacks, pytest.raises(ApplicationError):
        services.post_create(thread_id=thread.pk, actor=member, body="   ")
    assert callbacks == []
    assert not Post.objects.exists()


def test_outsiders_and_locked_threads_refuse_posts(group, chair, member, alliance_member):
    thread = services.thread_create(group_id=group.pk, actor=member, title="t", body="b")
    with pytest.raises(ApplicationError) as exc:
        services.post_create(thread_id=thread.pk, actor=alliance_member, body="hi")
    assert exc.value.code == "forbidden"
    services.thread_set_locked(thread_id=thread.pk, actor=chair, locked=True)
    with pytest.raises(ApplicationError) as exc:
        services.post_create(thread_id=thread.pk, actor=member, body="hi")
    assert exc.value.code == "locked"
    with pytest.raises(ApplicationError):
        services.thread_set_locked(thread_id=thread.pk, actor=member, locked=False)


def test_author_edits_within_the_window_only(group, member, chair):
    thread = services.thread_create(group_id=group.pk, actor=member, title="t", body="first")
    post = thread.posts.get()
    edited = services.post_edit(post_id=post.pk, actor=member, body="fixed")
    assert edited.body == "fixed" and edited.edited_at
    with pytest.raises(ApplicationError):
        services.post_edit(post_id=post.pk, actor=chair, body="not mine")
    Post.objects.filter(pk=post.pk).update(
        created_at=timezone.now() - services.EDIT_WINDOW - datetime.timedelta(seconds=1)
    )
    with pytest.raises(ApplicationError) as exc:
        services.post_edit(post_id=post.pk, actor=member, body="late")
    assert exc.value.code == "edit_window"


def test_chair_hides_a_post_and_a_member_cannot(group, chair, member):
    post = PostFactory(thread=ThreadFactory(group=group), author=member)
    with pytest.raises(ApplicationError):
        services.post_set_hidden(post_id=post.pk, actor=member, hidden=True)
    post = services.post_set_hidden(post_id=post.pk, actor=chair, hidden=True)
    assert post.is_hidden and post.hidden_by == chair
    assert AuditEvent.objects.filter(action="post.hidden").exists()


def test_daily_digest_collects_new_posts_once(group, chair, member):
    services.member_settings_update(user=member, notify="daily")
    thread = ThreadFactory(group=group, author=chair)
    PostFactory(thread=thread, author=chair, body="本日の報告")
    PostFactory(thread=thread, author=member, body="自分の投稿")
    PostFactory(thread=thread, author=chair, body="非表示", is_hidden=True)
    PostFactory(thread=ThreadFactory(), body="他の分科会")
    assert discussion_digest_task.delay().get() == 1
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "本日の報告" in body
    assert "自分の投稿" not in body and "非表示" not in body and "他の分科会" not in body
    # Nothing new since: no second e-mail.
    assert discussion_digest_task.delay().get() == 0
    assert len(mail.outbox) == 1


def test_digest_skips_people_who_chose_immediate_or_off(group, chair, member):
    services.member_settings_update(user=member, notify="off")
    PostFactory(thread=ThreadFactory(group=group), author=chair)
    assert discussion_digest_task.delay().get() == 0


def test_feed_token_regenerates(member):
    old = services.member_settings_get(user=member).feed_token
    new = services.feed_token_regenerate(user=member).feed_token
    assert old != new and len(new) >= 40
    assert MemberSettings.objects.get(user=member).feed_token == new


def test_unknown_notification_setting_is_refused(member):
    with pytest.raises(ApplicationError):
        services.member_settings_update(user=member, notify="hourly")


def test_staff_console_services_refuse_non_staff(group, chair):
    with pytest.raises(ApplicationError):
        services.group_close(group_id=group.pk, actor=chair)
    with pytest.raises(ApplicationError):
        services.group_assign_chair(group_id=group.pk, user=chair, actor=chair)
    with pytest.raises(ApplicationError):
        services.group_activate(group_id=WorkingGroupFactory(status="proposed").pk, actor=chair)
