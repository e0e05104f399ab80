from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_page_or_partial(request, template_name: str, partial: str, context: dict, **kwargs):
    """Render the whole page, or only ``partial`` of it when htmx asks (with Vary: HX-Request)."""
    name = f"{template_name}#{partial}" if getattr(request, "htmx", False) else template_name
    response = render(request, name, context, **kwargs)
    patch_vary_headers(response, ("HX-Request",))
    return response


def querystring_without_page(request) -> str:
    """The list's query string (its filters) without ``page``: for pagination and export links."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def valid_filters(form) -> dict:
    """The filters of a bound filter form that were given and are valid; an invalid one is ignored,
    not the others (a list never answers 400 or 500 for a bad filter)."""
    if not form.is_bound:
        return {}
    form.is_valid()
    return {k: v for k, v in form.cleaned_data.items() if v}
