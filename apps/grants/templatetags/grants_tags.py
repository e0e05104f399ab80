"""``{% grants_dashboard %}``: the user's grant applications, reviews and reports due, for the
member dashboard. Bounded queries of its own (the dashboard's view knows nothing of grants)."""

from django import template
from django.utils import timezone

from apps.grants import selectors

register = template.Library()
LIMIT = 10


@register.inclusion_tag("grants/includes/dashboard.html", takes_context=True)
def grants_dashboard(context):
    user = context["request"].user
    if not user.is_authenticated:
        return {"show": False}
    applications = list(selectors.application_list_for_user(user=user)[:LIMIT])
    reviews = list(selectors.assignment_list_for_reviewer(user=user).filter(status="assigned")[:LIMIT])
    reports = selectors.reports_due_for_user(user=user, limit=LIMIT)
    return {
        "show": True,
        "applications": applications,
        "reviews": reviews,
        "reports": reports,
        "today": timezone.localdate(),
    }
