"""Admin for grant programs. Programs and calls (with their rubric and form questions) are edited
here, audited; applications, reviews, awards and reports change through the services and the
portal's pages, so they are read-only here."""

from django.contrib import admin

from apps.core.admin import AuditedAdminMixin
from apps.grants.models import (
    Application,
    Assignment,
    Award,
    AwardLine,
    Call,
    Criterion,
    FormQuestion,
    Program,
    Report,
    Reviewer,
)


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Program)
class ProgramAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name_ja", "name_en", "kind", "allows_non_members", "max_gpu_hours", "is_published")
    list_filter = ("kind", "is_published")
    search_fields = ("name_ja", "name_en", "slug")
    prepopulated_fields = {"slug": ("name_en",)}


class CriterionInline(admin.TabularInline):
    model = Criterion
    extra = 1


class FormQuestionInline(admin.TabularInline):
    model = FormQuestion
    extra = 0


@admin.register(Call)
class CallAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("title_ja", "program", "opens_at", "closes_at", "reviews_per_application", "is_published")
    list_filter = ("program", "is_published")
    search_fields = ("title_ja", "title_en")
    list_select_related = ("program",)
    inlines = (CriterionInline, FormQuestionInline)


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("title", "call", "applicant", "status", "submitted_at")
    list_filter = ("status", "call__program")
    search_fields = ("title", "org_name_ja", "org_name_en", "organization__name_ja", "applicant__email")
    list_select_related = ("call", "applicant")


@admin.register(Reviewer)
class ReviewerAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "call")
    search_fields = ("user__email", "call__title_ja")
    list_select_related = ("user", "call")


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("application", "reviewer", "status", "submitted_at")
    list_filter = ("status",)
    search_fields = ("application__title", "reviewer__email")
    list_select_related = ("application", "reviewer")


class AwardLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AwardLine
    extra = 0


@admin.register(Award)
class AwardAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("application", "organization", "valid_from", "valid_until", "mentor", "status")
    list_filter = ("status",)
    search_fields = ("application__title", "organization__name_ja", "organization__name_en")
    list_select_related = ("application", "organization", "mentor")
    inlines = (AwardLineInline,)


@admin.register(Report)
class ReportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("award", "kind", "due_on", "submitted_at")
    list_filter = ("kind",)
    search_fields = ("award__application__title", "award__organization__name_ja")
    list_select_related = ("award__application", "award__organization")
