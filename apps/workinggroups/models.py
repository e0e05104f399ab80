"""Working groups (分科会): industry sub-committees with members, meetings, documents,
discussions and votes."""

from __future__ import annotations

import os
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.organizations.models import _localized


class Industry(models.TextChoices):
    MEDICAL = "medical", _("Medical AI")
    MANUFACTURING = "manufacturing", _("Manufacturing AI")
    FINANCE = "finance", _("Finance AI")
    GPU_OPERATIONS = "gpu_operations", _("GPU operations")
    DATASETS = "datasets", _("Dataset curation")
    OTHER = "other", _("Other")


class WorkingGroup(BaseModel):
    class Visibility(models.TextChoices):
        PUBLIC = "public", _("Public")
        MEMBERS_ONLY = "members_only", _("Members only")
        PRIVATE = "private", _("Private")

    class JoinPolicy(models.TextChoices):
        OPEN = "open", _("Open to members")
        REQUEST = "request", _("By request")
        INVITATION = "invitation", _("By invitation")

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        ACTIVE = "active", _("Active")
        CLOSED = "closed", _("Concluded")

    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    charter_ja = models.TextField(_("charter (Japanese)"), blank=True)
    charter_en = models.TextField(_("charter (English)"), blank=True)
    industry = models.CharField(_("industry"), max_length=20, choices=Industry.choices, db_index=True)
    visibility = models.CharField(
        _("visibility"), max_length=20, choices=Visibility.choices, default=Visibility.MEMBERS_ONLY
    )
    join_policy = models.CharField(
        _("join policy"), max_length=20, choices=JoinPolicy.choices, default=JoinPolicy.REQUEST
    )
    allow_outside_researchers = models.BooleanField(
        _("open to outside researchers"),
        default=False,
        help_text=_("People without a member organization may join (they never vote per organization)."),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PROPOSED, db_index=True
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        ordering = ["name_en"]
        verbose_name = _("working group")
        verbose_name_plural = _("working groups")
        constraints = [
            models.CheckConstraint(
                condition=Q(status="closed", closed_at__isnull=False) | (~Q(status="closed")),
                name="wg_closed_has_date",
            ),
        ]

    def __str__(self) -> str:
        return self.name_ja

    @property
    def display_name(self) -> str:
        return _localized(self.name_ja, self.name_en)

    @property
    def charter(self) -> str:
        return _localized(self.charter_ja, self.charter_en)

    @property
    def is_public(self) -> bool:
        return self.visibility == self.Visibility.PUBLIC

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def get_absolute_url(self) -> str:
        return reverse("workinggroups:group-detail", args=[self.slug])


class GroupMember(BaseModel):
    """A person's seat in a working group. ``organization`` is the member organization the
    person represents there (None for outside researchers): it decides per-organization votes."""

    class Role(models.TextChoices):
        CHAIR = "chair", _("Chair")
        VICE_CHAIR = "vice_chair", _("Vice-chair")
        SECRETARY = "secretary", _("Secretary")
        MEMBER = "member", _("Member")
        OBSERVER = "observer", _("Observer")

    MANAGER_ROLES = (Role.CHAIR, Role.VICE_CHAIR)
    ORGANIZER_ROLES = (Role.CHAIR, Role.VICE_CHAIR, Role.SECRETARY)

    group = models.ForeignKey(
        WorkingGroup, verbose_name=_("working group"), on_delete=models.CASCADE, related_name="members"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="wg_seats"
    )
    organization = models.ForeignKey(
        "organizations.Organization",
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="wg_seats",
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        ordering = ["group_id", "role", "user_id"]
        verbose_name = _("group member")
        verbose_name_plural = _("group members")
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], name="wg_member_unique"),
            models.UniqueConstraint(fields=["group"], condition=Q(role="chair"), name="wg_one_chair"),
        ]
        indexes = [models.Index(fields=["user", "group"])]

    def __str__(self) -> str:
        return f"{self.user} — {self.group}: {self.get_role_display()}"

    @property
    def has_voting_right(self) -> bool:
        return self.role != self.Role.OBSERVER


