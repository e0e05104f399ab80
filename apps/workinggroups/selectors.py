"""Read queries for working groups. Lists run a fixed number of queries whatever their length."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.organizations.models import Membership
from apps.workinggroups.models import (
    Attendance,
    Ballot,
    Document,
    DocumentVersion,
    GroupMember,
    JoinRequest,
    Meeting,
    Motion,
    MotionOption,
    Post,
    Thread,
    WorkingGroup,
)
from apps.workinggroups.permissions import is_alliance_member

Visibility = WorkingGroup.Visibility


def group_visible_to(*, user) -> QuerySet[WorkingGroup]:
    """The groups a person may see (the same rule as ``permissions.group_access``)."""
    qs = WorkingGroup.objects.all()
    if user and user.is_authenticated and user.is_staff:
        return qs
    if not (user and user.is_authenticated):
        return qs.filter(visibility=Visibility.PUBLIC)
    mine = Q(members__user=user)
    if is_alliance_member(user):
        return qs.filter(Q(visibility__in=[Visibility.PUBLIC, Visibility.MEMBERS_ONLY]) | mine).distinct()
    return qs.filter(Q(visibility=Visibility.PUBLIC) | mine).distinct()


def group_directory(*, user, q: str = "", industry: str = "", status: str = "") -> QuerySet[WorkingGroup]:
    qs = group_visible_to(user=user)
    if q:
        qs = qs.filter(
            Q(name_ja__icontains=q)
            | Q(name_en__icontains=q)
            | Q(charter_ja__icontains=q)
            | Q(charter_en__icontains=q)
        )
    if industry:
        qs = qs.filter(industry=industry)
    qs = qs.filter(status=status) if status else qs.exclude(status=WorkingGroup.Status.CLOSED)
    member_count = (
        GroupMember.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return qs.annotate(
        member_count=Coalesce(Subquery(member_count, output_field=IntegerField()), 0)
    ).order_by("name_en", "pk")


def group_get(*, slug: str) -> WorkingGroup | None:
    return WorkingGroup.objects.filter(slug=slug).first()


def group_chairs(*, group: WorkingGroup) -> list[GroupMember]:
    return list(
        GroupMember.objects.filter(group=group, role__in=GroupMember.ORGANIZER_ROLES)
        .select_related("user", "organization")
        .order_by("role", "user__full_name")
    )


def member_list(*, group: WorkingGroup) -> QuerySet[GroupMember]:
    order = ["chair", "vice_chair", "secretary", "member", "observer"]
    rank = Case(*[When(role=r, then=Value(i)) for i, r in enumerate(order)], output_field=IntegerField())
    return (
        GroupMember.objects.filter(group=group)
        .select_related("user", "organization")
        .annotate(rank=rank)
        .order_by("rank", "organization__name_en", "user__full_name", "pk")
    )


def join_requests_pending(*, group: WorkingGroup) -> QuerySet[JoinRequest]:
    return JoinRequest.objects.filter(group=group, status=JoinRequest.Status.PENDING).select_related(
        "user", "organization"
    )


def join_request_pending_for(*, group: WorkingGroup, user) -> JoinRequest | None:
    if not user.is_authenticated:
        return None
    return JoinRequest.objects.filter(group=group, user=user, status=JoinRequest.Status.PENDING).first()


def meeting_list(*, group: WorkingGroup) -> QuerySet[Meeting]:
    return Meeting.objects.filter(group=group).select_related("group").order_by("-starts_at", "-pk")


def meeting_next(*, group: WorkingGroup) -> Meeting | None:
    return (
        Meeting.objects.filter(group=group, ends_at__gte=timezone.now(), cancelled=False)
        .select_related("group")
        .order_by("starts_at", "pk")
        .first()
    )


def meeting_get(*, group: WorkingGroup, meeting_id: int) -> Meeting | None:
    return Meeting.objects.filter(group=group, pk=meeting_id).select_related("group").first()


def meeting_attendance(*, meeting: Meeting) -> dict[int, bool]:
    return dict(Attendance.objects.filter(meeting=meeting).values_list("user_id", "present"))


def meetings_for_feed(*, groups) -> QuerySet[Meeting]:
    """Meetings of the given groups for a calendar feed: from a year back, with their group."""
    since = timezone.now() - datetime.timedelta(days=365)
    return (
        Meeting.objects.filter(group__in=groups, ends_at__gte=since)
        .select_related("group")
        .order_by("starts_at")
    )


def document_list(*, group: WorkingGroup) -> QuerySet[Document]:
    latest = DocumentVersion.objects.select_related("uploaded_by").order_by("-number")
    return (
        Document.objects.filter(group=group)
        .select_related("group", "created_by")
        .prefetch_related(Prefetch("versions", queryset=latest, to_attr="all_versions"))
        .order_by("-updated_at", "-pk")
    )


def document_get(*, group: WorkingGroup, document_id: int) -> Document | None:
    return (
        Document.objects.filter(group=group, pk=document_id)
        .select_related("group", "created_by")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=DocumentVersion.objects.select_related("uploaded_by").order_by("-number"),
                to_attr="all_versions",
            )
        )
        .first()
    )


def thread_list(*, group: WorkingGroup) -> QuerySet[Thread]:
    return (
        Thread.objects.filter(group=group).select_related("group", "author").order_by("-last_post_at", "-pk")
    )


def thread_get(*, group: WorkingGroup, thread_id: int) -> Thread | None:
    return Thread.objects.filter(group=group, pk=thread_id).select_related("group", "author").first()


def post_list(*, thread: Thread) -> QuerySet[Post]:
    return (
        Post.objects.filter(thread=thread).select_related("author", "hidden_by").order_by("created_at", "pk")
    )


def motion_list(*, group: WorkingGroup) -> QuerySet[Motion]:
    return (
        Motion.objects.filter(group=group)
        .select_related("group")
        .annotate(ballot_count=Count("ballots"))
        .order_by("-closes_at", "-pk")
    )


def motion_open_list(*, group: WorkingGroup) -> QuerySet[Motion]:
    now = timezone.now()
    return motion_list(group=group).filter(opens_at__lte=now, closes_at__gt=now)


def motion_get(*, group: WorkingGroup, motion_id: int) -> Motion | None:
    return (
        Motion.objects.filter(group=group, pk=motion_id)
        .select_related("group", "created_by")
        .prefetch_related(Prefetch("options", queryset=MotionOption.objects.order_by("position", "pk")))
        .first()
    )


def eligible_voter_count(*, motion: Motion) -> int:
    seats = GroupMember.objects.filter(group_id=motion.group_id).exclude(role=GroupMember.Role.OBSERVER)
    if motion.scope == Motion.Scope.ORGANIZATION:
        return (
            seats.filter(organization__membership__status=Membership.Status.ACTIVE)
            .values("organization_id")
            .distinct()
            .count()
        )
    return seats.count()


@dataclass
class MotionResult:
    ballots: int
    eligible: int
    quorum_needed: int
    rows: list[dict]

    @property
    def quorum_reached(self) -> bool:
        return self.ballots >= self.quorum_needed


def motion_result(*, motion: Motion) -> MotionResult:
    eligible = eligible_voter_count(motion=motion)
    if motion.quorum_kind == Motion.QuorumKind.PERCENT:
        needed = max(1, math.ceil(eligible * motion.quorum_value / 100))
    else:
        needed = motion.quorum_value
    counts = dict(
        Ballot.objects.filter(motion=motion)
        .values("option_id")
        .annotate(n=Count("pk"))
        .values_list("option_id", "n")
    )
    total = sum(counts.values())
    rows = [
        {
            "option": option,
            "count": counts.get(option.pk, 0),
            "percent": round(100 * counts.get(option.pk, 0) / total, 1) if total else 0,
        }
        for option in motion.options.all()
    ]
    return MotionResult(ballots=total, eligible=eligible, quorum_needed=needed, rows=rows)


def ballot_for(*, motion: Motion, user) -> Ballot | None:
    if not user.is_authenticated:
        return None
    return Ballot.objects.filter(motion=motion, voter=user).select_related("option").first()


def open_ballots_list(*, motion: Motion) -> QuerySet[Ballot]:
    """Who voted what: for open ballots only, once results are published."""
    return (
        Ballot.objects.filter(motion=motion)
        .select_related("voter", "organization", "option")
        .order_by("cast_at")
    )


def my_groups(*, user) -> list[GroupMember]:
    """The user's seats with their group, the next meeting and the open votes counted, in a
    fixed number of queries."""
    if not user.is_authenticated:
        return []
    seats = list(
        GroupMember.objects.filter(user=user).select_related("group").order_by("group__name_en")[:50]
    )
    group_ids = [s.group_id for s in seats]
    now = timezone.now()
    next_meetings: dict[int, Meeting] = {}
    for meeting in Meeting.objects.filter(group_id__in=group_ids, ends_at__gte=now, cancelled=False).order_by(
        "starts_at", "pk"
    )[:500]:
        next_meetings.setdefault(meeting.group_id, meeting)
    open_votes = dict(
        Motion.objects.filter(group_id__in=group_ids, opens_at__lte=now, closes_at__gt=now)
        .values("group_id")
        .annotate(n=Count("pk"))
        .values_list("group_id", "n")
    )
    for seat in seats:
        seat.next_meeting = next_meetings.get(seat.group_id)
        seat.open_votes = open_votes.get(seat.group_id, 0)
    return seats


def group_console_list() -> QuerySet[WorkingGroup]:
    """Every group for the secretariat, with its member count and chair."""
    member_count = (
        GroupMember.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(n=Count("pk"))
        .values("n")
    )
    chairs = GroupMember.objects.filter(role=GroupMember.Role.CHAIR).select_related("user")
    return (
        WorkingGroup.objects.annotate(
            member_count=Coalesce(Subquery(member_count, output_field=IntegerField()), 0)
        )
        .prefetch_related(Prefetch("members", queryset=chairs, to_attr="chair_seats"))
        .order_by("status", "name_en", "pk")
    )


def document_version_get(*, group: WorkingGroup, document_id: int, number: int) -> DocumentVersion | None:
    return (
        DocumentVersion.objects.filter(document__group=group, document_id=document_id, number=number)
        .only("file", "original_name", "content_type")
        .first()
    )


def post_get(*, group: WorkingGroup, post_id: int) -> Post | None:
    return (
        Post.objects.filter(thread__group=group, pk=post_id)
        .select_related("thread__group", "author", "hidden_by")
        .first()
    )


def organization_has_voted(*, motion: Motion, organization_id: int) -> bool:
    return Ballot.objects.filter(motion=motion, organization_id=organization_id).exists()
