"""Object permissions (rules). Views answer 404, not 403, when these say no to an outsider."""

from __future__ import annotations

import rules

from apps.organizations.permissions import is_org_member, is_staff
from apps.providers.models import Provider, ProviderOperator


@rules.predicate
def is_provider_operator(user, provider: Provider) -> bool:
    if not (user and user.is_authenticated) or provider is None:
        return False
    return ProviderOperator.objects.filter(provider=provider, user=user).exists()


# The provider console: its pools, the grants on them, their sync state and usage.
rules.add_perm("providers.view_provider_console", is_staff | is_provider_operator)
# The secretariat's pages: every provider's health, all grants, drifts, manual grants.
rules.add_perm("providers.manage_grants", is_staff)
# An organization's own grants and usage (object: the organization).
rules.add_perm("providers.view_org_grants", is_org_member | is_staff)
