from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin import AuditedAdminMixin, run_each
from apps.organizations import services
from apps.organizations.models import (
    ApplicationTransition,
    Invitation,
    Membership,
    MembershipApplication,
    Organization,
    OrgRole,
    ParticipationTerms,
)


@admin.register(ParticipationTerms)
class ParticipationTermsAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("version", "title_ja", "effective_from", "is_published")
    list_filter = ("is_published",)
    search_fields = ("version", "title_ja", "title_en")


class MembershipInline(admin.StackedInline):
    model = Membership
    can_delete = False
    readonly_fields = ("status", "status_reason")


class OrgRoleInline(admin.TabularInline):
    model = OrgRole
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = (
        "name_ja",
        "name_en",
        "kind",
        "corporate_number",
        "home_provider",
        "is_listed",
        "created_at",
    )
    list_filter = ("kind", "home_provider", "is_listed", "membership__status", "membership__tier")
    search_fields = ("name_ja", "name_en", "corporate_number", "slug")
    list_select_related = ("home_provider",)
    inlines = [MembershipInline, OrgRoleInline]
    actions = ["unlist"]

    @admin.action(description=_("Hide selected organizations from the directory"))
    def unlist(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda org: services.organization_update_profile(
                organization_id=org.pk, actor=request.user, data={"is_listed": False}
            ),
            _("%(count)d organizations hidden."),
        )


@admin.register(Membership)
class MembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("organization", "tier", "status", "started_on", "ends_on")
    list_filter = ("tier", "status")
    search_fields = ("organization__name_ja", "organization__name_en", "organization__corporate_number")
    list_select_related = ("organization",)
    readonly_fields = ("status", "status_reason")
    actions = ["suspend", "reactivate", "lapse"]

    def _set(self, request, queryset, status, label):
        run_each(
            self,
            request,
            queryset,
            lambda m: services.membership_set_status(
                membership_id=m.pk,
                actor=request.user,
                status=status,
                reason=str(_("Set from the admin site")),
            ),
            label,
        )

    @admin.action(description=_("Suspend selected memberships"))
    def suspend(self, request, queryset):
        self._set(request, queryset, Membership.Status.SUSPENDED, _("%(count)d memberships suspended."))

    @admin.action(description=_("Reactivate selected memberships"))
    def reactivate(self, request, queryset):
        self._set(request, queryset, Membership.Status.ACTIVE, _("%(count)d memberships reactivated."))

    @admin.action(description=_("Mark selected memberships as lapsed"))
    def lapse(self, request, queryset):
        self._set(request, queryset, Membership.Status.LAPSED, _("%(count)d memberships lapsed."))


@admin.register(OrgRole)
class OrgRoleAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "organization__name_ja", "organization__name_en")
    list_select_related = ("user", "organization")
    autocomplete_fields = ("user", "organization")


class TransitionInline(admin.TabularInline):
    model = ApplicationTransition
    extra = 0
    can_delete = False
    readonly_fields = ("from_status", "to_status", "actor", "reason", "at")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(MembershipApplication)
class MembershipApplicationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name_ja", "kind", "corporate_number", "status", "applicant", "submitted_at", "reviewer")
    list_filter = ("status", "kind", "home_provider", "requested_tier")
    search_fields = ("name_ja", "name_en", "corporate_number", "contact_email", "applicant__email")
    list_select_related = ("applicant", "reviewer")
    date_hierarchy = "submitted_at"
    readonly_fields = (
        "status",
        "submitted_at",
        "decided_at",
        "reviewer",
        "decision_reason",
        "organization",
        "accepted_terms",
        "terms_accepted_at",
    )
    inlines = [TransitionInline]
    actions = ["start_review", "approve"]

    @admin.action(description=_("Start review of selected applications"))
    def start_review(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda a: services.application_start_review(application_id=a.pk, reviewer=request.user),
            _("%(count)d applications taken into review."),
        )

    @admin.action(description=_("Approve selected applications"))
    def approve(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda a: services.application_approve(application_id=a.pk, reviewer=request.user),
            _("%(count)d applications approved."),
        )


@admin.register(Invitation)
class InvitationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("email", "organization", "role", "invited_by", "expires_at", "accepted_at", "revoked_at")
    list_filter = ("role",)
    search_fields = ("email", "organization__name_ja", "organization__name_en")
    list_select_related = ("organization", "invited_by")
    readonly_fields = ("token_hash", "accepted_at", "accepted_by", "revoked_at")
    actions = ["revoke"]

    @admin.action(description=_("Revoke selected invitations"))
    def revoke(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda i: services.invitation_revoke(invitation_id=i.pk, actor=request.user),
            _("%(count)d invitations revoked."),
        )


@admin.register(ApplicationTransition)
class ApplicationTransitionAdmin(admin.ModelAdmin):
    list_display = ("application", "from_status", "to_status", "actor", "at")
    list_filter = ("to_status",)
    search_fields = ("application__name_ja", "reason")
    list_select_related = ("application", "actor")

    def has_change_permission(self, request, obj=None):
        return False
