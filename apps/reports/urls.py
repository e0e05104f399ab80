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
]
