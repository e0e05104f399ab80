"""Read queries for providers, pools, grants and their sync state.

Every list runs a fixed number of queries whatever its length: relations are joined with
``select_related``, per-row figures (usage, sync state, health) are correlated subqueries
annotated on the row, and children (capacity periods) are prefetched with their own annotations.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    Exists,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.governance.selectors import audit_event_list_for_target
from apps.organizations.models import Membership, Organization
from apps.providers.models import (
    DeliveryAttempt,
    GrantDrift,
    GrantOutbox,
    PoolPeriod,
    Provider,
    ProviderOperator,
    QuotaGrant,
    ResourcePool,
    UsageMonth,
    UsageRecord,
)

GState = QuotaGrant.State
OState = GrantOutbox.State
UNSETTLED = (OState.PENDING, OState.IN_FLIGHT)
ZERO = Decimal("0")
HOURS = DecimalField(max_digits=18, decimal_places=4)


class SyncState:
    """How a grant stands with its provider, worst first (a grant shows only its worst state)."""

    FAILING = "failing"
    DRIFTED = "drifted"
    SENDING = "sending"
    IN_SYNC = "in_sync"

    choices = [
        (FAILING, _("Failing")),
        (DRIFTED, _("Drifted")),
        (SENDING, _("Sending")),
        (IN_SYNC, _("In sync")),
    ]
    labels = dict(choices)


# --- Building blocks ----------------------------------------------------------------------------


def _count(queryset: QuerySet, group_by: str) -> Coalesce:
    """COUNT(*) of ``queryset`` as a correlated subquery (0 when there are no rows)."""
    subquery = queryset.order_by().values(group_by).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(subquery, output_field=IntegerField()), 0)


def _sum(queryset: QuerySet, group_by: str, field: str) -> Coalesce:
    subquery = queryset.order_by().values(group_by).annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(subquery, output_field=HOURS), Value(ZERO), output_field=HOURS)


def _failing_outbox() -> Exists:
    """The grant has an undelivered outbox row retried OUTBOX_FAILING_AFTER_ATTEMPTS times or more."""
    return Exists(
        GrantOutbox.objects.filter(
            grant_id=OuterRef("pk"),
            state__in=UNSETTLED,
            attempts__gte=settings.OUTBOX_FAILING_AFTER_ATTEMPTS,
        )
    )


def _with_sync(queryset: QuerySet[QuotaGrant]) -> QuerySet[QuotaGrant]:
    """Annotate grants with ``used_hours``, ``sync_state`` and the figures behind it."""
    return queryset.annotate(
        used_hours=_sum(UsageMonth.objects.filter(grant_id=OuterRef("pk")), "grant_id", "gpu_hours"),
        outbox_attempts=Coalesce(
            Subquery(
                GrantOutbox.objects.filter(grant_id=OuterRef("pk"), state__in=UNSETTLED)
                .order_by()
                .values("grant_id")
                .annotate(m=Max("attempts"))
                .values("m"),
                output_field=IntegerField(),
            ),
            0,
        ),
        sync_state=Case(
            When(state=GState.FAILED, then=Value(SyncState.FAILING)),
            When(_failing_outbox(), then=Value(SyncState.FAILING)),
            When(
                Exists(GrantDrift.objects.filter(grant_id=OuterRef("pk"), resolved_at__isnull=True)),
                then=Value(SyncState.DRIFTED),
            ),
            When(
                Exists(GrantOutbox.objects.filter(grant_id=OuterRef("pk"), state__in=UNSETTLED)),
                then=Value(SyncState.SENDING),
            ),
            When(state__in=[GState.PENDING, GState.SENT, GState.REVOKING], then=Value(SyncState.SENDING)),
            default=Value(SyncState.IN_SYNC),
            output_field=CharField(),
        ),
    )


def _percent(part: Decimal | None, whole: Decimal | None) -> Decimal:
    if not whole:
        return ZERO
    return (Decimal(part or 0) * 100 / Decimal(whole)).quantize(Decimal("0.1"))


# --- Pools and capacity -------------------------------------------------------------------------


def _periods_with_utilisation() -> QuerySet[PoolPeriod]:
    """Current and coming periods (past ones are history: their grants stay in the grant lists)."""
    live = QuotaGrant.objects.filter(period_id=OuterRef("pk"), state__in=QuotaGrant.LIVE_STATES)
    return (
        PoolPeriod.objects.filter(ends_on__gt=timezone.localdate())
        .annotate(
            granted_hours=_sum(live, "period_id", "gpu_hours"),
            live_grants=_count(live, "period_id"),
            used_hours=_sum(
                UsageMonth.objects.filter(grant__period_id=OuterRef("pk")), "grant__period_id", "gpu_hours"
            ),
        )
        .order_by("starts_on")
    )


def pool_list_with_periods(*, provider: Provider | None = None) -> list[ResourcePool]:
    """Pools with their current and coming capacity periods; each period carries ``granted_hours``
    (live grants), ``used_hours``, ``free_hours`` and ``utilisation`` (percent of capacity granted)."""
    pools = ResourcePool.objects.select_related("provider").prefetch_related(
        Prefetch("periods", queryset=_periods_with_utilisation(), to_attr="period_list")
    )
    if provider is not None:
        pools = pools.filter(provider=provider)
    pools = list(pools)
    for pool in pools:
        for period in pool.period_list:
            period.free_hours = period.capacity_gpu_hours - period.granted_hours
            period.utilisation = _percent(period.granted_hours, period.capacity_gpu_hours)
    return pools


# --- Provider health ----------------------------------------------------------------------------


def _health_annotations() -> dict:
    now = timezone.now()
    attempts = DeliveryAttempt.objects.filter(provider_id=OuterRef("pk"))
    unsettled = GrantOutbox.objects.filter(provider_id=OuterRef("pk"), state__in=UNSETTLED)
    failing_grants = QuotaGrant.objects.filter(pool__provider_id=OuterRef("pk")).filter(
        Q(state=GState.FAILED) | Q(_failing_outbox())
    )
    return {
        "last_success_at": Subquery(
            attempts.filter(ok=True).order_by("-at").values("at")[:1],
        ),
        "attempts_1h": _count(attempts.filter(at__gte=now - timedelta(hours=1)), "provider_id"),
        "errors_1h": _count(attempts.filter(at__gte=now - timedelta(hours=1), ok=False), "provider_id"),
        "attempts_24h": _count(attempts.filter(at__gte=now - timedelta(hours=24)), "provider_id"),
        "errors_24h": _count(attempts.filter(at__gte=now - timedelta(hours=24), ok=False), "provider_id"),
        "pending_count": _count(unsettled, "provider_id"),
        "failing_count": _count(failing_grants, "pool__provider"),
        "open_drifts": _count(
            GrantDrift.objects.filter(provider_id=OuterRef("pk"), resolved_at__isnull=True), "provider_id"
        ),
    }


def _level(rate: Decimal | None) -> str:
    if rate is None or rate == 0:
        return "ok"
    return "bad" if rate >= 20 else "warn"


def _finish_health(provider: Provider) -> Provider:
    provider.error_rate_1h = (
        _percent(provider.errors_1h, provider.attempts_1h) if provider.attempts_1h else None
    )
    provider.error_rate_24h = (
        _percent(provider.errors_24h, provider.attempts_24h) if provider.attempts_24h else None
    )
    provider.error_level_1h = _level(provider.error_rate_1h)
    provider.error_level_24h = _level(provider.error_rate_24h)
    return provider


def provider_list_with_health() -> list[Provider]:
    """Every provider with its delivery health: ``last_success_at``, error rates over the last
    hour and day (percent, None without attempts), ``pending_count`` (outbox rows to send),
    ``failing_count`` (grants failed or retried many times) and ``open_drifts``."""
    return [_finish_health(p) for p in Provider.objects.annotate(**_health_annotations()).order_by("name_en")]


def provider_list_with_pools() -> list[Provider]:
    """Providers with their health (as above) and their pools in ``pool_list``; three queries."""
    providers = provider_list_with_health()
    pools: dict[int, list[ResourcePool]] = {}
    for pool in pool_list_with_periods():
        pools.setdefault(pool.provider_id, []).append(pool)
    for provider in providers:
        provider.pool_list = pools.get(provider.pk, [])
    return providers


def provider_get_with_health(*, slug: str) -> Provider | None:
    provider = Provider.objects.annotate(**_health_annotations()).filter(slug=slug).first()
    return _finish_health(provider) if provider else None


def provider_get(*, slug: str) -> Provider | None:
    return Provider.objects.filter(slug=slug).first()


def delivery_attempt_list(*, provider: Provider, limit: int = 20) -> QuerySet[DeliveryAttempt]:
    return (
        DeliveryAttempt.objects.filter(provider=provider)
        .select_related("outbox__grant")
        .order_by("-at", "-id")[:limit]
    )


def provider_operator_list(*, provider: Provider) -> QuerySet[ProviderOperator]:
    return ProviderOperator.objects.filter(provider=provider).select_related("user").order_by("user__email")


def provider_list_for_operator(*, user) -> list[Provider]:
    """The providers a user operates (for the navigation); one query."""
    if not (user and user.is_authenticated):
        return []
    return list(Provider.objects.filter(operators__user=user).order_by("name_en"))


# --- Grants -------------------------------------------------------------------------------------


def grant_list(
    *,
    state: str = "",
    sync: str = "",
    provider: str = "",
    pool: str = "",
    organization: str = "",
    q: str = "",
    with_sync: bool = True,
) -> QuerySet[QuotaGrant]:
    """Grants for the secretariat, newest first, with ``used_hours`` and ``sync_state``.

    ``provider``, ``pool`` and ``organization`` are slugs / pool codes; ``q`` searches the
    organization's names, the pool and the grant id. ``with_sync=False`` (a page, whose rows get
    their figures from ``grant_rows_with_usage``) leaves out the per-grant subqueries."""
    qs = QuotaGrant.objects.select_related("organization", "pool__provider", "period")
    if with_sync:
        qs = _with_sync(qs)
    if state:
        qs = qs.filter(state=state)
    if sync:
        qs = qs.filter(pk__in=_with_sync(QuotaGrant.objects.order_by()).filter(sync_state=sync).values("pk"))
    if provider:
        qs = qs.filter(pool__provider__slug=provider)
    if pool:
        qs = qs.filter(pool__code=pool)
    if organization:
        qs = qs.filter(organization__slug=organization)
    if q:
        query = (
            Q(organization__name_ja__icontains=q)
            | Q(organization__name_en__icontains=q)
            | Q(organization__slug__icontains=q)
            | Q(pool__code__icontains=q)
            | Q(pool__gpu_class__icontains=q)
            | Q(source_ref__icontains=q)
        )
        if len(q) >= 4:  # the start of a grant id, as copied from a provider's system
            query |= Q(public_id__startswith=q.lower())
        qs = qs.filter(query)
    return qs.order_by("-created_at", "-id")


def grant_get_for_row(*, grant_id: int) -> QuotaGrant | None:
    """One grant with everything a row of the grant list shows."""
    return grant_list().filter(pk=grant_id).first()


def grant_get(*, public_id) -> QuotaGrant | None:
    return (
        _with_sync(
            QuotaGrant.objects.select_related("organization", "pool__provider", "period", "created_by")
        )
        .filter(public_id=public_id)
        .first()
    )


@dataclass
class GrantHistory:
    outbox: list[GrantOutbox]
    attempts: list[DeliveryAttempt]
    drifts: list[GrantDrift]
    audit_events: list
    usage_count: int


def grant_history(*, grant: QuotaGrant, limit: int = 50) -> GrantHistory:
    """What happened to one grant: its outbox rows, the calls made for them, drifts found and
    the audit trail."""
    return GrantHistory(
        outbox=list(GrantOutbox.objects.filter(grant=grant).order_by("-id")[:limit]),
        attempts=list(
            DeliveryAttempt.objects.filter(outbox__grant=grant)
            .select_related("outbox")
            .order_by("-at", "-id")[:limit]
        ),
        drifts=list(
            GrantDrift.objects.filter(grant=grant).select_related("resolved_by").order_by("-detected_at")
        ),
        audit_events=list(audit_event_list_for_target(target=grant, limit=limit)),
        usage_count=UsageRecord.objects.filter(grant=grant).count(),
    )


def grant_list_for_org(*, organization: Organization, with_sync: bool = True) -> QuerySet[QuotaGrant]:
    """An organization's grants, newest period first, annotated as ``grant_list`` (unless
    ``with_sync=False``, for a page)."""
    qs = QuotaGrant.objects.filter(organization=organization).select_related("pool__provider", "period")
    return (_with_sync(qs) if with_sync else qs).order_by("-valid_from", "-id")


SYNC_FIELDS = ("used_hours", "outbox_attempts", "sync_state")


_URL_PLACEHOLDER = uuid.UUID(int=0)


def grant_rows_with_usage(grants) -> list[QuotaGrant]:
    """Add ``usage_pct`` (used as a percent of granted), ``over_quota`` and ``sync_label`` to each
    grant of a page. Grants listed without their sync figures (``with_sync=False``) get them here,
    in one query over the page's grants only: a page of 50 costs the same whatever the list's
    length or the page's number (an annotated OFFSET query computes them for every skipped row)."""
    rows = list(grants)
    missing = [grant.pk for grant in rows if not hasattr(grant, "sync_state")]
    if missing:
        figures = {
            row["pk"]: row
            for row in _with_sync(QuotaGrant.objects.filter(pk__in=missing)).values("pk", *SYNC_FIELDS)
        }
        for grant in rows:
            if grant.pk in figures:
                for name in SYNC_FIELDS:
                    setattr(grant, name, figures[grant.pk][name])
    states, sources = dict(QuotaGrant.State.choices), dict(QuotaGrant.Source.choices)
    detail_url = reverse("providers:grant-detail", args=[_URL_PLACEHOLDER])  # one reverse() a page
    for grant in rows:
        grant.url = detail_url.replace(str(_URL_PLACEHOLDER), str(grant.public_id))
        grant.short_id = str(grant.public_id)[:8]
        grant.state_label = states.get(grant.state, grant.state)  # get_state_display, once per page
        grant.source_label = sources.get(grant.source, grant.source)
        grant.sync_label = SyncState.labels[grant.sync_state]
        grant.usage_pct = _percent(grant.used_hours, grant.gpu_hours)
        grant.over_quota = grant.used_hours > grant.gpu_hours
    return rows


