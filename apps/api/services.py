"""Personal access tokens: create (the secret is returned once and never stored), revoke, and
note when a token was last used."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.api.models import TOKEN_PREFIX, PersonalAccessToken
from apps.core.exceptions import ApplicationError
from apps.core.permissions import has_perm
from apps.governance.services import audit_record
from apps.organizations.models import Organization, OrgRole

MAX_LIVE_TOKENS = 50
MAX_LIFETIME_DAYS = 366
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _snapshot(token: PersonalAccessToken, organization_slugs: list[str]) -> dict:
    return {
        "name": token.name,
        "scope": token.scope,
        "restricted": token.restricted,
        "organizations": organization_slugs,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "token_hint": token.token_hint,
    }


@transaction.atomic
def token_create(
    *,
    user,
    name: str,
    scope: str,
    expires_in_days: int | None = None,
    organization_ids=None,
) -> tuple[PersonalAccessToken, str]:
    """Create a token for ``user``; returns it and its secret (shown once, only its hash is kept).

    ``organization_ids`` limits the token to those of the user's organizations; ``None`` or an
    empty list reaches all of them."""
    if user is None or not user.is_authenticated:
        raise ApplicationError(_("Log in to create an access token."), code="forbidden")
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("Give the token a name, for example the script that will use it."))
    if len(name) > 100:
        raise ApplicationError(_("The name can have at most 100 characters."))
    if scope not in PersonalAccessToken.Scope.values:
        raise ApplicationError(
            _("Choose whether the token may only read or also write."), code="invalid_scope"
        )
    expires_at = None
    if expires_in_days is not None:
        if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int):
            raise ApplicationError(_("The lifetime must be a whole number of days."))
        if not 1 <= expires_in_days <= MAX_LIFETIME_DAYS:
            raise ApplicationError(
                _("The lifetime must be between 1 and %(max)s days.") % {"max": MAX_LIFETIME_DAYS}
            )
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    ids = sorted(set(organization_ids or []))
    organizations: list[Organization] = []
    if ids:
        organizations = list(
            Organization.objects.filter(
                pk__in=OrgRole.objects.filter(user=user, organization_id__in=ids).values("organization_id")
            ).order_by("slug")
        )
        if len(organizations) != len(ids):
            raise ApplicationError(
                _("A token can only be limited to organizations you belong to."), code="invalid_organizations"
            )
    # Lock the user's row so that two concurrent creations count the live tokens one after the other.
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    live = (
        PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .count()
    )
    if live >= MAX_LIVE_TOKENS:
        raise ApplicationError(
            _("You already have %(max)s active tokens; revoke one you no longer use first.")
            % {"max": MAX_LIVE_TOKENS},
            code="too_many_tokens",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = PersonalAccessToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        restricted=bool(organizations),
        token_hash=PersonalAccessToken.hash_secret(secret),
        token_hint=secret[: len(TOKEN_PREFIX) + 6],
        expires_at=expires_at,
    )
    token.organizations.set(organizations)
    audit_record(
        actor=user,
        action="api_token.created",
        target=token,
        after=_snapshot(token, [o.slug for o in organizations]),
    )
    return token, secret


@transaction.atomic
def token_revoke(*, token_id: int, actor) -> PersonalAccessToken:
    """Revoke one of the actor's own tokens; from then on it answers 401."""
    token = PersonalAccessToken.objects.select_for_update().filter(pk=token_id).first()
    if token is None or not (actor is not None and has_perm(actor, "api.manage_token", token)):
        raise ApplicationError(_("This token does not exist."), code="not_found")
    if token.revoked_at is not None:
        raise ApplicationError(_("This token is already revoked."), code="already_revoked")
    before = _snapshot(token, list(token.organizations.order_by("slug").values_list("slug", flat=True)))
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at", "updated_at"])
    after = dict(before, revoked_at=token.revoked_at.isoformat())
    audit_record(actor=actor, action="api_token.revoked", target=token, before=before, after=after)
    return token


def token_mark_used(*, token: PersonalAccessToken) -> None:
    """Note that the token was used now, with one conditional UPDATE at most once a minute."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < LAST_USED_RESOLUTION:
        return
    PersonalAccessToken.objects.filter(pk=token.pk).exclude(
        last_used_at__gt=now - LAST_USED_RESOLUTION
    ).update(last_used_at=now)
    token.last_used_at = now
