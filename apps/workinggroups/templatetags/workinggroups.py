from django import template
from django.utils.html import strip_tags

from apps.workinggroups import selectors
from apps.workinggroups.rendering import render_markdown

register = template.Library()


@register.inclusion_tag("workinggroups/_dashboard_card.html", takes_context=True)
def my_working_groups(context):
    """The "my groups" card of the dashboard: a fixed number of queries (seats, meetings, votes)."""
    user = context["request"].user
    return {"seats": selectors.my_groups(user=user), "user": user}


@register.filter
def markdown_excerpt(text: str, length: int = 140) -> str:
    """Plain text of a Markdown text, shortened (for cards and lists)."""
    plain = " ".join(strip_tags(render_markdown(text)).split())
    return plain if len(plain) <= length else plain[: length - 1] + "…"
