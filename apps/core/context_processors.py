from django.conf import settings
from django.utils.functional import SimpleLazyObject


def _operated_providers(user) -> list:
    """The providers the user operates, looked up once per request and only when a template
    asks (the navigation of full pages; htmx partials never do). Staff reach every provider's
    console from the provider pages, so they are spared the query."""
    if not user.is_authenticated or user.is_staff:
        return []
    if not hasattr(user, "_operated_providers"):
        from apps.providers.selectors import provider_list_for_operator

        user._operated_providers = provider_list_for_operator(user=user)
    return user._operated_providers


def navigation(request):
    """Flags the base template needs to draw the visitor / member / staff / operator navigation."""
    user = getattr(request, "user", None)
    authenticated = bool(user and user.is_authenticated)
    return {
        "nav_is_member": authenticated,
        "nav_is_staff": authenticated and user.is_staff,
        "nav_operated_providers": SimpleLazyObject(
            lambda: _operated_providers(user) if authenticated else []
        ),
        "PORTAL_LANGUAGES": settings.LANGUAGES,
    }
