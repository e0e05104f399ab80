"""What can be exported: each export is a list the portal shows, with the same filters (the list's
own filter form and selector) and the same permission (``None`` from ``resolve`` means 404).

``resolve(user, params)`` gets the user and the list's query string (a QueryDict) and returns the
queryset of the rows, in the list's order; ``columns`` say what each row becomes. The scope of a
list that belongs to an object (an organization, a provider, a round) is a query parameter
(``org``, ``provider``, ``round``), checked like the list page checks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from apps.reports.writers import DATE, DATETIME, DECIMAL, INT, Column


@dataclass(frozen=True)
class Export:
    name: str
    title: str
    columns: list[Column]
    resolve: Callable
    file_stem: Callable = lambda params: ""
    public: bool = False  # a public list (the member directory): visitors may export it too


def _filters(form) -> dict:
    from apps.core.http import valid_filters  # as the list views do

    return valid_filters(form)


def _staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


def _sync_label(grant) -> str:
    from apps.providers.selectors import SyncState

    return str(SyncState.labels.get(grant.sync_state, grant.sync_state))


def _same(value):
    return value


def _localized(ja: str, en: str) -> str:
    from apps.organizations.models import _localized as localized

    return localized(ja, en)  # as ``display_name``


# --- grants -------------------------------------------------------------------------------------


def _grants(user, params) -> QuerySet | None:
    from apps.providers import selectors
    from apps.providers.forms import GrantFilterForm

    if not _staff(user):
        return None
    return selectors.grant_list(**_filters(GrantFilterForm(params or None)))


def _org(user, params):
    from apps.organizations.selectors import organization_get_by_slug

    slug = params.get("org", "")
    organization = organization_get_by_slug(slug=slug) if slug else None
    if organization is None or not user.has_perm("providers.view_org_grants", organization):
        return None
    return organization


def _org_grants(user, params) -> QuerySet | None:
    from apps.providers import selectors

    organization = _org(user, params)
    return None if organization is None else selectors.grant_list_for_org(organization=organization)


def _provider_grants(user, params) -> QuerySet | None:
    from apps.providers import selectors
    from apps.providers.forms import ConsoleFilterForm

    slug = params.get("provider", "")
    provider = selectors.provider_get(slug=slug) if slug else None
    if provider is None or not user.has_perm("providers.view_provider_console", provider):
        return None
    return selectors.grant_list_for_provider(provider=provider, **_filters(ConsoleFilterForm(params or None)))


GRANT_ID = Column("grant_id", _("Grant id"), lambda g: g.public_id)
ORG_NAME = Column("organization", _("Organization"), lambda g: g.organization.display_name)
ORG_SLUG = Column("organization_slug", _("Organization (slug)"), lambda g: g.organization.slug)
PROVIDER = Column("provider", _("Provider"), lambda g: g.pool.provider.display_name)
POOL = Column("pool", _("Pool"), lambda g: g.pool.code)
GPU_CLASS = Column("gpu_class", _("GPU class"), lambda g: g.pool.gpu_class)
VALID_FROM = Column("valid_from", _("Valid from"), lambda g: g.valid_from, DATE)
VALID_UNTIL = Column("valid_until", _("Valid until (exclusive)"), lambda g: g.valid_until, DATE)
GPU_HOURS = Column("gpu_hours", _("GPU-hours granted"), lambda g: g.gpu_hours, DECIMAL)
USED = Column("used_hours", _("GPU-hours used"), lambda g: g.used_hours, DECIMAL)
STATE = Column("state", _("State"), lambda g: g.get_state_display())
SYNC = Column("sync", _("Sync"), _sync_label)
SOURCE = Column("source", _("Source"), lambda g: g.get_source_display())
SOURCE_REF = Column("source_ref", _("Source reference"), lambda g: g.source_ref)
VERSION = Column("version", _("Version"), lambda g: g.version, INT)
APPLIED = Column("applied_version", _("Applied version"), lambda g: g.applied_version, INT)


# --- membership applications ---------------------------------------------------------------------


def _applications(user, params) -> QuerySet | None:
    from apps.organizations.forms import ReviewFilterForm
    from apps.organizations.selectors import application_review_queue

    if not _staff(user):
        return None
    form = ReviewFilterForm(params or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return application_review_queue(
        status=filters.get("status", ""), kind=filters.get("kind", ""), q=filters.get("q", "")
    )


# --- allocation round results ----------------------------------------------------------------------


def _round(user, params):
    from apps.allocations.selectors import round_get

    if not user.has_perm("allocations.manage_round"):
        return None
    try:
        round_id = int(params.get("round", ""))
    except ValueError:
        return None
    return round_get(round_id=round_id)


def _round_results(user, params) -> QuerySet | None:
    from django.db.models import OuterRef, Subquery

    from apps.allocations import selectors
    from apps.allocations.forms import ResultFilterForm
    from apps.allocations.models import RoundWeight

    allocation_round = _round(user, params)
    if allocation_round is None:
        return None
    weight = RoundWeight.objects.filter(round=allocation_round, organization=OuterRef("organization")).values(
        "weight"
    )[:1]
    form = ResultFilterForm(
        params or None, round_pools=selectors.round_pool_list(allocation_round=allocation_round)
    )
    return (
        selectors.round_result_rows(allocation_round=allocation_round, **_filters(form))
        .select_related("organization", "pool__provider")
        .annotate(weight=Subquery(weight))
    )


def _round_stem(params) -> str:
    return f"round-{params.get('round', '')}"


# --- statements and settlement -----------------------------------------------------------------------


def _window(params):
    from django.utils import timezone

    from apps.reports.selectors import Window, fiscal_year_of, parse_window

    return parse_window(params.get("period", "")) or Window.fiscal_year(fiscal_year_of(timezone.localdate()))


def _statement(user, params) -> list | None:
    from apps.reports.selectors import statement

    organization = _org(user, params)
    if organization is None:
        return None
    return statement(organization=organization, window=_window(params)).lines


def _settlement(user, params) -> list | None:
    from apps.providers.selectors import provider_get
    from apps.reports.selectors import settlement

    slug = params.get("provider", "")
    if not slug:
        return settlement(window=_window(params)) if _staff(user) else None
    provider = provider_get(slug=slug)
    if provider is None or not user.has_perm("providers.view_provider_console", provider):
        return None
    return settlement(window=_window(params), provider=provider)


def _period_stem(params) -> str:
    return "-".join(
        part for part in (params.get("org", "") or params.get("provider", ""), _window(params).key) if part
    )


# --- usage lists and the audit log -----------------------------------------------------------------------


def _usage_filters_from(params, *, scoped: bool) -> dict:
    from apps.reports.forms import UsageFilterForm

    return _filters(UsageFilterForm(params or None, scoped_to_org=scoped))


def _usage_months(user, params):
    from apps.reports.selectors import usage_month_list

    if params.get("org"):
        organization = _org(user, params)
        if organization is None:
            return None
        return usage_month_list(org=organization, **_usage_filters_from(params, scoped=True))
    if not _staff(user):
        return None
    return usage_month_list(**_usage_filters_from(params, scoped=False))


def _usage_records(user, params):
    from apps.reports.selectors import usage_record_list

    if not _staff(user):
        return None
    return usage_record_list(**_usage_filters_from(params, scoped=False))


def _audit(user, params):
    from apps.reports.forms import AuditFilterForm
    from apps.reports.selectors import audit_event_list

    if not _staff(user):
        return None
    return audit_event_list(**_filters(AuditFilterForm(params or None)))


# --- the member directory and program calls ---------------------------------------------------------


def _members(user, params):
    """The public member directory (anyone may see it), with its filters."""
    from apps.organizations.forms import DirectoryFilterForm
    from apps.organizations.selectors import directory_list

    form = DirectoryFilterForm(params or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return directory_list(
        q=filters.get("q", ""), kind=filters.get("kind", ""), provider=filters.get("provider", "")
    )


def _call_ranking(user, params) -> list | None:
    """A program call's ranking (staff): the applications in rank order with their scores."""
    from apps.grants.models import Application, Call
    from apps.grants.selectors import call_ranking

    if not _staff(user):
        return None
    try:
        call = Call.objects.select_related("program").get(pk=int(params.get("call", "")))
    except (ValueError, Call.DoesNotExist):
        return None
    status = params.get("status", "")
    rows, _budgets = call_ranking(call=call, statuses=(status,) if status in Application.IN_REVIEW else None)
    return [(rank, row) for rank, row in enumerate(rows, start=1)]


