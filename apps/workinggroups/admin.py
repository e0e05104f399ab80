from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.core.admin import AuditedAdminMixin, run_each
from apps.workinggroups import services
from apps.workinggroups.models import (
    Document,
    DocumentVersion,
    GroupMember,
    JoinRequest,
    Meeting,
    MemberSettings,
    Motion,
    MotionOption,
    Post,
    Thread,
    WorkingGroup,
)


class GroupMemberInline(admin.TabularInline):
    model = GroupMember
    extra = 0
    autocomplete_fields = ("user",)
    raw_id_fields = ("organization",)


@admin.register(WorkingGroup)
class WorkingGroupAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name_ja", "name_en", "industry", "visibility", "join_policy", "status")
    list_filter = ("status", "visibility", "industry")
    search_fields = ("name_ja", "name_en", "slug")
    readonly_fields = ("status", "closed_at")
    inlines = [GroupMemberInline]
    actions = ["activate", "close"]

    @admin.action(description=_("Activate the selected working groups"))
    def activate(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda g: services.group_activate(group_id=g.pk, actor=request.user),
            _("%(count)d working groups activated."),
        )

    @admin.action(description=_("Close the selected working groups"))
    def close(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            lambda g: services.group_close(group_id=g.pk, actor=request.user),
            _("%(count)d working groups closed."),
        )


@admin.register(JoinRequest)
class JoinRequestAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("group", "user", "status", "created_at")
    list_filter = ("status",)
    raw_id_fields = ("group", "user", "organization", "decided_by")


@admin.register(Meeting)
class MeetingAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "group", "starts_at", "cancelled")
    list_filter = ("group",)
    search_fields = ("title",)


class DocumentVersionInline(admin.TabularInline):
    model = DocumentVersion
    extra = 0
    can_delete = False
    readonly_fields = ("number", "original_name", "size", "content_type", "uploaded_by", "uploaded_at")
    exclude = ("file",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Document)
class DocumentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "group", "current_version", "updated_at")
    list_filter = ("group",)
    search_fields = ("title",)
    readonly_fields = ("current_version",)
    inlines = [DocumentVersionInline]


@admin.register(Thread)
class ThreadAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "group", "post_count", "is_locked", "last_post_at")
    list_filter = ("group", "is_locked")
    search_fields = ("title",)


@admin.register(Post)
class PostAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("thread", "author", "created_at", "is_hidden")
    list_filter = ("is_hidden",)
    raw_id_fields = ("thread", "author", "hidden_by")


class MotionOptionInline(admin.TabularInline):
    model = MotionOption
    extra = 0


@admin.register(Motion)
class MotionAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Ballots are not shown here: a secret ballot stays secret in the admin too."""

    list_display = ("title", "group", "scope", "is_secret", "opens_at", "closes_at")
    list_filter = ("group", "scope", "is_secret")
    inlines = [MotionOptionInline]


@admin.register(MemberSettings)
class MemberSettingsAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "notify", "last_digest_at")
    list_filter = ("notify",)
    exclude = ("feed_token",)
    raw_id_fields = ("user",)
