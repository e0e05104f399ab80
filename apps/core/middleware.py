import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.middleware.locale import LocaleMiddleware
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)


class PortalLocaleMiddleware(LocaleMiddleware):
    """Japanese first: the language is the visitor's explicit choice (the language cookie), else
    the account's preferred language, else Japanese. The browser's Accept-Language is not used:
    most users run English-language browsers but expect the Japanese portal."""

    def process_request(self, request):
        supported = dict(settings.LANGUAGES)
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if language not in supported:
            user = getattr(request, "user", None)
            language = getattr(user, "language", None) if user and user.is_authenticated else None
        if language not in supported:
            language = settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()


class DatabaseTimeoutMiddleware:
    """A request that waited too long for the database (PostgreSQL's lock_timeout or
    statement_timeout, settings.DATABASE_TIMEOUTS) answers 503 with Retry-After instead of a 500:
    the change was not made (its transaction rolled back) and may be tried again. JSON under /api/,
    a small page elsewhere (rendered without touching the database)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from apps.core.db import is_database_timeout

        if not is_database_timeout(exception):
            return None
        logger.warning("database timeout on %s %s: %s", request.method, request.path, exception)
        retry_after = settings.DATABASE_TIMEOUT_RETRY_AFTER
        message = _(
            "The portal is busy and could not finish your request. Nothing was changed; "
            "please try again in a moment."
        )
        if request.path.startswith("/api/"):
            body = {"detail": message, "error": message, "code": "database_busy", "retry_after": retry_after}
            response = JsonResponse(body, status=503)
        else:
            response = HttpResponse(
                render_to_string("core/busy.html", {"message": message, "retry_after": retry_after}),
                status=503,
            )
        response["Retry-After"] = str(retry_after)
        response["Cache-Control"] = "no-store"
        return response
