from django.urls import path

from apps.providers import api, views

app_name = "providers"
urlpatterns = [
    path("api/providers/<slug:slug>/usage", api.usage_push, name="api-usage-push"),
    # Secretariat
    path("secretariat/providers/", views.provider_list, name="provider-list"),
    path("secretariat/providers/<slug:slug>/", views.provider_detail, name="provider-detail"),
    path("secretariat/providers/<slug:slug>/reconcile/", views.provider_reconcile, name="provider-reconcile"),
    path("secretariat/grants/", views.grant_list, name="grant-list"),
    path("secretariat/grants/new/", views.grant_create, name="grant-create"),
    path("secretariat/grants/new/organizations/", views.grant_org_search, name="grant-org-search"),
    path("secretariat/grants/<uuid:public_id>/", views.grant_detail, name="grant-detail"),
    path("secretariat/grants/<uuid:public_id>/resend/", views.grant_resend, name="grant-resend"),
    path("secretariat/grants/<uuid:public_id>/revoke/", views.grant_revoke, name="grant-revoke"),
    path("secretariat/drifts/", views.drift_list, name="drift-list"),
    path("secretariat/drifts/bulk/", views.drift_bulk, name="drift-bulk"),
    path("secretariat/drifts/<int:drift_id>/resend/", views.drift_resend, name="drift-resend"),
    path("secretariat/drifts/<int:drift_id>/accept/", views.drift_accept, name="drift-accept"),
    # Members
    path("orgs/<slug:slug>/grants/", views.org_grants, name="org-grants"),
    # Provider operators
    path("provider/<slug:slug>/", views.provider_console, name="provider-console"),
]
