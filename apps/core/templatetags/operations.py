from django import template

from apps.core.selectors import delivery_health

register = template.Library()


@register.inclusion_tag("core/includes/delivery_health.html")
def delivery_backlog(provider=None):
    """The outbox backlog (of ``provider``, or all) and whether a worker is alive: two queries."""
    return {"health": delivery_health(provider_id=provider.pk if provider else None), "provider": provider}
