"""Object permissions (rules) of the member API, and the DRF permission for token scopes.

The API reaches an organization only through the user's own roles in it (the secretariat's staff
flag opens nothing here): members of any role read, owners and administrators file requests
(``allocations.request_for_org``).
"""

from __future__ import annotations

import rules
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from apps.organizations.permissions import is_org_member


@rules.predicate
def is_token_owner(user, token) -> bool:
    return bool(user and user.is_authenticated and token is not None and token.user_id == user.pk)


# Reading an organization's data through the API (object: the organization).
rules.add_perm("api.read_org", is_org_member)
# Revoking a personal access token (object: the token).
rules.add_perm("api.manage_token", is_token_owner)


class TokenScope(BasePermission):
    """Read-only tokens may only read: any other method answers 403."""

    message = _("This token is read-only: create a read-write token to change data.")
    code = "read_only_token"

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        token = request.auth
        return bool(token is not None and getattr(token, "can_write", False))
