"""Read queries of grant programs. Each page runs a fixed number of queries whatever the number of
applications, reviews or awards: relations are joined, children prefetched, scores aggregated in
one query and combined in Python."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from apps.core.permissions import has_perm
from apps.grants.conflicts import with_live_conflict
from apps.grants.models import (
    Application,
    Assignment,
    Attachment,
    Award,
    AwardLine,
    Call,
    Criterion,
    Program,
    Report,
    Reviewer,
    Score,
)
from apps.organizations.models import OrgRole
from apps.providers.models import PoolPeriod

ZERO = Decimal("0")


# --- public --------------------------------------------------------------------------------------


def program_list_public() -> list[Program]:
    """Published programs, each with its published calls that have not closed (``open_calls``)."""
    now = timezone.now()
    calls = Call.objects.filter(is_published=True, closes_at__gt=now).order_by("closes_at")
    return list(
        Program.objects.filter(is_published=True)
        .prefetch_related(Prefetch("calls", queryset=calls, to_attr="open_calls"))
        .order_by("kind", "name_en")
    )


def program_get_public(*, slug: str) -> Program | None:
    return Program.objects.filter(slug=slug, is_published=True).first()


def call_list_for_program(*, program: Program) -> QuerySet[Call]:
    return program.calls.filter(is_published=True).order_by("-opens_at")


def call_get_public(*, slug: str, call_id: int) -> Call | None:
    return (
        Call.objects.select_related("program")
        .prefetch_related("criteria", "questions")
        .filter(pk=call_id, program__slug=slug, is_published=True, program__is_published=True)
        .first()
    )


# --- applicants ----------------------------------------------------------------------------------


def application_list_for_user(*, user) -> QuerySet[Application]:
    return (
        Application.objects.filter(applicant=user)
        .select_related("call__program", "organization", "award")
        .order_by("-created_at", "-id")
    )


def application_get(*, application_id: int) -> Application | None:
    return (
        Application.objects.select_related(
            "call__program", "organization__membership", "applicant", "award__mentor", "award__organization"
        )
        .prefetch_related(
            "preferred_pools__provider",
            "attachments",
            "call__questions",
            Prefetch(
                "award__lines", queryset=AwardLine.objects.select_related("grant", "period__pool__provider")
            ),
            "award__reports",
        )
        .filter(pk=application_id)
        .first()
    )


def award_of(application: Application) -> Award | None:
    try:
        return application.award
    except Award.DoesNotExist:
        return None


def reports_due_for_user(*, user, limit: int = 20) -> list[Report]:
    org_ids = OrgRole.objects.filter(user=user).values("organization_id")
    return list(
        Report.objects.filter(submitted_at__isnull=True, award__status=Award.Status.ACTIVE)
        .filter(Q(award__application__applicant=user) | Q(award__organization_id__in=org_ids))
        .select_related("award__application", "award__organization")
        .order_by("due_on", "pk")[:limit]
    )


def report_get(*, report_id: int) -> Report | None:
    return (
        Report.objects.select_related("award__application__call__program", "award__organization")
        .filter(pk=report_id)
        .first()
    )


def can_submit_report(user, report: Report) -> bool:
    if not user.is_authenticated:
        return False
    return (
        report.award.application.applicant_id == user.pk
        or OrgRole.objects.filter(organization_id=report.award.organization_id, user=user).exists()
    )


def member_organizations_for(*, user):
    from apps.organizations.models import Organization

    return (
        Organization.objects.filter(roles__user=user)
        .select_related("membership")
        .distinct()
        .order_by("name_en")
    )


def attachment_get(*, attachment_id: int) -> Attachment | None:
    return Attachment.objects.select_related("application").filter(pk=attachment_id).first()


def can_download(user, attachment: Attachment) -> bool:
    """The applicant, the secretariat, and the reviewers with a live assignment on the application
    who are not in conflict with it now."""
    if not user.is_authenticated:
        return False
    if has_perm(user, "grants.view_application", attachment.application):
        return True
    return (
        with_live_conflict(
            Assignment.objects.filter(
                application_id=attachment.application_id, reviewer=user, status__in=Assignment.ACTIVE
            )
        )
        .filter(live_conflict=False)
        .exists()
    )


# --- reviewers -----------------------------------------------------------------------------------


def assignment_list_for_reviewer(*, user) -> QuerySet[Assignment]:
    """The reviewer's live assignments, each with ``live_conflict``: a blocked one is listed (so the
    reviewer knows) but its page, attachments and scores are closed."""
    return with_live_conflict(
        Assignment.objects.filter(reviewer=user, status__in=Assignment.ACTIVE)
        .select_related("application__call__program")
        .order_by("status", "application__call__closes_at", "pk")
    )


def assignment_get(*, assignment_id: int) -> Assignment | None:
    """One assignment with ``live_conflict`` (the permission checks read it)."""
    return (
        with_live_conflict(Assignment.objects.all())
        .select_related("application__call__program", "application__organization")
        .prefetch_related(
            "scores",
            "application__attachments",
            "application__preferred_pools__provider",
            "application__call__criteria",
            "application__call__questions",
        )
        .filter(pk=assignment_id)
        .first()
    )


# --- secretariat ---------------------------------------------------------------------------------


def program_list_for_staff() -> list[Program]:
    calls = Call.objects.annotate(
        application_count=Count("applications", filter=~Q(applications__status=Application.Status.DRAFT))
    ).order_by("-opens_at")
    return list(Program.objects.prefetch_related(Prefetch("calls", queryset=calls, to_attr="all_calls")))


def call_get(*, call_id: int) -> Call | None:
    return Call.objects.select_related("program").prefetch_related("criteria").filter(pk=call_id).first()


def reviewer_list(*, call: Call) -> list[Reviewer]:
    return list(
        Reviewer.objects.filter(call=call)
        .select_related("user")
        .annotate(
            pending=Count(
                "user__grant_assignments",
                filter=Q(
                    user__grant_assignments__application__call=call,
                    user__grant_assignments__status=Assignment.Status.ASSIGNED,
                ),
            ),
            done=Count(
                "user__grant_assignments",
                filter=Q(
                    user__grant_assignments__application__call=call,
                    user__grant_assignments__status=Assignment.Status.SUBMITTED,
                ),
            ),
        )
        .order_by("user__email")
    )


@dataclass
class RankRow:
    application: Application
    score: float | None
    reviews_done: int
    reviews_live: int
    conflicts: int
    awarded: dict[str, Decimal] = field(default_factory=dict)
    cumulative: dict[str, int] = field(default_factory=dict)
    within_budget: bool = True


@dataclass
class BudgetRow:
    gpu_class: str
    budget: int
    awarded: Decimal
    requested: int

    @property
    def remaining(self) -> Decimal:
        return Decimal(self.budget) - self.awarded

    @property
    def used_pct(self) -> int:
        return min(100, int(self.awarded * 100 / self.budget)) if self.budget else 0


def weighted_score(scores: dict[int, int], criteria: list[Criterion]) -> float | None:
    """0 to 100: each criterion's score as a share of its highest score, weighted by the rubric."""
    total_weight = sum(c.weight for c in criteria)
    if not criteria or total_weight <= 0 or any(c.pk not in scores for c in criteria):
        return None
    value = sum(Decimal(scores[c.pk]) / c.max_score * c.weight for c in criteria) / total_weight
    return round(float(value) * 100, 2)


