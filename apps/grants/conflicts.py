"""Conflicts of interest that follow changes (docs/grants.md, "Conflicts of interest").

A reviewer is in conflict with an application while the reviewer is its applicant or holds a role
in the applicant organization (by the organization, or by the corporate number typed in the
application). This is a *current* fact, not a snapshot of the assignment's day: a reviewer who gains
such a role after being assigned is blocked at once, on every read (review page, attachments,
lists) and every write (scores, revisions), and the secretariat sees the assignment flagged.
"""

from __future__ import annotations

from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet

from apps.organizations.models import OrgRole


def conflicted_user_ids(application, user_ids) -> set[int]:
    """Of ``user_ids``, those in conflict with ``application`` now (one or two queries)."""
    user_ids = set(user_ids)
    conflicted = {application.applicant_id} & user_ids
    roles = OrgRole.objects.filter(user_id__in=user_ids)
    if application.organization_id:
        conflicted |= set(
            roles.filter(organization_id=application.organization_id).values_list("user_id", flat=True)
        )
    if application.org_corporate_number:
        conflicted |= set(
            roles.filter(organization__corporate_number=application.org_corporate_number).values_list(
                "user_id", flat=True
            )
        )
    return conflicted


def is_conflicted(assignment) -> bool:
    """Whether the assignment's reviewer is in conflict with its application now."""
    if getattr(assignment, "live_conflict", None) is not None:
        return bool(assignment.live_conflict)
    return bool(conflicted_user_ids(assignment.application, [assignment.reviewer_id]))


def live_conflict_expression() -> ExpressionWrapper:
    """A boolean SQL expression on an Assignment queryset: whether its reviewer is conflicted now."""
    role_in_org = OrgRole.objects.filter(
        user_id=OuterRef("reviewer_id"), organization_id=OuterRef("application__organization_id")
    )
    role_by_number = OrgRole.objects.filter(
        user_id=OuterRef("reviewer_id"),
        organization__corporate_number=OuterRef("application__org_corporate_number"),
    ).exclude(organization__corporate_number="")
    return ExpressionWrapper(
        Q(reviewer_id=F("application__applicant_id")) | Q(Exists(role_in_org)) | Q(Exists(role_by_number)),
        output_field=BooleanField(),
    )


def with_live_conflict(queryset: QuerySet) -> QuerySet:
    """Annotate Assignments with ``live_conflict`` (one subquery per row in the same SELECT)."""
    return queryset.annotate(live_conflict=live_conflict_expression())
