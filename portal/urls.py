from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path

from apps.accounts.views import set_language
from apps.core import views as core_views
from apps.organizations import views as org_views

# The admin logs in through allauth, so rate limits and MFA apply there too.
admin.site.login = login_required(admin.site.login)
admin.site.site_header = "GPU Alliance Portal"

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("metrics", core_views.metrics, name="metrics"),
    path("dashboard/", org_views.dashboard, name="dashboard"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("accounts/", include("allauth.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("admin/", admin.site.urls),
    path("", include("apps.providers.urls")),
    path("", include("apps.allocations.urls")),
    path("", include("apps.organizations.urls")),
    path("", include("apps.workinggroups.urls")),
    path("", include("apps.grants.urls")),
    path("", include("apps.reports.urls")),
    path("", include("apps.api.urls")),
]