def call_ranking(*, call: Call, statuses=None) -> tuple[list[RankRow], list[BudgetRow]]:
    """The call's applications (not drafts or withdrawn) ranked by weighted score (mean of the
    submitted reviews), with what the applications above each one would consume of the budget."""
    statuses = statuses or Application.IN_REVIEW
    criteria = list(call.criteria.all())
    applications = list(
        Application.objects.filter(call=call, status__in=statuses).select_related("organization", "award")
    )
    # Reviews of reviewers who are in conflict now (a role in the applicant organization gained
    # after the assignment) neither count nor score: they are conflicts until staff reassign.
    done: dict[int, int] = defaultdict(int)
    live: dict[int, int] = defaultdict(int)
    conflicts: dict[int, int] = defaultdict(int)
    blocked: set[int] = set()
    for assignment_id, application_id, status, live_conflict in with_live_conflict(
        Assignment.objects.filter(application__call=call)
    ).values_list("pk", "application_id", "status", "live_conflict"):
        if status == Assignment.Status.CONFLICT or live_conflict:
            conflicts[application_id] += 1
            blocked.add(assignment_id)
        elif status in Assignment.ACTIVE:
            live[application_id] += 1
            done[application_id] += status == Assignment.Status.SUBMITTED
    per_review: dict[int, dict[int, int]] = defaultdict(dict)
    review_app: dict[int, int] = {}
    for assignment_id, application_id, criterion_id, score in Score.objects.filter(
        assignment__application__call=call, assignment__status=Assignment.Status.SUBMITTED
    ).values_list("assignment_id", "assignment__application_id", "criterion_id", "score"):
        if assignment_id in blocked:
            continue
        per_review[assignment_id][criterion_id] = score
        review_app[assignment_id] = application_id
    by_app: dict[int, list[float]] = defaultdict(list)
    for assignment_id, scores in per_review.items():
        value = weighted_score(scores, criteria)
        if value is not None:
            by_app[review_app[assignment_id]].append(value)
    awarded_lines: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for application_id, gpu_class, hours in AwardLine.objects.filter(
        award__application__call=call, award__status=Award.Status.ACTIVE
    ).values_list("award__application_id", "gpu_class", "gpu_hours"):
        awarded_lines[application_id][gpu_class] += hours
    rows = []
    for application in applications:
        scores = by_app.get(application.pk, [])
        rows.append(
            RankRow(
                application=application,
                score=round(sum(scores) / len(scores), 2) if scores else None,
                reviews_done=done[application.pk],
                reviews_live=live[application.pk],
                conflicts=conflicts[application.pk],
                awarded=dict(awarded_lines.get(application.pk, {})),
            )
        )
    rows.sort(
        key=lambda r: (
            r.score is None,
            -(r.score or 0),
            r.application.submitted_at or timezone.now(),
            r.application.pk,
        )
    )
    budget = call.budget or {}
    running: dict[str, int] = defaultdict(int)
    for row in rows:
        for gpu_class, hours in (row.application.requested_hours or {}).items():
            running[gpu_class] += int(hours)
        row.cumulative = {c: running.get(c, 0) for c in sorted(budget)}
        row.within_budget = all(running.get(c, 0) <= budget[c] for c in budget)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for per_class in awarded_lines.values():
        for gpu_class, hours in per_class.items():
            totals[gpu_class] += hours
    budgets = [
        BudgetRow(
            gpu_class=c, budget=int(budget[c]), awarded=totals.get(c, ZERO), requested=running.get(c, 0)
        )
        for c in sorted(budget)
    ]
    return rows, budgets


