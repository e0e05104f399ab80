from django.contrib import admin

from apps.reports.models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "export", "format", "status", "rows_written", "expires_at")
    list_filter = ("status", "format", "export")
    search_fields = ("user__email", "export")
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
