from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_page_or_partial(request, template_name: str, partial: str, context: dict, **kwargs):
    """Render the whole page, or only ``partial`` of it when htmx asks (with Vary: HX-Request)."""
    name = f"{template_name}#{partial}" if getattr(request, "htmx", False) else template_name
    response = render(request, name, context, **kwargs)
    patch_vary_headers(response, ("HX-Request",))
    return response
