"""Charts for pages of other apps: pool utilisation (staff, providers) and the member dashboard's
usage against quota. The figures are those the pages show in their tables."""

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _

register = template.Library()


@register.simple_tag
def pool_utilisation_chart(pools) -> dict:
    """A chart spec from ``providers.selectors.pool_list_with_periods`` (already loaded)."""
    labels, capacity, granted, used = [], [], [], []
    for pool in pools:
        for period in getattr(pool, "period_list", []):
            labels.append(f"{pool.code} {period.starts_on:%Y-%m}")
            capacity.append(float(period.capacity_gpu_hours))
            granted.append(float(period.granted_hours))
            used.append(float(getattr(period, "used_hours", 0) or 0))
    return {
        "type": "bar",
        "labels": labels,
        "unit": _("GPU-hours"),
        "series": [
            {"label": _("Capacity"), "data": capacity},
            {"label": _("Granted"), "data": granted},
            {"label": _("Used"), "data": used},
        ],
    }


@register.inclusion_tag("reports/_dashboard_usage.html", takes_context=True)
def member_usage_charts(context, limit: int = 3):
    """For each of the user's organizations (at most ``limit``), granted vs used GPU-hours per month
    of the current fiscal year. Three queries whatever the number of organizations and grants."""
    from apps.organizations.models import Organization, OrgRole
    from apps.reports.selectors import Window, fiscal_year_of, statements_for

    user = context["request"].user
    if not user.is_authenticated:
        return {"charts": []}
    organizations = list(
        Organization.objects.filter(pk__in=OrgRole.objects.filter(user=user).values("organization_id"))
        .filter(membership__status="active")
        .order_by("name_en")[:limit]
    )
    window = Window.fiscal_year(fiscal_year_of(timezone.localdate()))
    charts = []
    for statement in statements_for(organizations=organizations, window=window):
        if not any(granted or used for _month, granted, used in statement.by_month):
            continue
        charts.append(
            {
                "organization": statement.organization,
                "window": window,
                "chart_id": f"usage-chart-{statement.organization.pk}",
                "spec": {
                    "type": "bar",
                    "labels": [f"{m:%Y-%m}" for m, _g, _u in statement.by_month],
                    "unit": _("GPU-hours"),
                    "series": [
                        {
                            "label": _("Granted (GPU-hours)"),
                            "data": [float(g) for _m, g, _u in statement.by_month],
                        },
                        {
                            "label": _("Used (GPU-hours)"),
                            "data": [float(u) for _m, _g, u in statement.by_month],
                        },
                    ],
                },
            }
        )
    return {"charts": charts}
