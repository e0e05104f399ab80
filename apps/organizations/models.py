import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


def _localized(ja: str, en: str) -> str:
    return (en or ja) if (get_language() or "ja").startswith("en") else (ja or en)


class OrganizationKind(models.TextChoices):
    ENTERPRISE = "enterprise", _("Enterprise")
    STARTUP = "startup", _("Startup")
    ACADEMIC = "academic", _("Academic institution")
    PUBLIC_BODY = "public_body", _("Public body")

    @classmethod
    def requires_corporate_number(cls, kind: str) -> bool:
        # Companies always have a 法人番号; universities and public bodies may apply without one.
        return kind in (cls.ENTERPRISE, cls.STARTUP)


class MembershipTier(models.TextChoices):
    FOUNDING = "founding", _("Founding member")
    REGULAR = "regular", _("Regular member")
    ASSOCIATE = "associate", _("Associate member")
    ACADEMIC = "academic", _("Academic member")


class ParticipationTerms(BaseModel):
    """A published version of the alliance's participation conditions (参加条件)."""

    version = models.CharField(_("version"), max_length=20, unique=True)
    title_ja = models.CharField(_("title (Japanese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    body_ja = models.TextField(_("body (Japanese)"))
    body_en = models.TextField(_("body (English)"))
    effective_from = models.DateField(_("effective from"))
    is_published = models.BooleanField(_("published"), default=False)

    class Meta:
        ordering = ["-effective_from", "-id"]
        verbose_name = _("participation conditions")
        verbose_name_plural = _("participation conditions")

    def __str__(self) -> str:
        return f"{self.title_ja} v{self.version}"

    @property
    def title(self) -> str:
        return _localized(self.title_ja, self.title_en)

    @property
    def body(self) -> str:
        return _localized(self.body_ja, self.body_en)

    def get_absolute_url(self) -> str:
        return reverse("organizations:terms-version", args=[self.version])


class Organization(BaseModel):
    """A member organization of the alliance, created when its application is approved."""

    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=OrganizationKind.choices)
    # NULL, not "", for organizations without one, so the unique constraint ignores them.
    corporate_number = models.CharField(
        _("corporate number"), max_length=13, null=True, blank=True, unique=True
    )
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    address = models.CharField(_("address"), max_length=300)
    website = models.URLField(_("website"), blank=True)
    home_provider = models.ForeignKey(
        "providers.Provider",
        verbose_name=_("home provider"),
        on_delete=models.PROTECT,
        related_name="home_organizations",
    )
    # What the organization chose to make public in the member directory.
    is_listed = models.BooleanField(_("listed in the member directory"), default=True)
    show_website = models.BooleanField(_("show website publicly"), default=True)
    show_address = models.BooleanField(_("show address publicly"), default=False)
    description_ja = models.TextField(_("public description (Japanese)"), blank=True)
    description_en = models.TextField(_("public description (English)"), blank=True)

    class Meta:
        ordering = ["name_en"]
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=["enterprise", "startup"]) | Q(corporate_number__isnull=False),
                name="org_company_has_corporate_number",
            ),
        ]
        indexes = [
            # The public directory pages through listed members in name order.
            models.Index(fields=["name_en", "id"], condition=Q(is_listed=True), name="org_directory_order"),
        ]

    def __str__(self) -> str:
        return self.name_ja

    @property
    def display_name(self) -> str:
        return _localized(self.name_ja, self.name_en)

    @property
    def description(self) -> str:
        return _localized(self.description_ja, self.description_en)

    def get_absolute_url(self) -> str:
        return reverse("organizations:org-detail", args=[self.slug])