def grant_totals(queryset: QuerySet[QuotaGrant]) -> dict:
    """Granted hours of live grants and hours used under any of ``queryset``'s grants (two
    aggregates: the usage is summed from the monthly roll-ups of the grants, not per grant)."""
    plain = queryset.order_by().values("pk")  # the grants, without any per-grant annotation
    totals = QuotaGrant.objects.filter(pk__in=plain).aggregate(
        granted=Coalesce(
            Sum("gpu_hours", filter=Q(state__in=QuotaGrant.LIVE_STATES)), Value(ZERO), output_field=HOURS
        ),
        live=Count("pk", filter=Q(state__in=QuotaGrant.LIVE_STATES)),
    )
    totals["used"] = UsageMonth.objects.filter(grant_id__in=plain).aggregate(
        used=Coalesce(Sum("gpu_hours"), Value(ZERO), output_field=HOURS)
    )["used"]
    totals["usage_pct"] = _percent(totals["used"], totals["granted"])
    return totals


def sync_state_counts(
    queryset: QuerySet[QuotaGrant], *, total: int | None = None
) -> list[tuple[str, str, int]]:
    """(value, label, count) for each sync state of ``queryset``'s grants, in SyncState order.

    Same rules as ``_with_sync`` (worst state wins) but from the few grants that are *not* in sync
    (failed, with an undelivered outbox row, with an open drift, or on their way): four indexed
    queries instead of a CASE with subqueries over every grant."""
    scope = queryset.order_by().values("pk")
    unsettled = list(
        GrantOutbox.objects.filter(grant__in=scope, state__in=UNSETTLED).values_list("grant_id", "attempts")
    )
    by_state = list(
        queryset.order_by()
        .filter(state__in=[GState.FAILED, GState.PENDING, GState.SENT, GState.REVOKING])
        .values_list("pk", "state")
    )
    failing = {pk for pk, state in by_state if state == GState.FAILED} | {
        grant_id for grant_id, attempts in unsettled if attempts >= settings.OUTBOX_FAILING_AFTER_ATTEMPTS
    }
    drifted = (
        set(
            GrantDrift.objects.filter(grant__in=scope, resolved_at__isnull=True).values_list(
                "grant_id", flat=True
            )
        )
        - failing
    )
    sending = (
        {grant_id for grant_id, _ in unsettled} | {pk for pk, state in by_state if state != GState.FAILED}
    ) - (failing | drifted)
    if total is None:  # the caller may know it already (the unfiltered list's paginator)
        total = queryset.order_by().count()
    counts = {
        SyncState.FAILING: len(failing),
        SyncState.DRIFTED: len(drifted),
        SyncState.SENDING: len(sending),
        SyncState.IN_SYNC: total - len(failing) - len(drifted) - len(sending),
    }
    return [(value, label, counts[value]) for value, label in SyncState.choices]


