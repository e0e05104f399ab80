from django.conf import settings


def navigation(request):
    """Flags the base template needs to draw the visitor / member / staff navigation."""
    user = getattr(request, "user", None)
    authenticated = bool(user and user.is_authenticated)
    return {
        "nav_is_member": authenticated,
        "nav_is_staff": authenticated and user.is_staff,
        "PORTAL_LANGUAGES": settings.LANGUAGES,
    }