class Membership(BaseModel):
    """An organization's membership of the alliance: its tier and standing."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        LAPSED = "lapsed", _("Lapsed")

    organization = models.OneToOneField(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="membership"
    )
    tier = models.CharField(_("tier"), max_length=20, choices=MembershipTier.choices)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    started_on = models.DateField(_("member since"))
    ends_on = models.DateField(_("ends on"), null=True, blank=True)
    status_reason = models.TextField(_("reason for the current status"), blank=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("started_on")),
                name="membership_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} ({self.get_tier_display()})"


class OrgRole(BaseModel):
    """A person's role in an organization. One person may hold several roles in one org."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        ADMIN = "admin", _("Administrator")
        MEMBER = "member", _("Member")
        BILLING = "billing", _("Billing contact")
        TECHNICAL = "technical", _("Technical contact")

    MANAGER_ROLES = (Role.OWNER, Role.ADMIN)

    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="roles"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="org_roles"
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)

    class Meta:
        ordering = ["organization_id", "role", "user_id"]
        verbose_name = _("organization role")
        verbose_name_plural = _("organization roles")
        constraints = [
            models.UniqueConstraint(fields=["organization", "user", "role"], name="orgrole_unique"),
        ]
        indexes = [models.Index(fields=["user", "organization"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.organization}: {self.get_role_display()}"


class MembershipApplication(BaseModel):
    """An application to join the alliance, with its review workflow.

    draft → submitted → under review → approved / changes requested / rejected; the applicant may
    withdraw until a decision, and edits only a draft or an application sent back for changes.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        UNDER_REVIEW = "under_review", _("Under review")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    EDITABLE = (Status.DRAFT, Status.CHANGES_REQUESTED)
    OPEN = (Status.SUBMITTED, Status.UNDER_REVIEW, Status.CHANGES_REQUESTED)
    WITHDRAWABLE = (Status.DRAFT, Status.SUBMITTED, Status.UNDER_REVIEW, Status.CHANGES_REQUESTED)

    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("applicant"),
        on_delete=models.PROTECT,
        related_name="membership_applications",
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    name_ja = models.CharField(_("organization name (Japanese)"), max_length=200)
    name_en = models.CharField(_("organization name (English)"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=OrganizationKind.choices)
    corporate_number = models.CharField(_("corporate number"), max_length=13, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=10, blank=True)
    address = models.CharField(_("address"), max_length=300)
    website = models.URLField(_("website"), blank=True)
    home_provider = models.ForeignKey(
        "providers.Provider", verbose_name=_("home provider"), on_delete=models.PROTECT, related_name="+"
    )
    requested_tier = models.CharField(
        _("requested tier"), max_length=20, choices=MembershipTier.choices, default=MembershipTier.REGULAR
    )
    contact_name = models.CharField(_("contact person"), max_length=150)
    contact_email = models.EmailField(_("contact e-mail"))
    contact_phone = models.CharField(_("contact phone"), max_length=30, blank=True)
    technical_contact_email = models.EmailField(_("technical contact e-mail"), blank=True)
    intended_use = models.TextField(
        _("intended use of GPU resources"),
        help_text=_("What you plan to compute, the GPU classes and the rough GPU-hours per month."),
    )
    accepted_terms = models.ForeignKey(
        ParticipationTerms,
        verbose_name=_("accepted participation conditions"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="applications",
    )
    terms_accepted_at = models.DateTimeField(_("conditions accepted at"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True, db_index=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    decision_reason = models.TextField(_("reason given"), blank=True)
    organization = models.OneToOneField(
        Organization,
        verbose_name=_("organization"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="application",
    )

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("membership application")
        verbose_name_plural = _("membership applications")
        constraints = [
            # At most one application in review per corporate number, also under concurrency.
            models.UniqueConstraint(
                fields=["corporate_number"],
                condition=Q(status__in=["submitted", "under_review", "changes_requested"])
                & ~Q(corporate_number=""),
                name="application_one_open_per_corporate_number",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name_ja} ({self.get_status_display()})"

    @property
    def display_name(self) -> str:
        return _localized(self.name_ja, self.name_en)

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    @property
    def is_withdrawable(self) -> bool:
        return self.status in self.WITHDRAWABLE

    def get_absolute_url(self) -> str:
        return reverse("organizations:application-detail", args=[self.pk])


class ApplicationTransition(models.Model):
    """The timeline of an application: each status change with who made it and why."""

    application = models.ForeignKey(
        MembershipApplication, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20, choices=MembershipApplication.Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=MembershipApplication.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("application status change")
        verbose_name_plural = _("application status changes")

    def __str__(self) -> str:
        return f"{self.application_id}: {self.from_status} → {self.to_status}"


class Invitation(BaseModel):
    """An invitation to join an organization with a role. Only the token's hash is stored."""

    organization = models.ForeignKey(
        Organization, verbose_name=_("organization"), on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(_("e-mail address"))
    role = models.CharField(_("role"), max_length=20, choices=OrgRole.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("invited by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    expires_at = models.DateTimeField(_("expires at"))
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("accepted by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["admin", "member", "billing", "technical"]),
                name="invitation_role_not_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization} ({self.get_role_display()})"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "pending"

    def get_state_display(self) -> str:
        return {
            "accepted": _("Accepted"),
            "revoked": _("Revoked"),
            "expired": _("Expired"),
            "pending": _("Pending"),
        }[self.state]