def _per_class(values: dict) -> str:
    return "; ".join(f"{cls} {values[cls]}" for cls in sorted(values or {}))


# --- rounds, provider differences, working groups ------------------------------------------------------


def _rounds(user, params):
    from apps.allocations.selectors import round_list

    return round_list() if user.has_perm("allocations.manage_round") else None


def _drifts(user, params):
    from apps.providers.forms import DriftFilterForm
    from apps.providers.selectors import drift_list_open

    if not _staff(user):
        return None
    return drift_list_open(provider_slug=_filters(DriftFilterForm(params or None)).get("provider", ""))


def _groups(user, params):
    """The working-group directory: only the groups the user may see (visitors: public ones)."""
    from apps.workinggroups.forms import DirectoryFilterForm
    from apps.workinggroups.selectors import group_directory

    form = DirectoryFilterForm(params or None)
    filters = form.cleaned_data if form.is_valid() else {}
    return group_directory(
        user=user,
        q=filters.get("q", ""),
        industry=filters.get("industry", ""),
        status=filters.get("status", ""),
    )


def _state(state) -> str:
    if not state:
        return ""
    return ", ".join(f"{k}={state[k]}" for k in sorted(state))


EXPORTS: dict[str, Export] = {
    export.name: export
    for export in [
        Export(
            "grants",
            _("Grants"),
            [
                GRANT_ID,
                ORG_NAME,
                ORG_SLUG,
                PROVIDER,
                POOL,
                GPU_CLASS,
                VALID_FROM,
                VALID_UNTIL,
                GPU_HOURS,
                USED,
                STATE,
                SYNC,
                VERSION,
                APPLIED,
                SOURCE,
                SOURCE_REF,
            ],
            _grants,
        ),
        Export(
            "org-grants",
            _("GPU quota and usage"),
            [PROVIDER, POOL, GPU_CLASS, VALID_FROM, VALID_UNTIL, GPU_HOURS, USED, STATE, SOURCE, GRANT_ID],
            _org_grants,
            lambda params: params.get("org", ""),
        ),
        Export(
            "provider-grants",
            _("Grants on our pools"),
            [
                ORG_NAME,
                ORG_SLUG,
                GRANT_ID,
                POOL,
                GPU_CLASS,
                VALID_FROM,
                VALID_UNTIL,
                GPU_HOURS,
                USED,
                STATE,
                VERSION,
                APPLIED,
                SYNC,
            ],
            _provider_grants,
            lambda params: params.get("provider", ""),
        ),
        Export(
            "applications",
            _("Membership applications"),
            [
                Column("name_ja", _("Name (Japanese)"), lambda a: a.name_ja),
                Column("name_en", _("Name (English)"), lambda a: a.name_en),
                Column("kind", _("Kind"), lambda a: a.get_kind_display()),
                Column("corporate_number", _("Corporate number"), lambda a: a.corporate_number),
                Column("home_provider", _("Home provider"), lambda a: a.home_provider.display_name),
                Column("contact", _("Contact"), lambda a: a.contact_name),
                Column("contact_email", _("Contact e-mail"), lambda a: a.contact_email),
                Column("submitted_at", _("Submitted"), lambda a: a.submitted_at, DATETIME),
                Column("status", _("Status"), lambda a: a.get_status_display()),
                Column("reviewer", _("Reviewer"), lambda a: a.reviewer.email if a.reviewer else ""),
            ],
            _applications,
        ),
        Export(
            "round-results",
            _("Allocation round result"),
            [
                Column("organization", _("Organization"), lambda r: r.organization.display_name),
                Column("organization_slug", _("Organization (slug)"), lambda r: r.organization.slug),
                Column("gpu_class", _("GPU class"), lambda r: r.gpu_class),
                Column("provider", _("Provider"), lambda r: r.pool.provider.display_name if r.pool else ""),
                Column("pool", _("Pool"), lambda r: r.pool.code if r.pool else ""),
                Column("demand", _("Demand considered (GPU-hours)"), lambda r: r.demand, INT),
                Column("weight", _("Weight"), lambda r: r.weight, DECIMAL),
                Column("engine_amount", _("Engine's amount (GPU-hours)"), lambda r: r.amount, INT),
                Column("final_amount", _("Final amount (GPU-hours)"), lambda r: r.final_amount, INT),
                Column("adjustment_reason", _("Reason for the adjustment"), lambda r: r.adjustment_reason),
                Column("stopped", _("Stopped because"), lambda r: r.get_stopped_reason_display()),
                Column("level", _("Level"), lambda r: round(r.level, 4), DECIMAL),
            ],
            _round_results,
            _round_stem,
        ),
        Export(
            "statement",
            _("Statement"),
            [
                Column("section", _("Section"), lambda line: line.section_label),
                Column("provider", _("Provider"), lambda line: line.provider),
                Column("pool", _("Pool"), lambda line: line.pool),
                Column("gpu_class", _("GPU class"), lambda line: line.gpu_class),
                Column("granted", _("GPU-hours granted"), lambda line: line.granted, DECIMAL),
                Column("used", _("GPU-hours used"), lambda line: line.used, DECIMAL),
            ],
            _statement,
            _period_stem,
        ),
        Export(
            "settlement",
            _("Resale settlement"),
            [
                Column("home_provider", _("Home provider"), lambda r: r.home_provider.display_name),
                Column("serving_provider", _("Serving provider"), lambda r: r.serving_provider.display_name),
                Column("gpu_hours", _("GPU-hours used"), lambda r: r.gpu_hours, DECIMAL),
                Column("amount", _("Amount (JPY, wholesale rate)"), lambda r: r.amount, DECIMAL),
            ],
            _settlement,
            _period_stem,
        ),
        Export(
            "members",
            _("Member directory"),
            [
                Column("name", _("Organization"), lambda o: o.display_name),
                Column("slug", _("Organization (slug)"), lambda o: o.slug),
                Column("kind", _("Kind"), lambda o: o.get_kind_display()),
                Column("tier", _("Tier"), lambda o: o.membership.get_tier_display()),
                Column("home_provider", _("Home provider"), lambda o: o.home_provider.display_name),
                Column("website", _("Website"), lambda o: o.website if o.show_website else ""),
            ],
            _members,
            public=True,
        ),
        Export(
            "call-ranking",
            _("Program applications and awards"),
            [
                Column("rank", "#", lambda r: r[0], INT),
                Column("title", _("Application"), lambda r: r[1].application.title),
                Column("organization", _("Organization"), lambda r: r[1].application.organization_name),
                Column("status", _("Status"), lambda r: r[1].application.get_status_display()),
                Column(
                    "score",
                    _("Weighted score"),
                    lambda r: None if r[1].score is None else round(r[1].score, 2),
                    DECIMAL,
                ),
                Column("reviews", _("Reviews"), lambda r: r[1].reviews_done, INT),
                Column(
                    "requested",
                    _("Requested GPU-hours"),
                    lambda r: _per_class(r[1].application.requested_hours),
                ),
                Column("awarded", _("Awarded GPU-hours"), lambda r: _per_class(r[1].awarded)),
            ],
            _call_ranking,
            lambda params: f"call-{params.get('call', '')}",
        ),
        Export(
            "rounds",
            _("Allocation rounds"),
            [
                Column("name", _("Round"), lambda r: r.name),
                Column("fiscal_year", _("Fiscal year"), lambda r: r.fiscal_year, INT),
                Column("period_start", _("Period starts on"), lambda r: r.period_start, DATE),
                Column("period_end", _("Period ends on"), lambda r: r.period_end, DATE),
                Column("policy", _("Policy"), lambda r: r.policy.name),
                Column("status", _("Status"), lambda r: r.get_status_display()),
                Column("organizations", _("Organizations"), lambda r: r.org_count, INT),
                Column("requests", _("Requests"), lambda r: r.request_count, INT),
                Column("demand", _("GPU-hours asked"), lambda r: r.demand_total or 0, INT),
            ],
            _rounds,
        ),
        Export(
            "drifts",
            _("Differences with the providers"),
            [
                Column("provider", _("Provider"), lambda d: d.provider.display_name),
                Column("grant_id", _("Grant id"), lambda d: d.grant_public_id),
                Column(
                    "organization",
                    _("Organization"),
                    lambda d: d.grant.organization.display_name if d.grant else "",
                ),
                Column("pool", _("Pool"), lambda d: d.grant.pool.code if d.grant else ""),
                Column("kind", _("Difference"), lambda d: d.get_kind_display()),
                Column("detected_at", _("Detected at"), lambda d: d.detected_at, DATETIME),
                Column("ours", _("Portal"), lambda d: _state(d.ours)),
                Column("theirs", _("Provider's side"), lambda d: _state(d.theirs)),
            ],
            _drifts,
        ),
        Export(
            "groups",
            _("Working groups"),
            [
                Column("name", _("Name"), lambda g: g.display_name),
                Column("slug", _("Slug"), lambda g: g.slug),
                Column("industry", _("Industry"), lambda g: g.get_industry_display()),
                Column("status", _("Status"), lambda g: g.get_status_display()),
                Column("visibility", _("Visibility"), lambda g: g.get_visibility_display()),
                Column("join_policy", _("Joining"), lambda g: g.get_join_policy_display()),
                Column("members", _("Members"), lambda g: g.member_count, INT),
            ],
            _groups,
            public=True,
        ),
        Export(
            "usage-months",
            _("Usage by organization, pool and month"),
            [
                Column("month", _("Month"), lambda m: f"{m:%Y-%m}", paths=("month",)),
                Column(
                    "organization",
                    _("Organization"),
                    _localized,
                    paths=("grant__organization__name_ja", "grant__organization__name_en"),
                ),
                Column(
                    "organization_slug", _("Organization (slug)"), _same, paths=("grant__organization__slug",)
                ),
                Column(
                    "provider",
                    _("Provider"),
                    _localized,
                    paths=("grant__pool__provider__name_ja", "grant__pool__provider__name_en"),
                ),
                Column("pool", _("Pool"), _same, paths=("grant__pool__code",)),
                Column("gpu_class", _("GPU class"), _same, paths=("grant__pool__gpu_class",)),
                Column("grant_id", _("Grant id"), _same, paths=("grant__public_id",)),
                Column("gpu_hours", _("GPU-hours used"), _same, DECIMAL, paths=("gpu_hours",)),
                Column("records", _("Usage records"), _same, INT, paths=("records",)),
            ],
            _usage_months,
            lambda params: params.get("org", ""),
        ),
        Export(
            "usage-records",
            _("Usage records"),
            [
                Column(
                    "provider", _("Provider"), _localized, paths=("provider__name_ja", "provider__name_en")
                ),
                Column("record_id", _("Record id"), _same, paths=("record_id",)),
                Column("grant_id", _("Grant id"), _same, paths=("grant__public_id",)),
                Column(
                    "organization_slug", _("Organization (slug)"), _same, paths=("grant__organization__slug",)
                ),
                Column("pool", _("Pool"), _same, paths=("grant__pool__code",)),
                Column("started_at", _("Started at"), _same, DATETIME, paths=("started_at",)),
                Column("ended_at", _("Ended at"), _same, DATETIME, paths=("ended_at",)),
                Column("gpu_hours", _("GPU-hours"), _same, DECIMAL, paths=("gpu_hours",)),
                Column("received_at", _("Received at"), _same, DATETIME, paths=("received_at",)),
            ],
            _usage_records,
        ),
        Export(
            "audit",
            _("Audit log"),
            [
                Column("id", _("Event"), _same, INT, paths=("id",)),
                Column("occurred_at", _("Occurred at"), _same, DATETIME, paths=("occurred_at",)),
                Column("actor", _("Actor"), _same, paths=("actor_label",)),
                Column("action", _("Action"), _same, paths=("action",)),
                Column("target_type", _("Object type"), _same, paths=("target_type",)),
                Column("target_id", _("Object id"), _same, paths=("target_id",)),
                Column("target", _("Object"), _same, paths=("target_repr",)),
                Column("before", _("Before"), lambda v: _json(v), paths=("before",)),
                Column("after", _("After"), lambda v: _json(v), paths=("after",)),
                Column("hash", _("Hash"), _same, paths=("hash",)),
            ],
            _audit,
        ),
    ]
}


def _json(value) -> str:
    import json

    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
