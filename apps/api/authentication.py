"""``Authorization: Bearer gap_…``: personal access tokens for the member API."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from apps.api import selectors, services


class PersonalAccessTokenAuthentication(BaseAuthentication):
    """Authenticates with a personal access token; ``request.auth`` is the token.

    The token's user speaks the language of the API's messages, as on the web pages: the language
    cookie when the client sends one, else the account's preferred language (the locale middleware
    ran before the token was known, so it could only fall back to Japanese)."""

    keyword = "bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise AuthenticationFailed(
                _("Send the token as “Authorization: Bearer <token>”, with nothing else in the header."),
                code="malformed_token",
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed(_("This access token is not valid."), code="invalid_token") from exc
        token = selectors.token_get_by_secret(secret=secret)
        if token is None:
            raise AuthenticationFailed(_("This access token is not valid."), code="invalid_token")
        self._activate_language(request._request, token.user)
        if token.revoked_at is not None:
            raise AuthenticationFailed(_("This access token was revoked."), code="revoked_token")
        if token.is_expired:
            raise AuthenticationFailed(_("This access token has expired."), code="expired_token")
        if not token.user.is_active:
            raise AuthenticationFailed(_("This account is disabled."), code="inactive_user")
        services.token_mark_used(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _activate_language(request, user) -> None:
        supported = dict(settings.LANGUAGES)
        if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) in supported:
            return
        if user.language in supported:
            translation.activate(user.language)
            request.LANGUAGE_CODE = translation.get_language()
