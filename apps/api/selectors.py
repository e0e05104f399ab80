"""Reads of the member API. Every list runs a fixed number of queries whatever its length.

What a request reaches is decided here, once: ``organization_list_for_token`` is the user's
organizations (through their roles), narrowed to the token's chosen ones when it is restricted.
Everything per organization is looked up through it, so another organization's slug, request,
grant or usage answers "not found" alike.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Count, DecimalField, Prefetch, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.allocations.models import AllocationRequest, AllocationRound
from apps.api.models import PersonalAccessToken
from apps.organizations.models import Organization, OrgRole
from apps.providers import selectors as provider_selectors
from apps.providers.models import QuotaGrant, ResourcePool, UsageRecord

HOURS = DecimalField(max_digits=18, decimal_places=4)
# Rounds members see: open for requests, closed, and published with their results. A computed but
# unpublished result is the secretariat's until it is published (as on the web pages).
MEMBER_ROUND_STATUSES = (
    AllocationRound.Status.OPEN,
    AllocationRound.Status.CLOSED,
    AllocationRound.Status.PUBLISHED,
)


# --- tokens --------------------------------------------------------------------------------------


def token_get_by_secret(*, secret: str) -> PersonalAccessToken | None:
    return (
        PersonalAccessToken.objects.select_related("user")
        .filter(token_hash=PersonalAccessToken.hash_secret(secret))
        .first()
    )


def token_list_for_user(*, user) -> QuerySet[PersonalAccessToken]:
    return (
        PersonalAccessToken.objects.filter(user=user)
        .prefetch_related(Prefetch("organizations", queryset=Organization.objects.order_by("slug")))
        .order_by("revoked_at", "-created_at", "-id")
    )


# --- organizations -------------------------------------------------------------------------------


def organization_list_for_token(*, user, token: PersonalAccessToken | None) -> QuerySet[Organization]:
    """The organizations the request reaches, with the membership, home provider and the user's
    own roles (prefetched into ``my_roles``)."""
    member_of = OrgRole.objects.filter(user=user).values("organization_id")
    qs = Organization.objects.filter(pk__in=member_of)
    if token is not None and token.restricted:
        qs = qs.filter(pk__in=token.organizations.values("pk"))
    return (
        qs.select_related("membership", "home_provider")
        .prefetch_related(
            Prefetch("roles", queryset=OrgRole.objects.filter(user=user).order_by("role"), to_attr="my_roles")
        )
        .order_by("slug")
    )


def organization_get_for_token(*, user, token, slug: str) -> Organization | None:
    return organization_list_for_token(user=user, token=token).filter(slug=slug).first()


# --- rounds and requests -------------------------------------------------------------------------


def round_list_for_members() -> QuerySet[AllocationRound]:
    return AllocationRound.objects.filter(status__in=MEMBER_ROUND_STATUSES).order_by("-period_start", "-id")


def request_list_for_org(*, organization: Organization) -> QuerySet[AllocationRequest]:
    return (
        AllocationRequest.objects.filter(organization=organization)
        .select_related("round")
        .prefetch_related(
            Prefetch(
                "eligible_pools", queryset=ResourcePool.objects.select_related("provider").order_by("code")
            )
        )
        .order_by("-round__period_start", "round_id", "gpu_class")
    )


# --- grants and usage ----------------------------------------------------------------------------


def grant_list_for_org(*, organization: Organization, with_sync: bool = True) -> QuerySet[QuotaGrant]:
    """The organization's grants with ``used_hours`` and ``sync_state`` (see providers.selectors);
    ``with_sync=False`` for a page whose rows get them from ``grant_rows_for_page``."""
    return provider_selectors.grant_list_for_org(organization=organization, with_sync=with_sync)


def grant_rows_for_page(grants) -> list[QuotaGrant]:
    """A page of grants with ``used_hours`` and ``sync_state``: one query for the page's grants."""
    return provider_selectors.grant_rows_with_usage(grants)


def usage_list_for_org(*, organization: Organization) -> QuerySet[UsageRecord]:
    return (
        UsageRecord.objects.filter(grant__organization=organization)
        .select_related("grant__pool__provider")
        .order_by("-started_at", "-id")
    )


def month_bounds(month: date):
    """The first instant of ``month`` and of the month after, in the portal's time zone."""
    tz = timezone.get_current_timezone()
    start = date(month.year, month.month, 1)
    end = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return (
        timezone.make_aware(datetime(start.year, start.month, 1), tz),
        timezone.make_aware(datetime(end.year, end.month, 1), tz),
    )


def usage_summary_for_org(*, organization: Organization, month: date) -> list[dict]:
    """GPU-hours used per pool in ``month`` (by the start of each usage record), one query."""
    start, end = month_bounds(month)
    rows = (
        UsageRecord.objects.filter(
            grant__organization=organization, started_at__gte=start, started_at__lt=end
        )
        .values(
            "grant__pool__code",
            "grant__pool__gpu_class",
            "grant__pool__provider__slug",
        )
        .annotate(
            gpu_hours=Coalesce(Sum("gpu_hours"), Value(0), output_field=HOURS),
            records=Count("pk"),
            grants=Count("grant_id", distinct=True),
        )
        .order_by("grant__pool__code")
    )
    return [
        {
            "pool": row["grant__pool__code"],
            "gpu_class": row["grant__pool__gpu_class"],
            "provider": row["grant__pool__provider__slug"],
            "gpu_hours": row["gpu_hours"],
            "records": row["records"],
            "grants": row["grants"],
        }
        for row in rows
    ]
