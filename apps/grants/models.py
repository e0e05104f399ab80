"""Grant programs for startups and universities: programs, calls, applications, reviews, awards
and the reports that follow an award.

Application: draft → submitted → awarded / waitlisted / declined; the applicant may withdraw a
draft or a submitted application until a decision. A waitlisted application may still be awarded
or declined. An award becomes time-limited QuotaGrants (source AWARD) on the pools staff choose.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.organizations.models import OrganizationKind, _localized


def validate_kinds(value) -> None:
    allowed = dict(OrganizationKind.choices)
    if not isinstance(value, list) or not value:
        raise ValidationError(_("Choose at least one organization kind."))
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise ValidationError(
            _("Unknown organization kinds: %(kinds)s.") % {"kinds": ", ".join(map(str, unknown))}
        )


def validate_budget(value) -> None:
    if not isinstance(value, dict) or not value:
        raise ValidationError(_("Enter an object mapping each GPU class to a whole number of GPU-hours."))
    for key, hours in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ValidationError(_("GPU class names must not be empty."))
        if isinstance(hours, bool) or not isinstance(hours, int) or hours <= 0:
            raise ValidationError(
                _("The budget for %(cls)s must be a whole number of GPU-hours, more than zero.")
                % {"cls": key}
            )


class Program(BaseModel):
    """A grant program (startup PoC, academic research, …) with its eligibility rules and limits."""

    class Kind(models.TextChoices):
        STARTUP_POC = "startup_poc", _("Startup proof of concept")
        ACADEMIC = "academic", _("Academic research")
        OTHER = "other", _("Other program")

    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    description_ja = models.TextField(_("description (Japanese)"))
    description_en = models.TextField(_("description (English)"))
    eligible_kinds = models.JSONField(
        _("eligible organization kinds"),
        default=list,
        validators=[validate_kinds],
        help_text=_('For example ["startup"] or ["academic", "public_body"].'),
    )
    allows_non_members = models.BooleanField(
        _("open to organizations that are not members"),
        default=False,
        help_text=_("Academic programs may accept applicants whose organization is not a member."),
    )
    max_company_age_years = models.PositiveSmallIntegerField(
        _("maximum age of the company (years)"),
        null=True,
        blank=True,
        help_text=_("Empty: no limit. Applicants give their founding date."),
    )
    max_gpu_hours = models.PositiveIntegerField(
        _("maximum GPU-hours per award"), validators=[MinValueValidator(1)]
    )
    max_duration_months = models.PositiveSmallIntegerField(
        _("maximum duration (months)"), validators=[MinValueValidator(1), MaxValueValidator(36)]
    )
    offers_mentoring = models.BooleanField(_("offers mentoring"), default=False)
    is_published = models.BooleanField(_("published"), default=True)

    class Meta:
        ordering = ["name_en"]
        verbose_name = _("grant program")
        verbose_name_plural = _("grant programs")
        constraints = [
            models.CheckConstraint(condition=Q(max_gpu_hours__gt=0), name="program_max_hours_positive"),
            models.CheckConstraint(
                condition=Q(max_duration_months__gte=1) & Q(max_duration_months__lte=36),
                name="program_duration_1_to_36",
            ),
        ]

    def __str__(self) -> str:
        return self.name_ja

    @property
    def name(self) -> str:
        return _localized(self.name_ja, self.name_en)

    @property
    def description(self) -> str:
        return _localized(self.description_ja, self.description_en)

    def eligible_kind_labels(self) -> list[str]:
        labels = dict(OrganizationKind.choices)
        return [str(labels[k]) for k in self.eligible_kinds if k in labels]

    def get_absolute_url(self) -> str:
        return reverse("grants:program-detail", args=[self.slug])


class Call(BaseModel):
    """A call for applications of a program: open from ``opens_at`` until ``closes_at`` (exclusive,
    to the second), with a budget of GPU-hours per GPU class and a rubric."""

    program = models.ForeignKey(
        Program, verbose_name=_("program"), on_delete=models.PROTECT, related_name="calls"
    )
    title_ja = models.CharField(_("title (Japanese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    opens_at = models.DateTimeField(_("opens at"))
    closes_at = models.DateTimeField(
        _("closes at"), help_text=_("Applications are refused from this second on.")
    )
    budget = models.JSONField(
        _("budget (GPU-hours per GPU class)"),
        validators=[validate_budget],
        help_text=_('For example {"H200": 20000, "B200": 5000}.'),
    )
    reviews_per_application = models.PositiveSmallIntegerField(
        _("reviews per application"), default=2, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    is_published = models.BooleanField(_("published"), default=True)

    class Meta:
        ordering = ["-opens_at", "-id"]
        verbose_name = _("call for applications")
        verbose_name_plural = _("calls for applications")
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=F("opens_at")), name="call_closes_after_opening"
            ),
            models.CheckConstraint(
                condition=Q(reviews_per_application__gte=1) & Q(reviews_per_application__lte=10),
                name="call_reviews_1_to_10",
            ),
        ]

    def __str__(self) -> str:
        return self.title_ja

    @property
    def title(self) -> str:
        return _localized(self.title_ja, self.title_en)

    @property
    def description(self) -> str:
        return _localized(self.description_ja, self.description_en)

    def is_open(self, now=None) -> bool:
        now = now or timezone.now()
        return self.opens_at <= now < self.closes_at

    @property
    def phase(self) -> str:
        now = timezone.now()
        if now < self.opens_at:
            return "upcoming"
        return "open" if now < self.closes_at else "closed"

    def get_phase_display(self) -> str:
        return {
            "upcoming": _("Opens soon"),
            "open": _("Accepting applications"),
            "closed": _("Closed"),
        }[self.phase]

    def gpu_classes(self) -> list[str]:
        return sorted(self.budget or {})

    def get_absolute_url(self) -> str:
        return reverse("grants:call-detail", args=[self.program.slug, self.pk])

    def clean(self) -> None:
        super().clean()
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": _("A call must close after it opens.")})


class Criterion(BaseModel):
    """One criterion of a call's rubric: scored from 0 to ``max_score``, weighted in the ranking."""

    call = models.ForeignKey(Call, verbose_name=_("call"), on_delete=models.CASCADE, related_name="criteria")
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    weight = models.DecimalField(
        _("weight"), max_digits=6, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    max_score = models.PositiveSmallIntegerField(
        _("highest score"), default=5, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["call_id", "position", "id"]
        verbose_name = _("criterion")
        verbose_name_plural = _("criteria")
        constraints = [
            models.CheckConstraint(condition=Q(weight__gt=0), name="criterion_weight_positive"),
            models.CheckConstraint(condition=Q(max_score__gte=1), name="criterion_max_score_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name_ja} ×{self.weight}"

    @property
    def name(self) -> str:
        return _localized(self.name_ja, self.name_en)

    @property
    def description(self) -> str:
        return _localized(self.description_ja, self.description_en)


class FormQuestion(BaseModel):
    """An extra question of a call's application form; answers are kept on the application."""

    call = models.ForeignKey(Call, verbose_name=_("call"), on_delete=models.CASCADE, related_name="questions")
    label_ja = models.CharField(_("question (Japanese)"), max_length=300)
    label_en = models.CharField(_("question (English)"), max_length=300)
    help_ja = models.CharField(_("help text (Japanese)"), max_length=300, blank=True)
    help_en = models.CharField(_("help text (English)"), max_length=300, blank=True)
    required = models.BooleanField(_("required"), default=True)
    max_length = models.PositiveIntegerField(_("maximum length (characters)"), default=2000)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["call_id", "position", "id"]
        verbose_name = _("application form question")
        verbose_name_plural = _("application form questions")

    def __str__(self) -> str:
        return self.label_ja

    @property
    def label(self) -> str:
        return _localized(self.label_ja, self.label_en)

    @property
    def help(self) -> str:
        return _localized(self.help_ja, self.help_en)

    @property
    def key(self) -> str:
        return f"q{self.pk}"


class Application(BaseModel):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        AWARDED = "awarded", _("Awarded")
        WAITLISTED = "waitlisted", _("Waitlisted")
        DECLINED = "declined", _("Declined")

    DECIDABLE = (Status.SUBMITTED, Status.WAITLISTED)
    WITHDRAWABLE = (Status.DRAFT, Status.SUBMITTED)
    IN_REVIEW = (Status.SUBMITTED, Status.WAITLISTED, Status.AWARDED, Status.DECLINED)

    call = models.ForeignKey(
        Call, verbose_name=_("call"), on_delete=models.PROTECT, related_name="applications"
    )
    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("applicant"),
        on_delete=models.PROTECT,
        related_name="grant_applications",
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    # Either one of the applicant's organizations, or (programs open to non-members) its details.
    organization = models.ForeignKey(
        "organizations.Organization",
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="grant_applications",
    )
    org_name_ja = models.CharField(_("organization name (Japanese)"), max_length=200, blank=True)
    org_name_en = models.CharField(_("organization name (English)"), max_length=200, blank=True)
    org_kind = models.CharField(
        _("organization kind"), max_length=20, choices=OrganizationKind.choices, blank=True
    )
    org_corporate_number = models.CharField(_("corporate number"), max_length=13, blank=True)
    founded_on = models.DateField(_("founded on"), null=True, blank=True)
    pi_name = models.CharField(_("principal investigator"), max_length=150)
    pi_email = models.EmailField(_("principal investigator's e-mail"))
    pi_position = models.CharField(_("position or title"), max_length=150, blank=True)
    title = models.CharField(_("title"), max_length=200)
    abstract = models.TextField(_("abstract"), max_length=3000)
    plan = models.TextField(_("plan"), max_length=20000)
    requested_hours = models.JSONField(_("requested GPU-hours per class"), default=dict)
    preferred_pools = models.ManyToManyField(
        "providers.ResourcePool", verbose_name=_("preferred pools"), blank=True, related_name="+"
    )
    duration_months = models.PositiveSmallIntegerField(
        _("duration (months)"), validators=[MinValueValidator(1), MaxValueValidator(36)]
    )
    answers = models.JSONField(_("answers to the call's questions"), default=dict, blank=True)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    feedback = models.TextField(_("feedback to the applicant"), blank=True)

    class Meta:
        ordering = ["-submitted_at", "-id"]
        verbose_name = _("grant application")
        verbose_name_plural = _("grant applications")
        constraints = [
            models.CheckConstraint(
                condition=Q(duration_months__gte=1) & Q(duration_months__lte=36),
                name="grantapp_duration_1_to_36",
            ),
            models.CheckConstraint(
                condition=Q(organization__isnull=False) | (~Q(org_name_ja="") & ~Q(org_kind="")),
                name="grantapp_names_an_organization",
            ),
            # One live application per organization and call.
            models.UniqueConstraint(
                fields=["call", "organization"],
                condition=Q(organization__isnull=False) & ~Q(status="withdrawn"),
                name="grantapp_one_per_org_and_call",
            ),
        ]
        indexes = [models.Index(fields=["call", "status"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"

    @property
    def organization_name(self) -> str:
        if self.organization_id:
            return self.organization.display_name
        return _localized(self.org_name_ja, self.org_name_en)

    @property
    def organization_kind(self) -> str:
        return self.organization.kind if self.organization_id else self.org_kind

    def get_organization_kind_display(self) -> str:
        return str(dict(OrganizationKind.choices).get(self.organization_kind, ""))

    @property
    def total_requested(self) -> int:
        return sum(int(v) for v in (self.requested_hours or {}).values())

    def get_absolute_url(self) -> str:
        return reverse("grants:application-detail", args=[self.pk])


def attachment_path(instance, filename: str) -> str:
    # Not guessable, and never the uploaded name: downloads go through a permission-checked view.
    return f"grants/attachments/{secrets.token_hex(16)}/{secrets.token_hex(8)}"


class Attachment(BaseModel):
    application = models.ForeignKey(
        Application, verbose_name=_("application"), on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=200)
    original_name = models.CharField(_("file name"), max_length=200)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveIntegerField(_("size (bytes)"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    class Meta:
        ordering = ["application_id", "id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.original_name


class Reviewer(BaseModel):
    """A person staff asked to review the applications of a call (need not be staff)."""

    call = models.ForeignKey(Call, verbose_name=_("call"), on_delete=models.CASCADE, related_name="reviewers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="grant_reviewer_of",
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("added by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    class Meta:
        ordering = ["call_id", "user__email"]
        verbose_name = _("reviewer")
        verbose_name_plural = _("reviewers")
        constraints = [models.UniqueConstraint(fields=["call", "user"], name="reviewer_once_per_call")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.call}"


class Assignment(BaseModel):
    """A reviewer's assignment to an application. A declared conflict releases it for good."""

    class Status(models.TextChoices):
        ASSIGNED = "assigned", _("Assigned")
        SUBMITTED = "submitted", _("Review submitted")
        CONFLICT = "conflict", _("Conflict of interest declared")

    ACTIVE = (Status.ASSIGNED, Status.SUBMITTED)

    application = models.ForeignKey(
        Application, verbose_name=_("application"), on_delete=models.CASCADE, related_name="assignments"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewer"),
        on_delete=models.PROTECT,
        related_name="grant_assignments",
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ASSIGNED, db_index=True
    )
    conflict_reason = models.TextField(_("conflict of interest"), blank=True)
    comment = models.TextField(_("overall comment"), blank=True)
    submitted_at = models.DateTimeField(_("review submitted at"), null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    class Meta:
        ordering = ["application_id", "id"]
        verbose_name = _("review assignment")
        verbose_name_plural = _("review assignments")
        constraints = [
            models.UniqueConstraint(fields=["application", "reviewer"], name="assignment_once_per_reviewer"),
            models.CheckConstraint(
                condition=~Q(status="conflict") | ~Q(conflict_reason=""),
                name="assignment_conflict_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} → {self.application_id} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("grants:review-detail", args=[self.pk])


class Score(BaseModel):
    assignment = models.ForeignKey(
        Assignment, verbose_name=_("assignment"), on_delete=models.CASCADE, related_name="scores"
    )
    criterion = models.ForeignKey(
        Criterion, verbose_name=_("criterion"), on_delete=models.PROTECT, related_name="+"
    )
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        ordering = ["assignment_id", "criterion__position", "criterion_id"]
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        constraints = [
            models.UniqueConstraint(fields=["assignment", "criterion"], name="score_once_per_criterion")
        ]

    def __str__(self) -> str:
        return f"{self.criterion_id}: {self.score}"


class Award(BaseModel):
    """An awarded application: its period, mentor and the QuotaGrants made for it (one per line)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")

    application = models.OneToOneField(
        Application, verbose_name=_("application"), on_delete=models.PROTECT, related_name="award"
    )
    organization = models.ForeignKey(
        "organizations.Organization",
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        related_name="awards",
    )
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), help_text=_("Exclusive."))
    mentor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("mentor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mentored_awards",
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    revoked_reason = models.TextField(_("reason for revoking"), blank=True)
    awarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("awarded by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-valid_from", "-id"]
        verbose_name = _("award")
        verbose_name_plural = _("awards")
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__gt=F("valid_from")), name="award_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} · {self.application.title}"

    @property
    def total_hours(self) -> Decimal:
        return sum((line.gpu_hours for line in self.lines.all()), Decimal("0"))


class AwardLine(BaseModel):
    """GPU-hours of an award on one pool period, and the QuotaGrant that carries them."""

    award = models.ForeignKey(Award, verbose_name=_("award"), on_delete=models.CASCADE, related_name="lines")
    period = models.ForeignKey(
        "providers.PoolPeriod", verbose_name=_("pool period"), on_delete=models.PROTECT, related_name="+"
    )
    gpu_class = models.CharField(_("GPU class"), max_length=40)
    gpu_hours = models.DecimalField(_("GPU-hours"), max_digits=14, decimal_places=2)
    grant = models.OneToOneField(
        "providers.QuotaGrant",
        verbose_name=_("quota grant"),
        on_delete=models.PROTECT,
        related_name="award_line",
    )

    class Meta:
        ordering = ["award_id", "id"]
        verbose_name = _("award line")
        verbose_name_plural = _("award lines")
        constraints = [models.CheckConstraint(condition=Q(gpu_hours__gt=0), name="awardline_hours_positive")]

    def __str__(self) -> str:
        return f"{self.gpu_class} {self.gpu_hours} h"


class Report(BaseModel):
    """A progress or final report due after an award, with the outcomes it records."""

    class Kind(models.TextChoices):
        PROGRESS = "progress", _("Progress report")
        FINAL = "final", _("Final report")

    award = models.ForeignKey(
        Award, verbose_name=_("award"), on_delete=models.CASCADE, related_name="reports"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    due_on = models.DateField(_("due on"))
    body = models.TextField(_("report"), blank=True)
    outcomes = models.TextField(_("outcomes"), blank=True)
    publications = models.TextField(_("publications"), blank=True, help_text=_("One per line."))
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("submitted by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    reminded_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    overdue_notified_at = models.DateTimeField(_("overdue notice sent at"), null=True, blank=True)

    class Meta:
        ordering = ["due_on", "id"]
        verbose_name = _("award report")
        verbose_name_plural = _("award reports")
        constraints = [models.UniqueConstraint(fields=["award", "kind"], name="report_once_per_kind")]
        indexes = [models.Index(fields=["due_on"], condition=Q(submitted_at__isnull=True), name="report_due")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.due_on}"

    @property
    def is_overdue(self) -> bool:
        return self.submitted_at is None and self.due_on < timezone.localdate()

    def get_absolute_url(self) -> str:
        return reverse("grants:report-detail", args=[self.pk])
