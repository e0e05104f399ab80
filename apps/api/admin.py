from django.contrib import admin

from apps.api.models import PersonalAccessToken


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(admin.ModelAdmin):
    """Read-only: the secretariat sees who has which tokens (never a secret); members create and
    revoke them on their profile page, where it is audited."""

    list_display = [
        "name",
        "user",
        "scope",
        "restricted",
        "token_hint",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["scope", "restricted"]
    search_fields = ["name", "user__email", "token_hint"]
    list_select_related = ["user"]
    exclude = ["token_hash"]
    readonly_fields = [
        "user",
        "name",
        "scope",
        "restricted",
        "organizations",
        "token_hint",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
