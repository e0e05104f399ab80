"""Every change to applications, organizations, memberships, roles and invitations.

Each service is one use case: transactional, locks what it checks, writes its AuditEvent and
sends its e-mails after commit.
"""

import secrets
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from apps.core.exceptions import ApplicationError
from apps.core.validators import normalize_corporate_number
from apps.governance.services import audit_record
from apps.organizations.models import (
    ApplicationTransition,
    Invitation,
    Membership,
    MembershipApplication,
    Organization,
    OrganizationKind,
    OrgRole,
    ParticipationTerms,
)
from apps.organizations.tasks import application_notify_task, invitation_send_task

Status = MembershipApplication.Status

APPLICATION_FIELDS = (
    "name_ja",
    "name_en",
    "kind",
    "corporate_number",
    "postal_code",
    "address",
    "website",
    "home_provider",
    "requested_tier",
    "contact_name",
    "contact_email",
    "contact_phone",
    "technical_contact_email",
    "intended_use",
)


def _snapshot(application: MembershipApplication) -> dict:
    data = model_to_dict(application, fields=APPLICATION_FIELDS)
    data["status"] = application.status
    return data


def terms_current() -> ParticipationTerms | None:
    return (
        ParticipationTerms.objects.filter(is_published=True, effective_from__lte=timezone.localdate())
        .order_by("-effective_from", "-id")
        .first()
    )


def _lock_application(application_id: int) -> MembershipApplication:
    try:
        return MembershipApplication.objects.select_for_update().get(pk=application_id)
    except MembershipApplication.DoesNotExist as exc:
        raise ApplicationError(_("This application does not exist."), code="not_found") from exc


def _transition(application, *, to_status: str, actor, reason: str = "", action: str) -> None:
    from_status = application.status
    before = _snapshot(application)
    application.status = to_status
    application.save()
    ApplicationTransition.objects.create(
        application=application, from_status=from_status, to_status=to_status, actor=actor, reason=reason
    )
    audit_record(
        actor=actor,
        action=action,
        target=application,
        before=before,
        after={**_snapshot(application), "reason": reason},
    )
    transaction.on_commit(partial(application_notify_task.delay, application.pk, to_status))


def _clean_application_data(data: dict) -> dict:
    cleaned = {k: v for k, v in data.items() if k in APPLICATION_FIELDS}
    if "corporate_number" in cleaned:
        cleaned["corporate_number"] = normalize_corporate_number(cleaned["corporate_number"] or "")
    return cleaned


@transaction.atomic
def application_create(*, applicant, data: dict) -> MembershipApplication:
    application = MembershipApplication(
        applicant=applicant, status=Status.DRAFT, **_clean_application_data(data)
    )
    application.save()
    ApplicationTransition.objects.create(application=application, to_status=Status.DRAFT, actor=applicant)
    audit_record(
        actor=applicant, action="application.created", target=application, after=_snapshot(application)
    )
    return application


@transaction.atomic
def application_update(*, application_id: int, actor, data: dict) -> MembershipApplication:
    application = _lock_application(application_id)
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can edit this application."), code="forbidden")
    if not application.is_editable:
        raise ApplicationError(
            _("This application can no longer be edited (status: %(status)s).")
            % {"status": application.get_status_display()},
            code="not_editable",
        )
    before = _snapshot(application)
    for field, value in _clean_application_data(data).items():
        setattr(application, field, value)
    application.save()
    audit_record(
        actor=actor,
        action="application.updated",
        target=application,
        before=before,
        after=_snapshot(application),
    )
    return application


def _check_not_duplicate(application: MembershipApplication) -> None:
    number = application.corporate_number
    if not number:
        return
    if Organization.objects.filter(corporate_number=number).exists():
        raise ApplicationError(
            _(
                "An organization with corporate number %(number)s is already a member of the alliance. "
                "Ask its administrators to invite you instead."
            )
            % {"number": number},
            code="duplicate_corporate_number",
        )
    if (
        MembershipApplication.objects.filter(corporate_number=number, status__in=MembershipApplication.OPEN)
        .exclude(pk=application.pk)
        .exists()
    ):
        raise ApplicationError(
            _("An application for corporate number %(number)s is already being reviewed.")
            % {"number": number},
            code="duplicate_corporate_number",
        )


