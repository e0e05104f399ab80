"""Every write in a working group checks the writer's seat and role *now*, not when the object was
created: a member removed from a group (or a vice-chair demoted) writes nothing there any more, even
on a public group they can still read and on objects they authored."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.organizations.models import OrgRole
from apps.workinggroups import services
from apps.workinggroups.models import (
    Attendance,
    Ballot,
    Document,
    DocumentVersion,
    GroupMember,
    JoinRequest,
    Meeting,
    Motion,
    Post,
    Thread,
)
from tests.workinggroups.factories import GroupMemberFactory, MotionFactory, WorkingGroupFactory, member_user

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


@pytest.fixture
def world(db):
    """A public group; ``former`` was its vice-chair (so could do everything a member, an organizer
    and a manager can), wrote a thread, a post, a document and a meeting, and was then removed."""
    group = WorkingGroupFactory(visibility="public")
    chair = GroupMemberFactory(group=group, role="chair").user
    other = GroupMemberFactory(group=group).user
    seat = GroupMemberFactory(group=group, role="vice_chair")
    former = seat.user
    thread = services.thread_create(group_id=group.pk, actor=former, title="議題", body="最初の投稿")
    post = thread.posts.get()
    others_post = services.post_create(thread_id=thread.pk, actor=other, body="返信")
    document = services.document_upload(
        group_id=group.pk, actor=former, title="資料", upload=SimpleUploadedFile("a.pdf", PDF)
    )
    now = timezone.now()
    meeting = services.meeting_create(
        group_id=group.pk,
        actor=former,
        data={
            "title": "定例会",
            "starts_at": now + datetime.timedelta(days=1),
            "ends_at": now + datetime.timedelta(days=1, hours=1),
        },
    )
    motion = MotionFactory(group=group)
    newcomer = member_user()
    group.join_policy = "request"
    group.save(update_fields=["join_policy"])
    join_request = services.join_request_create(group_id=group.pk, user=member_user(), message="参加希望")
    services.member_remove(seat_id=seat.pk, actor=chair)
    return {
        "newcomer": newcomer,
        "join_request": join_request,
        "group": group,
        "chair": chair,
        "other": other,
        "other_seat": GroupMember.objects.get(group=group, user=other),
        "former": former,
        "thread": thread,
        "post": post,
        "others_post": others_post,
        "document": document,
        "meeting": meeting,
        "motion": motion,
    }


def _state(w):
    """Everything a write could change."""
    return (
        list(Post.objects.order_by("pk").values_list("pk", "body", "is_hidden")),
        list(Thread.objects.order_by("pk").values_list("pk", "title", "is_locked")),
        list(Document.objects.order_by("pk").values_list("pk", "current_version")),
        DocumentVersion.objects.count(),
        list(Meeting.objects.order_by("pk").values_list("pk", "title", "minutes", "cancelled", "online_url")),
        Attendance.objects.count(),
        Motion.objects.count(),
        Ballot.objects.count(),
        list(JoinRequest.objects.order_by("pk").values_list("pk", "status")),
        list(GroupMember.objects.order_by("pk").values_list("pk", "user_id", "role")),
        list(w["group"].__class__.objects.filter(pk=w["group"].pk).values_list("name_en", "charter_en")),
    )


WRITES = {
    "edit own post": lambda w: services.post_edit(post_id=w["post"].pk, actor=w["former"], body="改ざん"),
    "reply": lambda w: services.post_create(thread_id=w["thread"].pk, actor=w["former"], body="まだ居る"),
    "new thread": lambda w: services.thread_create(
        group_id=w["group"].pk, actor=w["former"], title="新議題", body="本文"
    ),
    "upload document": lambda w: services.document_upload(
        group_id=w["group"].pk, actor=w["former"], title="新資料", upload=SimpleUploadedFile("b.pdf", PDF)
    ),
    "new version of own document": lambda w: services.document_add_version(
        document_id=w["document"].pk, actor=w["former"], upload=SimpleUploadedFile("c.pdf", PDF + b"v2")
    ),
    "new meeting": lambda w: services.meeting_create(
        group_id=w["group"].pk,
        actor=w["former"],
        data={
            "title": "臨時会",
            "starts_at": timezone.now() + datetime.timedelta(days=2),
            "ends_at": timezone.now() + datetime.timedelta(days=2, hours=1),
        },
    ),
    "edit own meeting": lambda w: services.meeting_update(
        meeting_id=w["meeting"].pk,
        actor=w["former"],
        data={"title": "改題", "online_url": "https://evil.example/"},
    ),
    "minutes": lambda w: services.meeting_update(
        meeting_id=w["meeting"].pk, actor=w["former"], data={"minutes": "偽の議事録"}
    ),
    "attendance": lambda w: services.attendance_record(
        meeting_id=w["meeting"].pk, actor=w["former"], present_user_ids=[w["former"].pk]
    ),
    "vote": lambda w: services.ballot_cast(
        motion_id=w["motion"].pk, voter=w["former"], option_id=w["motion"].options.first().pk
    ),
    "new motion": lambda w: services.motion_create(
        group_id=w["group"].pk,
        actor=w["former"],
        title="議案",
        description="",
        options=["賛成", "反対"],
        scope="person",
        is_secret=False,
        opens_at=timezone.now(),
        closes_at=timezone.now() + datetime.timedelta(days=1),
        quorum_kind="ballots",
        quorum_value=1,
    ),
    "lock thread": lambda w: services.thread_set_locked(
        thread_id=w["thread"].pk, actor=w["former"], locked=True
    ),
    "hide a post": lambda w: services.post_set_hidden(
        post_id=w["others_post"].pk, actor=w["former"], hidden=True
    ),
    "change a role": lambda w: services.member_set_role(
        seat_id=w["other_seat"].pk, actor=w["former"], role="secretary"
    ),
    "remove a member": lambda w: services.member_remove(seat_id=w["other_seat"].pk, actor=w["former"]),
    "add a member": lambda w: services.member_add(
        group_id=w["group"].pk, actor=w["former"], email=w["newcomer"].email
    ),
    "decide a join request": lambda w: services.join_request_decide(
        request_id=w["join_request"].pk, actor=w["former"], approve=True
    ),
    "edit the group": lambda w: services.group_update(
        group_id=w["group"].pk, actor=w["former"], data={"name_en": "Hijacked"}
    ),
}


@pytest.mark.parametrize("write", WRITES)
def test_a_removed_member_writes_nothing_through_the_services(world, write):
    before, events = _state(world), AuditEvent.objects.count()
    with pytest.raises(ApplicationError):
        WRITES[write](world)
    assert _state(world) == before
    assert AuditEvent.objects.count() == events


def test_the_author_may_edit_while_a_member(world):
    """The check that refuses the removed member is the seat, not authorship: the chair's own
    post is editable by the chair."""
    post = services.post_create(thread_id=world["thread"].pk, actor=world["chair"], body="議長")
    assert (
        services.post_edit(post_id=post.pk, actor=world["chair"], body="議長（訂正）").body == "議長（訂正）"
    )


def test_a_demoted_organizer_no_longer_organizes(world):
    seat = GroupMemberFactory(group=world["group"], role="secretary")
    services.member_set_role(seat_id=seat.pk, actor=world["chair"], role="member")
    with pytest.raises(ApplicationError):
        services.meeting_update(meeting_id=world["meeting"].pk, actor=seat.user, data={"minutes": "x"})
    with pytest.raises(ApplicationError):
        services.attendance_record(meeting_id=world["meeting"].pk, actor=seat.user, present_user_ids=[])


def test_a_seat_whose_person_left_the_organization_casts_no_organization_vote(world):
    seat = world["other_seat"]
    motion = MotionFactory(group=world["group"], scope="organization")
    OrgRole.objects.filter(user=seat.user, organization=seat.organization).delete()
    with pytest.raises(ApplicationError) as exc:
        services.ballot_cast(motion_id=motion.pk, voter=seat.user, option_id=motion.options.first().pk)
    assert exc.value.code == "not_eligible"
    assert not Ballot.objects.exists()


# --- the same through the pages (the public group stays readable to the removed member) ----------


def _pages(w):
    g = w["group"].slug
    return {
        "edit own post (page)": ("get", reverse("workinggroups:post-edit", args=[g, w["post"].pk]), {}),
        "edit own post": (
            "post",
            reverse("workinggroups:post-edit", args=[g, w["post"].pk]),
            {"body": "改ざん"},
        ),
        "reply": ("post", w["thread"].get_absolute_url(), {"body": "まだ居る"}),
        "new thread": ("post", reverse("workinggroups:threads", args=[g]), {"title": "t", "body": "b"}),
        "upload": (
            "post",
            reverse("workinggroups:documents", args=[g]),
            {"title": "x", "file": SimpleUploadedFile("x.pdf", PDF)},
        ),
        "new version": (
            "post",
            reverse("workinggroups:document-detail", args=[g, w["document"].pk]),
            {"note": "v2", "file": SimpleUploadedFile("y.pdf", PDF + b"2")},
        ),
        "meeting edit": (
            "post",
            reverse("workinggroups:meeting-edit", args=[g, w["meeting"].pk]),
            {"title": "改題", "starts_at": "2030-01-01 10:00", "ends_at": "2030-01-01 11:00"},
        ),
        "minutes": ("post", w["meeting"].get_absolute_url(), {"minutes": "偽"}),
        "attendance": (
            "post",
            reverse("workinggroups:meeting-attendance", args=[g, w["meeting"].pk]),
            {"present": [w["former"].pk]},
        ),
        "vote": (
            "post",
            reverse("workinggroups:ballot-cast", args=[g, w["motion"].pk]),
            {"option": w["motion"].options.first().pk},
        ),
        "lock": ("post", reverse("workinggroups:thread-lock", args=[g, w["thread"].pk]), {"locked": "1"}),
        "hide": ("post", reverse("workinggroups:post-hide", args=[g, w["others_post"].pk]), {"hidden": "1"}),
        "remove member": ("post", reverse("workinggroups:member-remove", args=[g, w["other_seat"].pk]), {}),
        "edit group": ("post", reverse("workinggroups:group-edit", args=[g]), {"name_en": "Hijacked"}),
    }


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_removed_member_writes_nothing_through_the_pages(client, world, htmx):
    client.force_login(world["former"])
    assert client.get(world["group"].get_absolute_url()).status_code == 200  # still readable (public)
    headers = {"HX-Request": "true"} if htmx else {}
    for name, (method, url, data) in _pages(world).items():
        before = _state(world)
        response = getattr(client, method)(url, data, headers=headers)
        assert response.status_code in (302, 400, 403, 404), (name, response.status_code)
        if method == "get":
            assert response.status_code == 404, name
        assert _state(world) == before, name


def test_the_thread_offers_no_edit_link_to_a_removed_author(client, world):
    client.force_login(world["former"])
    page = client.get(world["thread"].get_absolute_url()).content.decode()
    assert reverse("workinggroups:post-edit", args=[world["group"].slug, world["post"].pk]) not in page
