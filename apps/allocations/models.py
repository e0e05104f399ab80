"""The allocation round: a fair-share policy, the requests of a period, the effective weights and
the engine's result, which staff may adjust before publishing it as QuotaGrants.

open → closed → computed → published; a closed round may be reopened, a computed one recomputed.
"""

import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel
from apps.organizations.models import MembershipTier, OrganizationKind


def _validate_factor_dict(value, allowed: dict[str, str], what: str) -> None:
    if not isinstance(value, dict):
        raise ValidationError(_("Enter an object mapping each %(what)s to a number.") % {"what": what})
    for key, factor in value.items():
        if key not in allowed:
            raise ValidationError(
                _("Unknown %(what)s “%(key)s”; expected one of: %(allowed)s.")
                % {"what": what, "key": key, "allowed": ", ".join(allowed)}
            )
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise ValidationError(
                _("The factor of %(key)s must be a number greater than zero.") % {"key": key}
            )


def validate_tier_weights(value) -> None:
    _validate_factor_dict(value, dict(MembershipTier.choices), str(_("membership tier")))


def validate_kind_factors(value) -> None:
    _validate_factor_dict(value, dict(OrganizationKind.choices), str(_("organization kind")))


def validate_class_caps(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError(_("Enter an object mapping a GPU class to a whole number of GPU-hours."))
    for key, cap in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ValidationError(_("GPU class names must not be empty."))
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ValidationError(
                _("The cap for %(cls)s must be a whole number of GPU-hours, zero or more.") % {"cls": key}
            )


def default_tier_weights() -> dict:
    return {"founding": 2.0, "regular": 1.0, "associate": 0.5, "academic": 1.0}


def default_kind_factors() -> dict:
    return {"enterprise": 1.0, "startup": 1.0, "academic": 1.0, "public_body": 1.0}


class FairSharePolicy(BaseModel):
    """How a round turns membership into weights.

    weight = tier weight * kind factor * usage term. The usage term is Slurm-like: with U and E the
    org's past usage and past entitlement (granted GPU-hours), each decayed with the half-life,
    term = 2^(-strength * (U/E - 1)), clamped to [USAGE_TERM_MIN, 1]: an org that used more than it
    was granted weighs less; one that used its share or less keeps its base weight. No history (or
    strength 0) gives 1. Tiers or kinds missing from the dicts count as 1."""

    USAGE_TERM_MIN = 0.1

    name = models.CharField(_("name"), max_length=100, unique=True)
    tier_weights = models.JSONField(
        _("base weight per membership tier"), default=default_tier_weights, validators=[validate_tier_weights]
    )
    kind_factors = models.JSONField(
        _("factor per organization kind"), default=default_kind_factors, validators=[validate_kind_factors]
    )
    decay_half_life_days = models.PositiveIntegerField(
        _("usage decay half-life (days)"), default=90, validators=[MinValueValidator(1)]
    )
    decay_strength = models.DecimalField(
        _("usage decay strength"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("0 disables the usage term."),
    )
    class_caps = models.JSONField(
        _("per-organization cap per GPU class (GPU-hours)"),
        default=dict,
        blank=True,
        validators=[validate_class_caps],
        help_text=_('For example {"H200": 5000}. Classes not listed have no cap.'),
    )
    award_reserve_share = models.DecimalField(
        _("share of capacity reserved for program awards"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    is_default = models.BooleanField(_("default policy"), default=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("fair-share policy")
        verbose_name_plural = _("fair-share policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(award_reserve_share__gte=0) & Q(award_reserve_share__lte=1),
                name="policy_reserve_share_between_0_and_1",
            ),
            models.CheckConstraint(
                condition=Q(decay_strength__gte=0), name="policy_decay_strength_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(decay_half_life_days__gte=1), name="policy_half_life_positive"
            ),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="policy_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


def fiscal_year_bounds(fiscal_year: int) -> tuple[datetime.date, datetime.date]:
    """The Japanese fiscal year ``fiscal_year`` (年度): 1 April to 31 March; the end is exclusive."""
    return datetime.date(fiscal_year, 4, 1), datetime.date(fiscal_year + 1, 4, 1)


class AllocationRound(BaseModel):
    class Status(models.TextChoices):
        OPEN = "open", _("Open for requests")
        CLOSED = "closed", _("Closed")
        COMPUTED = "computed", _("Computed")
        PUBLISHED = "published", _("Published")

    name = models.CharField(_("name"), max_length=200)
    fiscal_year = models.PositiveIntegerField(
        _("fiscal year"), validators=[MinValueValidator(2000), MaxValueValidator(2999)]
    )
    period_start = models.DateField(_("period starts on"), help_text=_("The first day of a month."))
    period_end = models.DateField(
        _("period ends on"), help_text=_("Exclusive: the first day of the month after the period.")
    )
    policy = models.ForeignKey(
        FairSharePolicy, verbose_name=_("fair-share policy"), on_delete=models.PROTECT, related_name="rounds"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    computed_at = models.DateTimeField(_("computed at"), null=True, blank=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    progress = models.PositiveSmallIntegerField(
        _("progress (%)"), default=0, validators=[MaxValueValidator(100)]
    )
    task_id = models.CharField(_("compute task id"), max_length=64, blank=True)
    last_error = models.TextField(_("last compute error"), blank=True)
    excluded_requests = models.JSONField(
        _("requests left out of the computation"),
        default=list,
        blank=True,
        help_text=_(
            "Requests of organizations whose membership was no longer active when the round was computed."
        ),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-fiscal_year", "-period_start", "-id"]
        verbose_name = _("allocation round")
        verbose_name_plural = _("allocation rounds")
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="round_period_ordered"
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="round_progress_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.period_start:%Y-%m}–{self.period_end:%Y-%m})"

    def clean(self) -> None:
        super().clean()
        errors = period_errors(self.fiscal_year, self.period_start, self.period_end)
        if errors:
            raise ValidationError(errors)


def period_errors(fiscal_year, start, end) -> list[str]:
    """Why (start, end) is not a run of whole months within fiscal year ``fiscal_year``, if it is not."""
    if fiscal_year is None or start is None or end is None:
        return []
    errors = []
    if start.day != 1 or end.day != 1:
        errors.append(
            _("A round covers whole months: it starts on the 1st and ends on the 1st of a later month.")
        )
    if end <= start:
        errors.append(_("The period must end after it starts."))
    fy_start, fy_end = fiscal_year_bounds(fiscal_year)
    if not (fy_start <= start and end <= fy_end):
        errors.append(
            _("The period must lie within fiscal year %(fy)s (%(start)s to %(end)s).")
            % {"fy": fiscal_year, "start": fy_start, "end": fy_end - datetime.timedelta(days=1)}
        )
    return [str(e) for e in errors]


class AllocationRequest(BaseModel):
    """An organization's request for one GPU class in a round."""

    round = models.ForeignKey(
        AllocationRound, verbose_name=_("round"), on_delete=models.CASCADE, related_name="requests"
    )
    organization = models.ForeignKey(
        "organizations.Organization",
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        related_name="allocation_requests",
    )
    gpu_class = models.CharField(_("GPU class"), max_length=40)
    demand_gpu_hours = models.PositiveIntegerField(_("demand (GPU-hours)"))
    floor_gpu_hours = models.PositiveIntegerField(_("guaranteed floor (GPU-hours)"), null=True, blank=True)
    justification = models.TextField(_("justification"))
    eligible_pools = models.ManyToManyField(
        "providers.ResourcePool",
        verbose_name=_("eligible pools"),
        blank=True,
        related_name="+",
        help_text=_("Leave empty to accept every pool of the class."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    class Meta:
        ordering = ["round_id", "gpu_class", "organization_id"]
        verbose_name = _("allocation request")
        verbose_name_plural = _("allocation requests")
        constraints = [
            models.UniqueConstraint(
                fields=["round", "organization", "gpu_class"], name="request_one_per_org_class"
            ),
            models.CheckConstraint(condition=Q(demand_gpu_hours__gt=0), name="request_demand_positive"),
            models.CheckConstraint(
                condition=Q(floor_gpu_hours__isnull=True) | Q(floor_gpu_hours__lte=F("demand_gpu_hours")),
                name="request_floor_within_demand",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} · {self.gpu_class} · {self.demand_gpu_hours} h"


class RoundWeight(BaseModel):
    """The effective weight of an organization in a round, and how it was derived (shown to members)."""

    round = models.ForeignKey(
        AllocationRound, verbose_name=_("round"), on_delete=models.CASCADE, related_name="weights"
    )
    organization = models.ForeignKey(
        "organizations.Organization",
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    weight = models.DecimalField(_("weight"), max_digits=12, decimal_places=6)
    derivation = models.JSONField(_("derivation"), default=dict)

    class Meta:
        ordering = ["round_id", "organization_id"]
        verbose_name = _("round weight")
        verbose_name_plural = _("round weights")
        constraints = [
            models.UniqueConstraint(fields=["round", "organization"], name="roundweight_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="roundweight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.organization}: {self.weight}"


class RoundPool(BaseModel):
    """A pool's capacity in a round: the covering PoolPeriod's capacity less the award reserve and
    the GPU-hours granted on that period by other sources, in whole GPU-hours."""

    round = models.ForeignKey(
        AllocationRound, verbose_name=_("round"), on_delete=models.CASCADE, related_name="pools"
    )
    pool = models.ForeignKey(
        "providers.ResourcePool", verbose_name=_("pool"), on_delete=models.PROTECT, related_name="+"
    )
    period = models.ForeignKey(
        "providers.PoolPeriod", verbose_name=_("pool period"), on_delete=models.PROTECT, related_name="+"
    )
    capacity = models.PositiveBigIntegerField(_("capacity in the round (GPU-hours)"))
    derivation = models.JSONField(_("derivation"), default=dict)

    class Meta:
        ordering = ["round_id", "pool__gpu_class", "pool__code"]
        verbose_name = _("round pool")
        verbose_name_plural = _("round pools")
        constraints = [models.UniqueConstraint(fields=["round", "pool"], name="roundpool_unique")]

    def __str__(self) -> str:
        return f"{self.pool.code}: {self.capacity} h"


class RoundResult(BaseModel):
    """What the engine gave an organization on one pool (``pool`` is empty for an org that got
    nothing in a class). ``exact``, ``level`` and the stop reason are those of the (org, class)."""

    class Stopped(models.TextChoices):
        DEMAND_MET = "demand_met", _("Demand met")
        POOLS_EXHAUSTED = "pools_exhausted", _("Eligible pools exhausted")

    round = models.ForeignKey(
        AllocationRound, verbose_name=_("round"), on_delete=models.CASCADE, related_name="results"
    )
    organization = models.ForeignKey(
        "organizations.Organization",
        verbose_name=_("organization"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    gpu_class = models.CharField(_("GPU class"), max_length=40)
    pool = models.ForeignKey(
        "providers.ResourcePool",
        verbose_name=_("pool"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    demand = models.PositiveBigIntegerField(_("demand considered (GPU-hours)"))
    amount = models.PositiveBigIntegerField(_("amount (GPU-hours)"))
    exact_amount = models.FloatField(_("exact fair amount in the class (GPU-hours)"))
    level = models.FloatField(_("level"))
    stopped_reason = models.CharField(_("stopped because"), max_length=20, choices=Stopped.choices)
    exhausted_pools = models.JSONField(_("exhausted pools"), default=list, blank=True)
    adjusted_amount = models.PositiveBigIntegerField(_("adjusted amount (GPU-hours)"), null=True, blank=True)
    adjustment_reason = models.TextField(_("reason for the adjustment"), blank=True)
    adjusted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("adjusted by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["round_id", "gpu_class", "organization_id", "pool_id"]
        verbose_name = _("round result")
        verbose_name_plural = _("round results")
        constraints = [
            models.UniqueConstraint(
                fields=["round", "organization", "pool"],
                condition=Q(pool__isnull=False),
                name="roundresult_one_per_org_pool",
            ),
            models.UniqueConstraint(
                fields=["round", "organization", "gpu_class"],
                condition=Q(pool__isnull=True),
                name="roundresult_one_empty_per_org_class",
            ),
            models.CheckConstraint(
                condition=Q(adjusted_amount__isnull=True) | ~Q(adjustment_reason=""),
                name="roundresult_adjustment_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} · {self.gpu_class} · {self.pool_id}: {self.final_amount} h"

    @property
    def final_amount(self) -> int:
        return self.amount if self.adjusted_amount is None else self.adjusted_amount