@transaction.atomic
def application_submit(*, application_id: int, actor, accept_terms: bool) -> MembershipApplication:
    application = _lock_application(application_id)
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can submit this application."), code="forbidden")
    if application.status not in (Status.DRAFT, Status.CHANGES_REQUESTED):
        raise ApplicationError(
            _("Only a draft or an application sent back for changes can be submitted."), code="bad_transition"
        )
    if not accept_terms:
        raise ApplicationError(
            _("You must accept the participation conditions to submit the application."), code="terms"
        )
    terms = terms_current()
    if terms is None:
        raise ApplicationError(
            _("No participation conditions are published yet; applications cannot be submitted."),
            code="terms",
        )
    if OrganizationKind.requires_corporate_number(application.kind) and not application.corporate_number:
        raise ApplicationError(
            _("Companies must give their 13-digit corporate number."), code="corporate_number_required"
        )
    _check_not_duplicate(application)
    application.accepted_terms = terms
    application.terms_accepted_at = timezone.now()
    application.submitted_at = timezone.now()
    try:
        with transaction.atomic():
            _transition(application, to_status=Status.SUBMITTED, actor=actor, action="application.submitted")
    except IntegrityError as exc:  # a concurrent submission for the same number won the race
        raise ApplicationError(
            _("An application for corporate number %(number)s is already being reviewed.")
            % {"number": application.corporate_number},
            code="duplicate_corporate_number",
        ) from exc
    return application


def _require_staff(user) -> None:
    if not (user and user.is_authenticated and user.is_staff):
        raise ApplicationError(_("Only the secretariat can review applications."), code="forbidden")


@transaction.atomic
def application_start_review(*, application_id: int, reviewer) -> MembershipApplication:
    _require_staff(reviewer)
    application = _lock_application(application_id)
    if application.status != Status.SUBMITTED:
        raise ApplicationError(
            _("Only submitted applications can be taken into review."), code="bad_transition"
        )
    application.reviewer = reviewer
    _transition(
        application, to_status=Status.UNDER_REVIEW, actor=reviewer, action="application.review_started"
    )
    return application


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{n}"
        n += 1
    return slug


@transaction.atomic
def application_approve(
    *, application_id: int, reviewer, tier: str | None = None, reason: str = ""
) -> Organization:
    """Approve: the Organization, its Membership and the applicant's owner role, all or nothing."""
    _require_staff(reviewer)
    application = _lock_application(application_id)
    if application.status != Status.UNDER_REVIEW:
        raise ApplicationError(_("Only applications under review can be approved."), code="bad_transition")
    if (
        application.corporate_number
        and Organization.objects.filter(corporate_number=application.corporate_number).exists()
    ):
        raise ApplicationError(
            _("An organization with corporate number %(number)s is already a member of the alliance.")
            % {"number": application.corporate_number},
            code="duplicate_corporate_number",
        )
    organization = Organization.objects.create(
        slug=_unique_slug(application.name_en),
        name_ja=application.name_ja,
        name_en=application.name_en,
        kind=application.kind,
        corporate_number=application.corporate_number or None,
        postal_code=application.postal_code,
        address=application.address,
        website=application.website,
        home_provider_id=application.home_provider_id,
    )
    membership = Membership.objects.create(
        organization=organization,
        tier=tier or application.requested_tier,
        status=Membership.Status.ACTIVE,
        started_on=timezone.localdate(),
    )
    OrgRole.objects.create(
        organization=organization, user_id=application.applicant_id, role=OrgRole.Role.OWNER
    )
    audit_record(
        actor=reviewer,
        action="organization.created",
        target=organization,
        after={
            "slug": organization.slug,
            "name_ja": organization.name_ja,
            "kind": organization.kind,
            "corporate_number": organization.corporate_number,
            "application": application.pk,
        },
    )
    audit_record(
        actor=reviewer,
        action="membership.started",
        target=membership,
        after={"tier": membership.tier, "status": membership.status, "started_on": membership.started_on},
    )
    audit_record(
        actor=reviewer,
        action="org_role.granted",
        target=organization,
        after={"user": application.applicant_id, "role": OrgRole.Role.OWNER},
    )
    application.organization = organization
    application.decided_at = timezone.now()
    application.reviewer = reviewer
    application.decision_reason = reason
    _transition(
        application, to_status=Status.APPROVED, actor=reviewer, reason=reason, action="application.approved"
    )
    return organization


