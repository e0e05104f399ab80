from django.urls import path

from apps.reports import views

app_name = "reports"
urlpatterns = [
    path("exports/", views.export_list, name="export-list"),
    path("exports/<slug:name>.<str:fmt>", views.export, name="export"),
    path("exports/jobs/<uuid:public_id>/", views.export_detail, name="export-detail"),
    path("exports/jobs/<uuid:public_id>/download/", views.export_download, name="export-download"),
    path("orgs/<slug:slug>/statement/", views.org_statement, name="org-statement"),
    path("secretariat/settlement/", views.settlement, name="settlement"),
    path("provider/<slug:slug>/settlement/", views.provider_settlement, name="provider-settlement"),
    path("transparency/", views.transparency_index, name="transparency"),
    path("transparency/rounds/<int:round_id>/", views.transparency_round, name="transparency-round"),
    path("transparency/fy/<int:year>/", views.transparency_year, name="transparency-year"),
    path("secretariat/usage/", views.usage_months, name="usage-months"),
    path("secretariat/usage/records/", views.usage_records, name="usage-records"),
    path("secretariat/audit/", views.audit_log, name="audit-log"),
    path("secretariat/audit/verify/", views.audit_verify, name="audit-verify"),
    path("orgs/<slug:slug>/usage/", views.org_usage, name="org-usage"),
]
