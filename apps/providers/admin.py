"""Admin for providers, pools, grants and their delivery. Grants change only through the services
(actions below); the delivery records (outbox, attempts, usage) are read-only."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from apps.core.admin import AuditedAdminMixin, run_each
from apps.providers import services
from apps.providers.models import (
    DeliveryAttempt,
    GrantDrift,
    GrantOutbox,
    PoolPeriod,
    Provider,
    ProviderOperator,
    QuotaGrant,
    ResourcePool,
    UsageRecord,
)


class ReadOnlyAdminMixin:
    """Records written by the delivery machinery: viewable, never edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ProviderOperatorInline(admin.TabularInline):
    model = ProviderOperator
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Provider)
class ProviderAdmin(AuditedAdminMixin, admin.ModelAdmin):
    # The API secret lives in settings (PROVIDER_SECRETS) and is never a field here.
    list_display = ("name_ja", "name_en", "slug", "adapter_kind", "api_base_url", "is_active")
    list_filter = ("is_active", "adapter_kind")
    search_fields = ("name_ja", "name_en", "slug")
    prepopulated_fields = {"slug": ("name_en",)}
    fields = (
        "slug",
        "name_ja",
        "name_en",
        "homepage",
        "description_ja",
        "description_en",
        "is_active",
        "adapter_kind",
        "api_base_url",
        "api_key_id",
        "usage_cursor",
    )
    readonly_fields = ("usage_cursor",)
    inlines = [ProviderOperatorInline]
    actions = ["reconcile"]

    @admin.action(description=_("Reconcile selected providers now"))
    def reconcile(self, request, queryset):
        for provider in queryset:
            report = services.provider_reconcile(provider_id=provider.pk)
            if report.error:
                self.message_user(request, f"{provider}: {report.error}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _(
                        "%(provider)s: %(checked)d checked, %(missing)d missing, %(extra)d unknown, "
                        "%(different)d different, %(resolved)d resolved."
                    )
                    % {"provider": provider, **report.__dict__},
                    messages.SUCCESS,
                )


class PoolPeriodInline(admin.TabularInline):
    model = PoolPeriod
    extra = 0
    fields = ("starts_on", "ends_on", "capacity_gpu_hours")


@admin.register(ResourcePool)
class ResourcePoolAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = (
        "code",
        "provider",
        "gpu_class",
        "vendor",
        "region",
        "datacenter",
        "wholesale_rate",
        "is_active",
    )
    list_filter = ("provider", "vendor", "gpu_class", "is_active", "data_residency")
    search_fields = ("code", "name", "gpu_class", "datacenter", "provider__name_ja", "provider__name_en")
    list_select_related = ("provider",)
    inlines = [PoolPeriodInline]


@admin.register(PoolPeriod)
class PoolPeriodAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("pool", "starts_on", "ends_on", "capacity_gpu_hours")
    list_filter = ("pool__provider",)
    search_fields = ("pool__code", "pool__gpu_class")
    list_select_related = ("pool__provider",)
    date_hierarchy = "starts_on"


@admin.register(QuotaGrant)
class QuotaGrantAdmin(admin.ModelAdmin):
    """Read-mostly: grants are created and changed through the services (portal pages, rounds),
    so that capacity is checked and the change reaches the provider."""

    list_display = (
        "public_id",
        "organization",
        "pool",
        "gpu_hours",
        "valid_from",
        "valid_until",
        "state",
        "version",
        "applied_version",
        "source",
    )
    list_filter = ("state", "source", "pool__provider", "pool__gpu_class")
    search_fields = (
        "public_id",
        "organization__name_ja",
        "organization__name_en",
        "pool__code",
        "source_ref",
    )
    list_select_related = ("organization", "pool__provider")
    readonly_fields = [f.name for f in QuotaGrant._meta.concrete_fields]
    actions = ["resend", "revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Resend selected grants to their provider"))
    def resend(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda g: services.grant_resend(grant_id=g.pk, actor=request.user),
            _("%(count)d grants will be sent again."),
        )

    @admin.action(description=_("Revoke selected grants"))
    def revoke(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda g: services.grant_revoke(
                grant_id=g.pk, actor=request.user, reason=str(_("Revoked from the admin site"))
            ),
            _("%(count)d grants are being revoked."),
        )


@admin.register(GrantOutbox)
class GrantOutboxAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "grant",
        "provider",
        "operation",
        "version",
        "state",
        "attempts",
        "next_attempt_at",
        "completed_at",
    )
    list_filter = ("state", "operation", "provider")
    search_fields = ("idempotency_key", "grant__public_id", "last_error")
    list_select_related = ("grant__organization", "grant__pool__provider", "provider")
    date_hierarchy = "created_at"


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "provider", "outbox_id", "ok", "duration_ms", "error")
    list_filter = ("ok", "provider")
    search_fields = ("error", "outbox__idempotency_key")
    list_select_related = ("provider",)
    date_hierarchy = "at"


@admin.register(GrantDrift)
class GrantDriftAdmin(admin.ModelAdmin):
    list_display = ("grant_public_id", "provider", "kind", "detected_at", "resolution", "resolved_at")
    list_filter = ("kind", "resolution", "provider")
    search_fields = ("grant_public_id", "grant__organization__name_ja", "grant__organization__name_en")
    list_select_related = ("provider", "resolved_by")
    readonly_fields = [f.name for f in GrantDrift._meta.concrete_fields]
    actions = ["resend", "accept"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Resend the portal's version of the selected grants"))
    def resend(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda d: services.drift_resend(drift_id=d.pk, actor=request.user),
            _("%(count)d differences resolved by resending."),
        )

    @admin.action(description=_("Accept the selected differences"))
    def accept(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda d: services.drift_accept(
                drift_id=d.pk, actor=request.user, note=str(_("Accepted from the admin site"))
            ),
            _("%(count)d differences accepted."),
        )


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("record_id", "provider", "grant", "gpu_hours", "started_at", "ended_at", "received_at")
    list_filter = ("provider",)
    search_fields = ("record_id",)
    list_select_related = ("provider", "grant__organization", "grant__pool__provider")
    date_hierarchy = "started_at"
    show_full_result_count = False


@admin.register(ProviderOperator)
class ProviderOperatorAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "provider", "created_at")
    list_filter = ("provider",)
    search_fields = ("user__email", "provider__name_ja", "provider__name_en")
    list_select_related = ("user", "provider")
    autocomplete_fields = ("user",)
