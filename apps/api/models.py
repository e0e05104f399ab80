"""Personal access tokens of the member API.

A token belongs to one user, reads (scope ``read``) or reads and writes (``write``), and reaches
the user's organizations: all of them, or only those chosen (``restricted``) that the user still
belongs to. Only the SHA-256 of the secret is stored; the secret is shown once, on creation.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel

TOKEN_PREFIX = "gap_"


class PersonalAccessToken(BaseModel):
    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        WRITE = "write", _("Read and write")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices, default=Scope.READ)
    restricted = models.BooleanField(
        _("limited to chosen organizations"),
        default=False,
        help_text=_("Otherwise the token reaches every organization the user belongs to."),
    )
    organizations = models.ManyToManyField(
        "organizations.Organization", verbose_name=_("organizations"), blank=True, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    # The start of the secret ("gap_" and a few characters), to recognise a token in the list.
    token_hint = models.CharField(_("token starts with"), max_length=16)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("personal access token")
        verbose_name_plural = _("personal access tokens")
        indexes = [
            models.Index(fields=["user"], condition=Q(revoked_at__isnull=True), name="pat_live_by_user")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_hint}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and timezone.now() >= self.expires_at

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.WRITE

    @property
    def state(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"

    def get_state_display(self) -> str:
        return {"revoked": _("Revoked"), "expired": _("Expired"), "active": _("Active")}[self.state]