def grant_list_for_provider(
    *, provider: Provider, state: str = "", sync: str = "", q: str = "", with_sync: bool = True
) -> QuerySet[QuotaGrant]:
    """Grants on a provider's pools, for its operator (annotated as ``grant_list``)."""
    return grant_list(state=state, sync=sync, q=q, with_sync=with_sync).filter(pool__provider=provider)


# --- Drifts -------------------------------------------------------------------------------------


def drift_list_open(*, provider: Provider | None = None, provider_slug: str = "") -> QuerySet[GrantDrift]:
    qs = GrantDrift.objects.filter(resolved_at__isnull=True).select_related(
        "provider", "grant__organization", "grant__pool"
    )
    if provider is not None:
        qs = qs.filter(provider=provider)
    if provider_slug:
        qs = qs.filter(provider__slug=provider_slug)
    return qs.order_by("-detected_at", "-id")


def drift_get(*, drift_id: int) -> GrantDrift | None:
    return (
        GrantDrift.objects.select_related("provider", "grant__organization", "grant__pool", "resolved_by")
        .filter(pk=drift_id)
        .first()
    )


def drift_open_count() -> int:
    return GrantDrift.objects.filter(resolved_at__isnull=True).count()


# --- Choices for forms --------------------------------------------------------------------------


