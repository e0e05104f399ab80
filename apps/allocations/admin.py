"""Admin for the allocation round. Policies are edited here (audited); rounds, requests and
results change through the services (the round's admin actions call them), so they are read-only."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.allocations import services
from apps.allocations.models import (
    AllocationRequest,
    AllocationRound,
    FairSharePolicy,
    RoundPool,
    RoundResult,
    RoundWeight,
)
from apps.core.admin import AuditedAdminMixin, run_each


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FairSharePolicy)
class FairSharePolicyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "is_default", "decay_half_life_days", "decay_strength", "award_reserve_share")
    list_filter = ("is_default",)
    search_fields = ("name",)


@admin.register(AllocationRound)
class AllocationRoundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "fiscal_year", "period_start", "period_end", "policy", "status", "progress")
    list_filter = ("status", "fiscal_year")
    search_fields = ("name",)
    list_select_related = ("policy",)
    actions = ("close", "reopen", "compute")

    @admin.action(description=_("Close the selected rounds"))
    def close(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda r: services.round_close(round_id=r.pk, actor=request.user),
            _("%(count)d rounds closed."),
        )

    @admin.action(description=_("Reopen the selected rounds"))
    def reopen(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda r: services.round_reopen(round_id=r.pk, actor=request.user),
            _("%(count)d rounds reopened."),
        )

    @admin.action(description=_("Compute the selected rounds"))
    def compute(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda r: services.round_compute_enqueue(round_id=r.pk, actor=request.user),
            _("%(count)d rounds queued for computing."),
        )


@admin.register(AllocationRequest)
class AllocationRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("round", "organization", "gpu_class", "demand_gpu_hours", "floor_gpu_hours", "created_at")
    list_filter = ("round__status", "gpu_class")
    search_fields = ("organization__name_ja", "organization__name_en", "organization__slug", "justification")
    list_select_related = ("round", "organization")


@admin.register(RoundWeight)
class RoundWeightAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("round", "organization", "weight")
    list_filter = ("round",)
    search_fields = ("organization__name_ja", "organization__name_en", "organization__slug")
    list_select_related = ("round", "organization")


@admin.register(RoundPool)
class RoundPoolAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("round", "pool", "period", "capacity")
    list_filter = ("round", "pool__gpu_class")
    search_fields = ("pool__code", "pool__name")
    list_select_related = ("round", "pool__provider", "period__pool__provider")


@admin.register(RoundResult)
class RoundResultAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "round",
        "organization",
        "gpu_class",
        "pool",
        "amount",
        "adjusted_amount",
        "stopped_reason",
    )
    list_filter = ("round", "gpu_class", "stopped_reason")
    search_fields = ("organization__name_ja", "organization__name_en", "organization__slug", "pool__code")
    list_select_related = ("round", "organization", "pool__provider")