def _decide_with_reason(*, application_id, reviewer, reason, to_status, action) -> MembershipApplication:
    _require_staff(reviewer)
    if not (reason or "").strip():
        raise ApplicationError(_("Please give a reason; the applicant will read it."), code="reason_required")
    application = _lock_application(application_id)
    if application.status != Status.UNDER_REVIEW:
        raise ApplicationError(_("Only applications under review can be decided on."), code="bad_transition")
    application.decision_reason = reason.strip()
    application.reviewer = reviewer
    if to_status == Status.REJECTED:
        application.decided_at = timezone.now()
    _transition(application, to_status=to_status, actor=reviewer, reason=reason.strip(), action=action)
    return application


@transaction.atomic
def application_request_changes(*, application_id: int, reviewer, reason: str) -> MembershipApplication:
    return _decide_with_reason(
        application_id=application_id,
        reviewer=reviewer,
        reason=reason,
        to_status=Status.CHANGES_REQUESTED,
        action="application.changes_requested",
    )


@transaction.atomic
def application_reject(*, application_id: int, reviewer, reason: str) -> MembershipApplication:
    return _decide_with_reason(
        application_id=application_id,
        reviewer=reviewer,
        reason=reason,
        to_status=Status.REJECTED,
        action="application.rejected",
    )


@transaction.atomic
def application_withdraw(*, application_id: int, actor, reason: str = "") -> MembershipApplication:
    application = _lock_application(application_id)
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can withdraw this application."), code="forbidden")
    if not application.is_withdrawable:
        raise ApplicationError(_("A decided application cannot be withdrawn."), code="bad_transition")
    application.decided_at = timezone.now()
    _transition(
        application, to_status=Status.WITHDRAWN, actor=actor, reason=reason, action="application.withdrawn"
    )
    return application


# --- Organizations and people ----------------------------------------------------------------

ORG_PROFILE_FIELDS = (
    "name_ja",
    "name_en",
    "postal_code",
    "address",
    "website",
    "is_listed",
    "show_website",
    "show_address",
    "description_ja",
    "description_en",
)


def _is_manager(user, organization) -> bool:
    return OrgRole.objects.filter(
        organization=organization, user=user, role__in=OrgRole.MANAGER_ROLES
    ).exists()


@transaction.atomic
def organization_update_profile(*, organization_id: int, actor, data: dict) -> Organization:
    organization = Organization.objects.select_for_update().get(pk=organization_id)
    if not (_is_manager(actor, organization) or actor.is_staff):
        raise ApplicationError(
            _("Only the organization's administrators can change its profile."), code="forbidden"
        )
    before = model_to_dict(organization, fields=ORG_PROFILE_FIELDS)
    for field in ORG_PROFILE_FIELDS:
        if field in data:
            setattr(organization, field, data[field])
    organization.save()
    audit_record(
        actor=actor,
        action="organization.updated",
        target=organization,
        before=before,
        after=model_to_dict(organization, fields=ORG_PROFILE_FIELDS),
    )
    return organization


@transaction.atomic
def membership_set_status(*, membership_id: int, actor, status: str, reason: str = "") -> Membership:
    _require_staff(actor)
    membership = Membership.objects.select_for_update().get(pk=membership_id)
    if status not in Membership.Status.values:
        raise ApplicationError(_("Unknown membership status."), code="invalid")
    if status != Membership.Status.ACTIVE and not reason.strip():
        raise ApplicationError(
            _("Please give a reason for suspending or lapsing a membership."), code="reason_required"
        )
    if membership.status == status:
        return membership
    before = {"status": membership.status, "ends_on": membership.ends_on}
    membership.status = status
    membership.status_reason = reason.strip()
    if status == Membership.Status.LAPSED and membership.ends_on is None:
        membership.ends_on = max(timezone.localdate(), membership.started_on)
    if status == Membership.Status.ACTIVE:
        membership.ends_on = None
    membership.save()
    audit_record(
        actor=actor,
        action=f"membership.{status}",
        target=membership,
        before=before,
        after={"status": status, "ends_on": membership.ends_on, "reason": reason},
    )
    return membership


