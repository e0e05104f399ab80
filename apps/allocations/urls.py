from django.urls import path

from apps.allocations import views

app_name = "allocations"
urlpatterns = [
    # Secretariat
    path("secretariat/rounds/", views.round_list, name="round-list"),
    path("secretariat/rounds/<int:round_id>/", views.round_detail, name="round-detail"),
    path("secretariat/rounds/<int:round_id>/results/", views.round_results, name="round-results"),
    *[
        path(
            f"secretariat/rounds/<int:round_id>/{action}/",
            views.round_action,
            {"action": action},
            name=f"round-{action}",
        )
        for action in ("close", "reopen", "compute", "publish")
    ],
    path("secretariat/round-results/<int:result_id>/adjust/", views.result_adjust, name="result-adjust"),
    # Members
    path("orgs/<slug:slug>/rounds/", views.org_rounds, name="org-rounds"),
    path("orgs/<slug:slug>/rounds/<int:round_id>/", views.org_round_detail, name="org-round-detail"),
    path(
        "orgs/<slug:slug>/rounds/<int:round_id>/requests/<str:gpu_class>/",
        views.org_request_save,
        name="org-request-save",
    ),
    path(
        "orgs/<slug:slug>/round-requests/<int:request_id>/withdraw/",
        views.org_request_withdraw,
        name="org-request-withdraw",
    ),
]
