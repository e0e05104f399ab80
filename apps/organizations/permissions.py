"""Object permissions (rules). Views answer 404, not 403, when these say no to an outsider."""

import rules

from apps.organizations.models import MembershipApplication, Organization, OrgRole


@rules.predicate
def is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


@rules.predicate
def is_org_member(user, organization: Organization) -> bool:
    if not (user and user.is_authenticated) or organization is None:
        return False
    return OrgRole.objects.filter(organization=organization, user=user).exists()


@rules.predicate
def is_org_manager(user, organization: Organization) -> bool:
    if not (user and user.is_authenticated) or organization is None:
        return False
    return OrgRole.objects.filter(
        organization=organization, user=user, role__in=OrgRole.MANAGER_ROLES
    ).exists()


@rules.predicate
def is_applicant(user, application: MembershipApplication) -> bool:
    return bool(user and user.is_authenticated and application and application.applicant_id == user.pk)


@rules.predicate
def is_publicly_listed(user, organization: Organization) -> bool:
    membership = getattr(organization, "membership", None)
    return bool(organization.is_listed and membership and membership.status == membership.Status.ACTIVE)


rules.add_perm("organizations.view_org_public", is_publicly_listed | is_org_member | is_staff)
rules.add_perm("organizations.view_org_private", is_org_member | is_staff)
rules.add_perm("organizations.manage_org", is_org_manager)
rules.add_perm("organizations.view_application", is_applicant | is_staff)
rules.add_perm("organizations.review_application", is_staff)
