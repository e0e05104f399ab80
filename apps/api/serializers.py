"""Serializers of the member API. Input serializers only parse and check types; the rules (round
open, one request per class, pools of the class…) stay in apps.allocations.services."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.allocations.models import AllocationRequest, AllocationRound
from apps.organizations.models import Organization
from apps.providers.models import QuotaGrant, ResourcePool, UsageRecord
from apps.providers.selectors import SyncState

MAX_GPU_HOURS = 2_147_483_647  # the largest value of the database column


class ProviderRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField(source="display_name")


class PoolSerializer(serializers.ModelSerializer):
    provider = ProviderRefSerializer()

    class Meta:
        model = ResourcePool
        fields = ["code", "name", "gpu_class", "vendor", "provider", "region", "datacenter", "data_residency"]


class MembershipSerializer(serializers.Serializer):
    tier = serializers.CharField()
    tier_label = serializers.CharField(source="get_tier_display")
    status = serializers.CharField()
    status_label = serializers.CharField(source="get_status_display")
    started_on = serializers.DateField()
    ends_on = serializers.DateField(allow_null=True)


class OrganizationSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name")
    kind_label = serializers.CharField(source="get_kind_display")
    home_provider = ProviderRefSerializer()
    membership = serializers.SerializerMethodField()
    my_roles = serializers.SerializerMethodField()
    can_file_requests = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = [
            "slug",
            "name",
            "name_ja",
            "name_en",
            "kind",
            "kind_label",
            "corporate_number",
            "website",
            "home_provider",
            "membership",
            "my_roles",
            "can_file_requests",
        ]

    @extend_schema_field(MembershipSerializer(allow_null=True))
    def get_membership(self, obj):
        membership = getattr(obj, "membership", None)
        return MembershipSerializer(membership).data if membership else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_my_roles(self, obj) -> list[str]:
        return [role.role for role in obj.my_roles]

    def get_can_file_requests(self, obj) -> bool:
        return any(role.role in ("owner", "admin") for role in obj.my_roles)


class RoundSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display")
    accepts_requests = serializers.SerializerMethodField()

    class Meta:
        model = AllocationRound
        fields = [
            "id",
            "name",
            "fiscal_year",
            "period_start",
            "period_end",
            "status",
            "status_label",
            "accepts_requests",
            "published_at",
        ]

    def get_accepts_requests(self, obj) -> bool:
        return obj.status == AllocationRound.Status.OPEN


class RequestSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="round_id")
    round_status = serializers.CharField(source="round.status")
    eligible_pools = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = AllocationRequest
        fields = [
            "id",
            "round",
            "round_status",
            "gpu_class",
            "demand_gpu_hours",
            "floor_gpu_hours",
            "justification",
            "eligible_pools",
            "created_at",
            "updated_at",
        ]


class _PoolCodeField(serializers.SlugRelatedField):
    def __init__(self, **kwargs):
        super().__init__(
            slug_field="code",
            queryset=ResourcePool.objects.filter(is_active=True, provider__is_active=True),
            error_messages={
                "does_not_exist": _("There is no active pool with the code “{value}”."),
                "invalid": _("Give a pool by its code, as a string."),
            },
            **kwargs,
        )

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data or len(data) > 80:  # the database refuses NUL bytes; codes are short slugs
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.replace("\x00", ""))
        return super().to_internal_value(data)


class _RequestFieldsMixin(serializers.Serializer):
    demand_gpu_hours = serializers.IntegerField(
        min_value=1, max_value=MAX_GPU_HOURS, help_text="Whole GPU-hours, more than zero."
    )
    floor_gpu_hours = serializers.IntegerField(
        min_value=0,
        max_value=MAX_GPU_HOURS,
        required=False,
        allow_null=True,
        default=None,
        help_text="Optional guaranteed floor, at most the demand.",
    )
    justification = serializers.CharField(
        max_length=5000,
        help_text="What the GPU-hours are for.",
        style={"base_template": "textarea.html"},  # multi-line: keeps line breaks (apps.core.text)
    )
    eligible_pools = serializers.ListField(
        child=_PoolCodeField(),
        required=False,
        default=list,
        max_length=200,
        help_text="Codes of the pools you accept; empty for every pool of the class.",
    )

    def validate(self, data):
        demand, floor = data.get("demand_gpu_hours"), data.get("floor_gpu_hours")
        if demand is not None and floor is not None and floor > demand:
            raise serializers.ValidationError(
                {"floor_gpu_hours": [_("The guaranteed floor cannot exceed the demand.")]}
            )
        return data


class RequestCreateSerializer(_RequestFieldsMixin):
    round = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="The id of an open round.")
    gpu_class = serializers.CharField(max_length=40, help_text="A GPU class offered by an active pool.")


class RequestUpdateSerializer(_RequestFieldsMixin):
    """The demand, floor, justification and eligible pools; the round and class never change."""


class GrantSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    pool = PoolSerializer()
    period_start = serializers.DateField(source="period.starts_on")
    period_end = serializers.DateField(source="period.ends_on")
    state_label = serializers.CharField(source="get_state_display")
    source_label = serializers.CharField(source="get_source_display")
    sync_state = serializers.ChoiceField(choices=SyncState.choices)
    sync_label = serializers.SerializerMethodField()
    used_gpu_hours = serializers.DecimalField(source="used_hours", max_digits=18, decimal_places=4)

    class Meta:
        model = QuotaGrant
        fields = [
            "id",
            "pool",
            "gpu_hours",
            "used_gpu_hours",
            "valid_from",
            "valid_until",
            "period_start",
            "period_end",
            "source",
            "source_label",
            "source_ref",
            "state",
            "state_label",
            "sync_state",
            "sync_label",
            "version",
            "applied_version",
            "created_at",
        ]

    def get_sync_label(self, obj) -> str:
        return str(SyncState.labels[obj.sync_state])


class UsageRecordSerializer(serializers.ModelSerializer):
    grant = serializers.UUIDField(source="grant.public_id")
    pool = serializers.CharField(source="grant.pool.code")
    gpu_class = serializers.CharField(source="grant.pool.gpu_class")
    provider = serializers.CharField(source="grant.pool.provider.slug")

    class Meta:
        model = UsageRecord
        fields = [
            "record_id",
            "grant",
            "pool",
            "gpu_class",
            "provider",
            "gpu_hours",
            "started_at",
            "ended_at",
        ]


class UsageSummaryPoolSerializer(serializers.Serializer):
    pool = serializers.CharField()
    gpu_class = serializers.CharField()
    provider = serializers.CharField()
    gpu_hours = serializers.DecimalField(max_digits=18, decimal_places=4)
    records = serializers.IntegerField()
    grants = serializers.IntegerField()


class UsageSummarySerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    gpu_hours = serializers.DecimalField(max_digits=18, decimal_places=4)
    pools = UsageSummaryPoolSerializer(many=True)


# --- the published result of a round -------------------------------------------------------------


class PlacementSerializer(serializers.Serializer):
    pool = serializers.CharField(source="result.pool.code")
    provider = serializers.CharField(source="result.pool.provider.slug")
    gpu_hours = serializers.IntegerField(source="amount")
    computed_gpu_hours = serializers.IntegerField(source="result.amount")
    adjusted = serializers.SerializerMethodField()
    adjustment_reason = serializers.CharField(source="result.adjustment_reason")

    def get_adjusted(self, obj) -> bool:
        return obj.result.adjusted_amount is not None


class ResultClassSerializer(serializers.Serializer):
    gpu_class = serializers.CharField()
    requested_gpu_hours = serializers.IntegerField(source="requested")
    considered_gpu_hours = serializers.IntegerField(
        source="demand", help_text="The demand after the policy's cap per class."
    )
    granted_gpu_hours = serializers.IntegerField(source="granted")
    exact_share = serializers.FloatField(source="exact")
    level = serializers.FloatField()
    stopped_reason = serializers.CharField()
    stopped_label = serializers.CharField()
    exhausted_pools = serializers.ListField(child=serializers.CharField())
    placements = PlacementSerializer(many=True)


class WeightSerializer(serializers.Serializer):
    weight = serializers.DecimalField(max_digits=12, decimal_places=6)
    derivation = serializers.JSONField()


class ResultSerializer(serializers.Serializer):
    round = RoundSerializer()
    weight = serializers.SerializerMethodField()
    classes = ResultClassSerializer(many=True)
    requests = RequestSerializer(many=True)
    excluded = serializers.BooleanField(
        help_text="True when the organization's requests were left out (membership not active)."
    )

    @extend_schema_field(WeightSerializer(allow_null=True))
    def get_weight(self, obj):
        weight = obj["weight"]
        if weight is None:
            return None
        return WeightSerializer({"weight": weight.weight, "derivation": weight.derivation}).data


# --- statements ------------------------------------------------------------------------------------


class StatementLineSerializer(serializers.Serializer):
    section = serializers.ChoiceField(choices=["allocation", "award"], help_text="Program awards apart.")
    provider = serializers.CharField()
    pool = serializers.CharField()
    gpu_class = serializers.CharField()
    granted_gpu_hours = serializers.DecimalField(source="granted", max_digits=18, decimal_places=2)
    used_gpu_hours = serializers.DecimalField(source="used", max_digits=18, decimal_places=4)


class StatementMonthSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    granted_gpu_hours = serializers.DecimalField(max_digits=18, decimal_places=2)
    used_gpu_hours = serializers.DecimalField(max_digits=18, decimal_places=4)


class StatementSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="FY2026 (a fiscal year) or 2026-05 (a month).")
    starts_on = serializers.DateField()
    ends_on = serializers.DateField(help_text="Exclusive.")
    lines = StatementLineSerializer(many=True)
    months = StatementMonthSerializer(many=True)