@transaction.atomic
def org_role_remove(*, role_id: int, actor) -> None:
    role = OrgRole.objects.select_for_update().select_related("organization").get(pk=role_id)
    organization = role.organization
    if not (_is_manager(actor, organization) or actor.is_staff):
        raise ApplicationError(
            _("Only the organization's administrators can remove people."), code="forbidden"
        )
    if role.role == OrgRole.Role.OWNER:
        owners = OrgRole.objects.select_for_update().filter(
            organization=organization, role=OrgRole.Role.OWNER
        )
        if owners.count() <= 1:
            raise ApplicationError(_("An organization must keep at least one owner."), code="last_owner")
        if not (
            actor.is_staff
            or OrgRole.objects.filter(organization=organization, user=actor, role=OrgRole.Role.OWNER).exists()
        ):
            raise ApplicationError(_("Only an owner can remove another owner."), code="forbidden")
    audit_record(
        actor=actor,
        action="org_role.revoked",
        target=organization,
        before={"user": role.user_id, "role": role.role},
    )
    role.delete()


# --- Invitations -----------------------------------------------------------------------------


@transaction.atomic
def invitation_create(*, organization_id: int, inviter, email: str, role: str) -> tuple[Invitation, str]:
    """Invite someone by e-mail; returns the invitation and the raw token (sent, never stored)."""
    organization = Organization.objects.select_for_update().get(pk=organization_id)
    if not _is_manager(inviter, organization):
        raise ApplicationError(
            _("Only the organization's owners and administrators can invite people."), code="forbidden"
        )
    if role not in OrgRole.Role.values:
        raise ApplicationError(_("Unknown role."), code="invalid")
    if role == OrgRole.Role.OWNER:
        raise ApplicationError(_("Ownership cannot be given by invitation."), code="invalid")
    email = email.strip().lower()
    if OrgRole.objects.filter(organization=organization, user__email__iexact=email, role=role).exists():
        raise ApplicationError(
            _("%(email)s already has this role in the organization.") % {"email": email}, code="duplicate"
        )
    now = timezone.now()
    if Invitation.objects.filter(
        organization=organization,
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).exists():
        raise ApplicationError(
            _("%(email)s already has a pending invitation. Revoke it first to send a new one.")
            % {"email": email},
            code="duplicate",
        )
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=Invitation.hash_token(token),
        invited_by=inviter,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit_record(
        actor=inviter,
        action="invitation.created",
        target=invitation,
        after={
            "organization": organization.pk,
            "email": email,
            "role": role,
            "expires_at": invitation.expires_at,
        },
    )
    transaction.on_commit(partial(invitation_send_task.delay, invitation.pk, token))
    return invitation, token


@transaction.atomic
def invitation_revoke(*, invitation_id: int, actor) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation_id)
    if not (_is_manager(actor, invitation.organization) or actor.is_staff):
        raise ApplicationError(
            _("Only the organization's administrators can revoke invitations."), code="forbidden"
        )
    if invitation.state != "pending":
        raise ApplicationError(_("Only a pending invitation can be revoked."), code="bad_transition")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at", "updated_at"])
    audit_record(
        actor=actor,
        action="invitation.revoked",
        target=invitation,
        after={"revoked_at": invitation.revoked_at},
    )
    return invitation


def invitation_get_by_token(token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=Invitation.hash_token(token or ""))
        .first()
    )


@transaction.atomic
def invitation_accept(*, token: str, user) -> OrgRole:
    invitation = (
        Invitation.objects.select_for_update().filter(token_hash=Invitation.hash_token(token or "")).first()
    )
    if invitation is None:
        raise ApplicationError(_("This invitation link is not valid."), code="invalid_token")
    if invitation.accepted_at:
        raise ApplicationError(_("This invitation has already been used."), code="used")
    if invitation.revoked_at:
        raise ApplicationError(_("This invitation was revoked by the organization."), code="revoked")
    if invitation.is_expired:
        raise ApplicationError(
            _("This invitation has expired. Ask the organization to send a new one."), code="expired"
        )
    if user.email.lower() != invitation.email.lower():
        raise ApplicationError(
            _("This invitation was sent to %(email)s. Log in with that address to accept it.")
            % {"email": invitation.email},
            code="wrong_account",
        )
    role, _created = OrgRole.objects.get_or_create(
        organization_id=invitation.organization_id, user=user, role=invitation.role
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    audit_record(
        actor=user,
        action="invitation.accepted",
        target=invitation,
        after={"user": user.pk, "role": invitation.role},
    )
    audit_record(
        actor=user,
        action="org_role.granted",
        target=invitation.organization,
        after={"user": user.pk, "role": invitation.role, "invitation": invitation.pk},
    )
    return role