def period_list_for_granting() -> QuerySet[PoolPeriod]:
    """Capacity periods that can take new grants: active pools of active providers, not ended."""
    return (
        PoolPeriod.objects.filter(
            pool__is_active=True, pool__provider__is_active=True, ends_on__gt=timezone.localdate()
        )
        .select_related("pool__provider")
        .order_by("pool__provider__name_en", "pool__code", "starts_on")
    )


def organization_list_for_granting() -> QuerySet[Organization]:
    return Organization.objects.filter(membership__status=Membership.Status.ACTIVE).order_by("name_en", "pk")


def organization_search_for_granting(*, q: str, limit: int = 20) -> list[Organization]:
    """At most ``limit`` organizations that can be granted quota whose names or slug contain ``q``
    (those whose name or slug starts with it first); nothing for an empty ``q``. One query."""
    q = q.strip()
    if not q:
        return []
    starts = Q(name_ja__istartswith=q) | Q(name_en__istartswith=q) | Q(slug__istartswith=q)
    return list(
        organization_list_for_granting()
        .filter(Q(name_ja__icontains=q) | Q(name_en__icontains=q) | Q(slug__icontains=q))
        .annotate(starts=Case(When(starts, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("starts", "name_en", "pk")[:limit]
    )


def usage_rejection_summary(*, provider: Provider, recent: int = 10) -> dict:
    """Refused usage of a provider: how many records in all, and its latest refused batches."""
    from apps.providers.models import UsageRejection

    rows = UsageRejection.objects.filter(provider=provider)
    return {
        "total": rows.aggregate(total=Sum("rejected"))["total"] or 0,
        "recent": list(rows.order_by("-received_at", "-pk")[:recent]),
    }
