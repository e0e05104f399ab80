"""Read queries for onboarding. Each list has a fixed number of queries whatever its length."""

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.organizations.models import (
    Invitation,
    Membership,
    MembershipApplication,
    Organization,
    OrgRole,
    ParticipationTerms,
)


def directory_list(*, q: str = "", kind: str = "", provider: str = "") -> QuerySet[Organization]:
    """Members that chose to be listed and are in good standing, with what they made public."""
    qs = (
        Organization.objects.filter(is_listed=True, membership__status=Membership.Status.ACTIVE)
        .select_related("membership", "home_provider")
        .order_by("name_en", "pk")
    )
    if q:
        qs = qs.filter(
            Q(name_ja__icontains=q)
            | Q(name_en__icontains=q)
            | Q(description_ja__icontains=q)
            | Q(description_en__icontains=q)
        )
    if kind:
        qs = qs.filter(kind=kind)
    if provider:
        qs = qs.filter(home_provider__slug=provider)
    return qs


def organization_get_by_slug(*, slug: str) -> Organization | None:
    return Organization.objects.select_related("membership", "home_provider").filter(slug=slug).first()


def organization_people(*, organization: Organization) -> list[dict]:
    """People of an organization, one entry per person with all their roles."""
    people: dict[int, dict] = {}
    for role in (
        OrgRole.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__email", "role")
    ):
        entry = people.setdefault(role.user_id, {"user": role.user, "roles": []})
        entry["roles"].append(role)
    return list(people.values())


def invitation_list_for_org(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization).select_related("invited_by", "accepted_by")


def invitation_pending_for_user(*, user) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        email__iexact=user.email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).select_related("organization")


def organization_list_for_user(*, user) -> QuerySet[Organization]:
    """The user's organizations, by name, with their membership and home provider. What each row
    shows about people and roles is added to a page of them by ``organization_rows_for_user``."""
    return (
        Organization.objects.filter(pk__in=OrgRole.objects.filter(user=user).values("organization_id"))
        .select_related("membership", "home_provider")
        .order_by("name_en", "pk")
    )


def organization_rows_for_user(organizations, *, user) -> list[Organization]:
    """Add ``people_count`` and the user's own roles (``my_roles``, in the order of the role
    choices) to a page of the user's organizations: one query over the page's organizations only,
    not over all of the user's."""
    rows = list(organizations)
    per_role = {role: Count("pk", filter=Q(user=user, role=role)) for role in OrgRole.Role.values}
    figures = {
        row["organization_id"]: row
        for row in OrgRole.objects.filter(organization_id__in=[org.pk for org in rows])
        .order_by()
        .values("organization_id")
        .annotate(people=Count("user_id", distinct=True), **{f"as_{r}": c for r, c in per_role.items()})
    }
    for org in rows:
        row = figures.get(org.pk, {})
        org.people_count = row.get("people", 0)
        org.my_roles = [
            OrgRole(organization=org, user=user, role=role) for role in per_role if row.get(f"as_{role}")
        ]
    return rows


def application_list_for_user(*, user) -> QuerySet[MembershipApplication]:
    return (
        MembershipApplication.objects.filter(applicant=user)
        .select_related("home_provider", "organization")
        .order_by("-created_at")
    )


def application_review_queue(
    *, status: str = "", kind: str = "", q: str = ""
) -> QuerySet[MembershipApplication]:
    """Applications for the secretariat; by default what needs attention, oldest first."""
    qs = MembershipApplication.objects.exclude(status=MembershipApplication.Status.DRAFT).select_related(
        "applicant", "home_provider", "reviewer", "accepted_terms"
    )
    if status:
        qs = qs.filter(status=status)
    else:
        qs = qs.filter(
            status__in=[MembershipApplication.Status.SUBMITTED, MembershipApplication.Status.UNDER_REVIEW]
        )
    if kind:
        qs = qs.filter(kind=kind)
    if q:
        qs = qs.filter(
            Q(name_ja__icontains=q)
            | Q(name_en__icontains=q)
            | Q(corporate_number__icontains=q)
            | Q(contact_email__icontains=q)
            | Q(applicant__email__icontains=q)
        )
    return qs.order_by("submitted_at", "pk")


def application_status_counts() -> dict[str, int]:
    rows = MembershipApplication.objects.values("status").annotate(n=Count("pk")).order_by()
    return {row["status"]: row["n"] for row in rows}


def application_get(*, application_id: int) -> MembershipApplication | None:
    return (
        MembershipApplication.objects.select_related(
            "applicant", "home_provider", "reviewer", "accepted_terms", "organization"
        )
        .prefetch_related("transitions__actor")
        .filter(pk=application_id)
        .first()
    )


def terms_list_published() -> QuerySet[ParticipationTerms]:
    return ParticipationTerms.objects.filter(is_published=True).order_by("-effective_from", "-id")
