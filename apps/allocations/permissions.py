"""Object permissions (rules) of the allocation round."""

import rules

from apps.organizations.permissions import is_org_manager, is_staff

# Requests are filed for an organization by its owners and administrators.
rules.add_perm("allocations.request_for_org", is_org_manager)
# Rounds are run by the secretariat.
rules.add_perm("allocations.manage_round", is_staff)
