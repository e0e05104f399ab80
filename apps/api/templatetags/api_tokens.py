from django import template

from apps.api import selectors
from apps.api.forms import TokenCreateForm

register = template.Library()


@register.simple_tag(takes_context=True)
def api_token_section(context) -> dict:
    """What the token section shows: from the view that rendered it, or (on the profile page,
    whose view knows nothing of tokens) the user's tokens and an empty form."""
    section = context.get("api_section")
    if section is not None:
        return section
    user = context["request"].user
    return {
        "tokens": list(selectors.token_list_for_user(user=user)),
        "form": TokenCreateForm(user=user),
        "secret": None,
    }
