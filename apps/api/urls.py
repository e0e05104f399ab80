from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView

from apps.api import views, web

app_name = "api"


class IdConverter:
    """A database id: at most 18 digits, so that no id in a URL overflows a bigint (a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "api_id")


class RestConverter:
    """The rest of a path, newlines included."""

    regex = r"[\s\S]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(RestConverter, "api_rest")

v1 = "api/v1/"
org = v1 + "organizations/<slug:slug>/"

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", web.SwaggerDocs.as_view(url_name="api:schema"), name="docs"),
    path(v1 + "organizations/", views.OrganizationList.as_view(), name="organization-list"),
    path(org, views.OrganizationDetail.as_view(), name="organization-detail"),
    path(org + "requests/", views.RequestListCreate.as_view(), name="request-list"),
    path(org + "requests/<api_id:request_id>/", views.RequestDetail.as_view(), name="request-detail"),
    path(org + "results/<api_id:round_id>/", views.ResultDetail.as_view(), name="result-detail"),
    path(org + "grants/", views.GrantList.as_view(), name="grant-list"),
    path(org + "grants/<str:grant_id>/", views.GrantDetail.as_view(), name="grant-detail"),
    path(org + "usage/", views.UsageList.as_view(), name="usage-list"),
    path(org + "usage/summary/", views.UsageSummary.as_view(), name="usage-summary"),
    path(org + "statement/", views.Statement.as_view(), name="statement"),
    path(v1 + "rounds/", views.RoundList.as_view(), name="round-list"),
    path(v1 + "rounds/<api_id:round_id>/", views.RoundDetail.as_view(), name="round-detail"),
    # The profile page's token section (create / revoke).
    path("accounts/tokens/", web.token_list, name="token-list"),
    path("accounts/tokens/new/", web.token_create, name="token-create"),
    path("accounts/tokens/<api_id:token_id>/revoke/", web.token_revoke, name="token-revoke"),
    # Anything else under /api/ is a JSON 404, not the site's HTML page, whatever the rest holds
    # (an encoded newline, %0A, too: "." would not match it).
    path("api/<api_rest:rest>", web.api_not_found, name="not-found"),
]
