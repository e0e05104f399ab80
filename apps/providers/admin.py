from django.contrib import admin

from apps.core.admin import AuditedAdminMixin
from apps.providers.models import Provider


@admin.register(Provider)
class ProviderAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name_ja", "name_en", "slug", "homepage", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name_ja", "name_en", "slug")
    prepopulated_fields = {"slug": ("name_en",)}