def budget_left(*, call: Call) -> list[BudgetRow]:
    """The call's budget per GPU class with what its live awards already took."""
    from apps.grants.services import awarded_by_class

    awarded = awarded_by_class(call)
    return [
        BudgetRow(gpu_class=c, budget=int(b), awarded=awarded.get(c) or ZERO, requested=0)
        for c, b in sorted((call.budget or {}).items())
    ]


def staff_application_get(*, application_id: int) -> Application | None:
    return (
        Application.objects.select_related(
            "call__program", "organization__membership", "applicant", "award__mentor", "decided_by"
        )
        .prefetch_related(
            "preferred_pools__provider",
            "attachments",
            "call__criteria",
            "call__questions",
            Prefetch(
                "assignments",
                queryset=with_live_conflict(Assignment.objects.select_related("reviewer"))
                .prefetch_related("scores")
                .order_by("pk"),
            ),
            Prefetch(
                "award__lines", queryset=AwardLine.objects.select_related("grant", "period__pool__provider")
            ),
            "award__reports",
        )
        .filter(pk=application_id)
        .first()
    )


def award_period_choices(*, application: Application, valid_from, valid_until) -> list[PoolPeriod]:
    """Pool periods of the call's GPU classes that overlap the award, the preferred pools first."""
    classes = list((application.call.budget or {}).keys())
    periods = (
        PoolPeriod.objects.filter(
            pool__gpu_class__in=classes,
            pool__is_active=True,
            pool__provider__is_active=True,
            starts_on__lt=valid_until,
            ends_on__gt=valid_from,
        )
        .select_related("pool__provider")
        .order_by("pool__gpu_class", "pool__code", "starts_on")
    )
    preferred = {p.pk for p in application.preferred_pools.all()}
    return sorted(
        periods, key=lambda p: (p.pool_id not in preferred, p.pool.gpu_class, p.pool.code, p.starts_on)
    )


def report_list_for_staff() -> QuerySet[Report]:
    return (
        Report.objects.filter(award__status=Award.Status.ACTIVE)
        .select_related("award__application__call__program", "award__organization")
        .order_by("submitted_at", "due_on", "pk")
    )


def overdue_report_count() -> int:
    return Report.objects.filter(
        submitted_at__isnull=True, award__status=Award.Status.ACTIVE, due_on__lt=timezone.localdate()
    ).count()
