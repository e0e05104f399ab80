import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class Provider(BaseModel):
    """A GPU cloud provider of the alliance. Members contract with one as their home provider;
    grants on its pools are pushed to its API through an adapter."""

    class AdapterKind(models.TextChoices):
        REST_V1 = "rest_v1", _("Alliance Provider API v1 (REST)")

    slug = models.SlugField(_("slug"), unique=True)
    name_ja = models.CharField(_("name (Japanese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    homepage = models.URLField(_("home page"), blank=True)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    adapter_kind = models.CharField(
        _("adapter"), max_length=30, choices=AdapterKind.choices, default=AdapterKind.REST_V1
    )
    api_base_url = models.URLField(_("API base URL"), blank=True)
    # The shared secret itself lives in settings (PROVIDER_SECRETS), never in the database or the UI.
    api_key_id = models.CharField(_("API key id"), max_length=64, blank=True)
    usage_cursor = models.CharField(_("usage cursor"), max_length=200, blank=True)

    class Meta:
        ordering = ["name_en"]
        verbose_name = _("provider")
        verbose_name_plural = _("providers")

    def __str__(self) -> str:
        return self.name_ja

    @property
    def display_name(self) -> str:
        return self.name_en if (get_language() or "ja").startswith("en") else self.name_ja

    @property
    def api_secret(self) -> str:
        secret = settings.PROVIDER_SECRETS.get(self.slug, "")
        if not secret and settings.PROVIDER_DEMO_SECRETS:
            secret = f"demo-secret-{self.slug}"
        return secret

    def get_absolute_url(self) -> str:
        return reverse("providers:provider-detail", args=[self.slug])


class ResourcePool(BaseModel):
    """A pool of accelerators at one provider and data centre. Vendor neutral: the GPU class is a
    label (GB200, B200, H200, MI300X, Gaudi 3, a domestic chip…)."""

    class Vendor(models.TextChoices):
        NVIDIA = "nvidia", "NVIDIA"
        AMD = "amd", "AMD"
        INTEL = "intel", "Intel"
        DOMESTIC = "domestic", _("Domestic accelerator")
        OTHER = "other", _("Other")

    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.PROTECT, related_name="pools"
    )
    code = models.SlugField(_("code"), max_length=80, unique=True)
    name = models.CharField(_("name"), max_length=200)
    gpu_class = models.CharField(_("GPU class"), max_length=40, db_index=True)
    vendor = models.CharField(_("vendor"), max_length=20, choices=Vendor.choices, default=Vendor.NVIDIA)
    region = models.CharField(_("region"), max_length=80)
    datacenter = models.CharField(_("data centre"), max_length=120)
    data_residency = models.CharField(
        _("data residency"), max_length=40, default="jp", help_text=_("Where data is processed, e.g. jp.")
    )
    wholesale_rate = models.DecimalField(
        _("wholesale rate (JPY per GPU-hour)"), max_digits=10, decimal_places=2, default=Decimal("0")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["provider__name_en", "gpu_class", "code"]
        verbose_name = _("resource pool")
        verbose_name_plural = _("resource pools")
        constraints = [
            models.CheckConstraint(condition=Q(wholesale_rate__gte=0), name="pool_rate_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.provider.name_en} {self.gpu_class} ({self.datacenter})"


class PoolPeriod(BaseModel):
    """The capacity of a pool for a period (e.g. a quarter of the fiscal year). Grants on the pool
    for the period never add up to more than ``capacity_gpu_hours``: services lock this row."""

    pool = models.ForeignKey(
        ResourcePool, verbose_name=_("pool"), on_delete=models.PROTECT, related_name="periods"
    )
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"), help_text=_("Exclusive: the first day after the period."))
    capacity_gpu_hours = models.DecimalField(_("capacity (GPU-hours)"), max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["pool_id", "starts_on"]
        verbose_name = _("pool capacity period")
        verbose_name_plural = _("pool capacity periods")
        constraints = [
            models.UniqueConstraint(fields=["pool", "starts_on"], name="poolperiod_unique_start"),
            models.CheckConstraint(
                condition=Q(ends_on__gt=F("starts_on")), name="poolperiod_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(capacity_gpu_hours__gte=0), name="poolperiod_capacity_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pool} {self.starts_on}–{self.ends_on}"


class QuotaGrant(BaseModel):
    """GPU-hours granted to an organization on a pool for (part of) a capacity period.

    Every change bumps ``version`` and writes a GrantOutbox row in the same transaction; the
    provider applies each version at most once (idempotency keys, version ordering)."""

    class Source(models.TextChoices):
        ROUND = "round", _("Allocation round")
        AWARD = "award", _("Program award")
        MANUAL = "manual", _("Manual")

    class State(models.TextChoices):
        PENDING = "pending", pgettext_lazy("grant state", "Pending")
        SENT = "sent", _("Sent")
        ACTIVE = "active", _("Active at provider")
        REVOKING = "revoking", _("Revoking")
        REVOKED = "revoked", _("Revoked")
        FAILED = "failed", _("Failed")

    LIVE_STATES = (State.PENDING, State.SENT, State.ACTIVE, State.REVOKING, State.FAILED)

    public_id = models.UUIDField(_("grant id"), default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        "organizations.Organization",
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        related_name="grants",
    )
    period = models.ForeignKey(
        PoolPeriod, verbose_name=_("pool period"), on_delete=models.PROTECT, related_name="grants"
    )
    pool = models.ForeignKey(
        ResourcePool, verbose_name=_("pool"), on_delete=models.PROTECT, related_name="grants"
    )
    gpu_hours = models.DecimalField(_("GPU-hours"), max_digits=14, decimal_places=2)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"), help_text=_("Exclusive."))
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, default=Source.MANUAL)
    source_ref = models.CharField(_("source reference"), max_length=100, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)
    applied_version = models.PositiveIntegerField(_("version applied at provider"), null=True, blank=True)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.PENDING, db_index=True
    )
    last_error = models.TextField(_("last error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("quota grant")
        verbose_name_plural = _("quota grants")
        constraints = [
            models.CheckConstraint(condition=Q(gpu_hours__gt=0), name="grant_hours_positive"),
            models.CheckConstraint(
                condition=Q(valid_until__gt=F("valid_from")), name="grant_valid_until_after_from"
            ),
        ]
        indexes = [models.Index(fields=["pool", "state"]), models.Index(fields=["organization", "state"])]

    def __str__(self) -> str:
        return f"{self.organization} · {self.pool} · {self.gpu_hours} h (v{self.version})"

    def get_absolute_url(self) -> str:
        return reverse("providers:grant-detail", args=[self.public_id])


class GrantOutbox(models.Model):
    """What must be sent to a provider, written in the same transaction as the grant change.

    A worker claims a row with a conditional UPDATE, calls the adapter outside any transaction and
    records the outcome; the sweeper re-enqueues rows that are due or whose claim has expired."""

    class Operation(models.TextChoices):
        APPLY = "apply", _("Apply")
        REVOKE = "revoke", _("Revoke")

    class State(models.TextChoices):
        PENDING = "pending", pgettext_lazy("delivery state", "Pending")
        IN_FLIGHT = "in_flight", _("In flight")
        DONE = "done", _("Done")
        SUPERSEDED = "superseded", _("Superseded")
        FAILED = "failed", _("Failed")

    grant = models.ForeignKey(QuotaGrant, on_delete=models.CASCADE, related_name="outbox")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="outbox")
    operation = models.CharField(max_length=10, choices=Operation.choices)
    version = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=120, unique=True)
    payload = models.JSONField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Fences the claim: set anew by every claim; only the worker holding the current token may
    # record the outcome (a worker whose claim expired and was taken over records nothing).
    claim_token = models.UUIDField(null=True, blank=True)
    # When the last task message for this row is due at a worker (publish time + countdown): the
    # sweeper does not enqueue the row again while that is recent (OUTBOX_REENQUEUE_SECONDS).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(state__in=["pending", "in_flight"]), name="outbox_due"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.grant_id} v{self.version} ({self.state})"


class DeliveryAttempt(models.Model):
    """One call to a provider's API, for provider health (last success, error rate)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="attempts")
    outbox = models.ForeignKey(GrantOutbox, on_delete=models.SET_NULL, null=True, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    ok = models.BooleanField()
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["provider", "at"])]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else self.error}"


class GrantDrift(models.Model):
    """A difference between the portal's view of a grant and the provider's, found by reconciling."""

    class Kind(models.TextChoices):
        MISSING = "missing", _("Missing at provider")
        EXTRA = "extra", _("Unknown to the portal")
        DIFFERENT = "different", _("Different at provider")

    class Resolution(models.TextChoices):
        RESENT = "resent", _("Resent")
        ACCEPTED = "accepted", _("Accepted")
        VANISHED = "vanished", _("No longer differs")

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="drifts")
    grant = models.ForeignKey(
        QuotaGrant, on_delete=models.CASCADE, null=True, blank=True, related_name="drifts"
    )
    grant_public_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    ours = models.JSONField(null=True, blank=True)
    theirs = models.JSONField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-detected_at"]
        verbose_name = _("grant drift")
        verbose_name_plural = _("grant drifts")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "grant_public_id", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="drift_one_open_per_grant_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.grant_public_id}"


class UsageRecord(models.Model):
    """GPU-hours used under a grant, as reported by the provider. Idempotent on (provider, record_id)."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="usage")
    record_id = models.CharField(max_length=100)
    grant = models.ForeignKey(QuotaGrant, on_delete=models.PROTECT, related_name="usage")
    gpu_hours = models.DecimalField(max_digits=12, decimal_places=4)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("usage record")
        verbose_name_plural = _("usage records")
        constraints = [
            models.UniqueConstraint(fields=["provider", "record_id"], name="usage_unique_per_provider"),
            models.CheckConstraint(condition=Q(gpu_hours__gte=0), name="usage_hours_not_negative"),
            models.CheckConstraint(condition=Q(ended_at__gte=F("started_at")), name="usage_interval_ordered"),
        ]
        indexes = [
            models.Index(fields=["grant", "started_at"]),
            # The staff's usage record list (newest first) and its exports.
            models.Index(fields=["-started_at", "-id"], name="usage_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id}:{self.record_id} {self.gpu_hours} h"


class UsageMonth(models.Model):
    """GPU-hours used under a grant in a calendar month (Asia/Tokyo; a record counts in the month its
    interval starts). Kept up to date by ``usage_ingest`` in the same transaction as the records, so
    that statements, settlement, transparency and dashboards read thousands of rows, not millions."""

    grant = models.ForeignKey(QuotaGrant, on_delete=models.PROTECT, related_name="usage_months")
    month = models.DateField(help_text="The first day of the month.")
    gpu_hours = models.DecimalField(max_digits=16, decimal_places=4, default=0)
    records = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("monthly usage")
        verbose_name_plural = _("monthly usage")
        constraints = [models.UniqueConstraint(fields=["grant", "month"], name="usagemonth_unique")]
        indexes = [models.Index(fields=["month", "grant"])]

    def __str__(self) -> str:
        return f"{self.grant_id} {self.month:%Y-%m}: {self.gpu_hours} h"


class UsageRejection(models.Model):
    """Usage a provider sent that the portal refused or skipped: one row per batch (a push, a pulled
    page) with how many records were refused and the first ones with their reasons. Outside text
    is stored escaped (``usage.shown``), so whatever was sent can be kept and shown."""

    class Source(models.TextChoices):
        PUSH = "push", _("push")
        PULL = "pull", _("pull")

    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.CASCADE, related_name="usage_rejections"
    )
    source = models.CharField(_("source"), max_length=4, choices=Source.choices)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    rejected = models.PositiveIntegerField(_("records refused"), default=0)
    accepted = models.PositiveIntegerField(_("records stored"), default=0)
    cursor = models.CharField(_("cursor"), max_length=520, blank=True)
    problem = models.CharField(_("problem"), max_length=520, blank=True)
    errors = models.JSONField(_("errors"), default=list, blank=True)

    class Meta:
        verbose_name = _("refused usage")
        verbose_name_plural = _("refused usage")
        indexes = [models.Index(fields=["provider", "-received_at"], name="usagerejection_newest")]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.source} {self.received_at:%Y-%m-%d %H:%M}: {self.rejected} refused"


class ProviderOperator(BaseModel):
    """A provider's operator: sees that provider's pools, grants on them, sync state and usage."""

    provider = models.ForeignKey(
        Provider, verbose_name=_("provider"), on_delete=models.CASCADE, related_name="operators"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="provider_roles",
    )

    class Meta:
        verbose_name = _("provider operator")
        verbose_name_plural = _("provider operators")
        constraints = [models.UniqueConstraint(fields=["provider", "user"], name="provider_operator_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.provider}"