class JoinRequest(BaseModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting decision")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    group = models.ForeignKey(WorkingGroup, on_delete=models.CASCADE, related_name="join_requests")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    message = models.TextField(_("message to the chair"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("join request")
        verbose_name_plural = _("join requests")
        constraints = [
            models.UniqueConstraint(
                fields=["group", "user"], condition=Q(status="pending"), name="wg_one_pending_request"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.group} ({self.get_status_display()})"


class Meeting(BaseModel):
    group = models.ForeignKey(WorkingGroup, on_delete=models.CASCADE, related_name="meetings")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(_("title"), max_length=200)
    starts_at = models.DateTimeField(_("starts at"), db_index=True)
    ends_at = models.DateTimeField(_("ends at"))
    location = models.CharField(_("place"), max_length=300, blank=True)
    online_url = models.URLField(_("online meeting link"), blank=True)
    agenda = models.TextField(_("agenda (Markdown)"), blank=True)
    minutes = models.TextField(_("minutes (Markdown)"), blank=True)
    # Incremented on each change so calendar apps replace their copy (iCalendar SEQUENCE).
    sequence = models.PositiveIntegerField(default=0)
    cancelled = models.BooleanField(_("cancelled"), default=False)

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("meeting")
        verbose_name_plural = _("meetings")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="wg_meeting_ends_after"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group}: {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("workinggroups:meeting-detail", args=[self.group.slug, self.pk])


class Attendance(models.Model):
    meeting = models.ForeignKey(Meeting, on_delete=models.CASCADE, related_name="attendance")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    present = models.BooleanField(_("present"), default=True)

    class Meta:
        verbose_name = _("attendance")
        verbose_name_plural = _("attendance")
        constraints = [models.UniqueConstraint(fields=["meeting", "user"], name="wg_attendance_unique")]

    def __str__(self) -> str:
        return f"{self.meeting_id}/{self.user_id}: {self.present}"


class Document(BaseModel):
    group = models.ForeignKey(WorkingGroup, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Denormalised from the newest version for lists (kept by the services).
    current_version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("document")
        verbose_name_plural = _("documents")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("workinggroups:document-detail", args=[self.group.slug, self.pk])


def document_upload_path(instance: DocumentVersion, filename: str) -> str:
    """A random, non-guessable path; the original name is kept on the row, never in the path."""
    ext = os.path.splitext(filename)[1].lower()[:10]
    return f"workinggroups/{secrets.token_hex(2)}/{secrets.token_urlsafe(24)}{ext}"


class DocumentVersion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    file = models.FileField(upload_to=document_upload_path, max_length=300)
    original_name = models.CharField(_("file name"), max_length=255)
    size = models.PositiveBigIntegerField(_("size"))
    content_type = models.CharField(max_length=120)
    note = models.CharField(_("change note"), max_length=300, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]
        verbose_name = _("document version")
        verbose_name_plural = _("document versions")
        constraints = [
            models.UniqueConstraint(fields=["document", "number"], name="wg_docversion_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.document} v{self.number}"


class Thread(BaseModel):
    group = models.ForeignKey(WorkingGroup, on_delete=models.CASCADE, related_name="threads")
    title = models.CharField(_("title"), max_length=200)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    is_locked = models.BooleanField(_("locked"), default=False)
    last_post_at = models.DateTimeField(default=timezone.now, db_index=True)
    post_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-last_post_at", "-id"]
        verbose_name = _("discussion thread")
        verbose_name_plural = _("discussion threads")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("workinggroups:thread-detail", args=[self.group.slug, self.pk])


class Post(BaseModel):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    body = models.TextField(_("message (Markdown)"))
    edited_at = models.DateTimeField(null=True, blank=True)
    is_hidden = models.BooleanField(_("hidden"), default=False)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("post")
        verbose_name_plural = _("posts")

    def __str__(self) -> str:
        return f"{self.thread}: #{self.pk}"


class MemberSettings(models.Model):
    """A person's working-group settings: e-mail notifications and the calendar feed token."""

    class Notify(models.TextChoices):
        IMMEDIATE = "immediate", _("Immediately")
        DAILY = "daily", _("Daily digest")
        OFF = "off", _("Off")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wg_settings"
    )
    notify = models.CharField(
        _("discussion e-mails"), max_length=20, choices=Notify.choices, default=Notify.IMMEDIATE
    )
    feed_token = models.CharField(max_length=64, unique=True)
    last_digest_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("working-group settings")
        verbose_name_plural = _("working-group settings")

    def __str__(self) -> str:
        return str(self.user)

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)


class Motion(BaseModel):
    class Scope(models.TextChoices):
        PERSON = "person", _("One vote per person")
        ORGANIZATION = "organization", _("One vote per organization")

    class QuorumKind(models.TextChoices):
        BALLOTS = "ballots", _("Minimum number of ballots")
        PERCENT = "percent", _("Share of eligible voters (%)")

    group = models.ForeignKey(WorkingGroup, on_delete=models.CASCADE, related_name="motions")
    title = models.CharField(_("motion"), max_length=200)
    description = models.TextField(_("explanation (Markdown)"), blank=True)
    scope = models.CharField(_("ballots"), max_length=20, choices=Scope.choices, default=Scope.PERSON)
    is_secret = models.BooleanField(_("secret ballot"), default=False)
    opens_at = models.DateTimeField(_("opens at"))
    closes_at = models.DateTimeField(_("closes at"), db_index=True)
    quorum_kind = models.CharField(
        _("quorum"), max_length=20, choices=QuorumKind.choices, default=QuorumKind.BALLOTS
    )
    quorum_value = models.PositiveIntegerField(_("quorum value"), default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-opens_at", "-id"]
        verbose_name = _("motion")
        verbose_name_plural = _("motions")
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="wg_motion_closes_after"
            ),
            models.CheckConstraint(
                condition=~Q(quorum_kind="percent") | Q(quorum_value__lte=100),
                name="wg_motion_percent_le_100",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("workinggroups:motion-detail", args=[self.group.slug, self.pk])

    def state(self, now=None) -> str:
        now = now or timezone.now()
        if now < self.opens_at:
            return "scheduled"
        if now < self.closes_at:
            return "open"
        return "closed"

    @property
    def is_open(self) -> bool:
        return self.state() == "open"

    @property
    def is_closed(self) -> bool:
        return self.state() == "closed"


class MotionOption(models.Model):
    motion = models.ForeignKey(Motion, on_delete=models.CASCADE, related_name="options")
    label = models.CharField(_("option"), max_length=200)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["motion", "label"], name="wg_option_unique")]

    def __str__(self) -> str:
        return self.label


class Ballot(models.Model):
    """One ballot. ``organization`` is set only on per-organization motions, where the database
    allows a single ballot per organization; per person, a single ballot per voter."""

    motion = models.ForeignKey(Motion, on_delete=models.CASCADE, related_name="ballots")
    option = models.ForeignKey(MotionOption, on_delete=models.PROTECT, related_name="ballots")
    voter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cast_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("ballot")
        verbose_name_plural = _("ballots")
        constraints = [
            models.UniqueConstraint(fields=["motion", "voter"], name="wg_ballot_one_per_voter"),
            models.UniqueConstraint(
                fields=["motion", "organization"],
                condition=Q(organization__isnull=False),
                name="wg_ballot_one_per_org",
            ),
        ]

    def __str__(self) -> str:
        return f"ballot #{self.pk} on motion {self.motion_id}"
