from django.urls import path

from apps.organizations import views

app_name = "organizations"
urlpatterns = [
    path("conditions/", views.terms_current, name="terms"),
    path("conditions/<str:version>/", views.terms_version, name="terms-version"),
    path("members/", views.directory, name="directory"),
    path("members/<slug:slug>/", views.organization_detail, name="org-detail"),
    path("orgs/<slug:slug>/manage/", views.organization_manage, name="org-manage"),
    path("orgs/<slug:slug>/profile/", views.organization_profile, name="org-profile"),
    path(
        "orgs/<slug:slug>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path("orgs/<slug:slug>/roles/<int:role_id>/remove/", views.role_remove, name="role-remove"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("apply/", views.application_new, name="application-new"),
    path("applications/<int:application_id>/", views.application_detail, name="application-detail"),
    path("applications/<int:application_id>/edit/", views.application_edit, name="application-edit"),
    path(
        "applications/<int:application_id>/withdraw/", views.application_withdraw, name="application-withdraw"
    ),
    path("secretariat/applications/", views.review_queue, name="review-queue"),
    path("secretariat/applications/<int:application_id>/", views.review_detail, name="review-detail"),
    path("secretariat/applications/<int:application_id>/start/", views.review_start, name="review-start"),
    path("secretariat/applications/<int:application_id>/decide/", views.review_decide, name="review-decide"),
]
