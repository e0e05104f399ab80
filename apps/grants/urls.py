from django.urls import path

from apps.grants import views

app_name = "grants"
urlpatterns = [
    # Public
    path("programs/", views.program_list, name="program-list"),
    path("programs/<slug:slug>/", views.program_detail, name="program-detail"),
    path("programs/<slug:slug>/calls/<int:call_id>/", views.call_detail, name="call-detail"),
    path("programs/<slug:slug>/calls/<int:call_id>/apply/", views.application_new, name="application-new"),
    # Applicants
    path("grants/applications/", views.my_applications, name="my-applications"),
    path("grants/applications/<int:application_id>/", views.application_detail, name="application-detail"),
    path("grants/applications/<int:application_id>/edit/", views.application_edit, name="application-edit"),
    path(
        "grants/applications/<int:application_id>/submit/",
        views.application_submit,
        name="application-submit",
    ),
    path(
        "grants/applications/<int:application_id>/withdraw/",
        views.application_withdraw,
        name="application-withdraw",
    ),
    path(
        "grants/applications/<int:application_id>/attachments/",
        views.attachment_upload,
        name="attachment-upload",
    ),
    path("grants/attachments/<int:attachment_id>/", views.attachment_download, name="attachment-download"),
    path("grants/attachments/<int:attachment_id>/delete/", views.attachment_delete, name="attachment-delete"),
    path("grants/reports/<int:report_id>/", views.report_detail, name="report-detail"),
    # Reviewers
    path("reviews/", views.review_list, name="review-list"),
    path("reviews/<int:assignment_id>/", views.review_detail, name="review-detail"),
    path("reviews/<int:assignment_id>/conflict/", views.review_conflict, name="review-conflict"),
    # Secretariat
    path("secretariat/programs/", views.staff_programs, name="staff-programs"),
    path("secretariat/calls/<int:call_id>/", views.staff_call, name="staff-call"),
    path("secretariat/calls/<int:call_id>/reviewers/", views.staff_reviewer_add, name="staff-reviewer-add"),
    path("secretariat/calls/<int:call_id>/auto-assign/", views.staff_auto_assign, name="staff-auto-assign"),
    path(
        "secretariat/call-reviewers/<int:reviewer_id>/remove/",
        views.staff_reviewer_remove,
        name="staff-reviewer-remove",
    ),
    path(
        "secretariat/grant-applications/<int:application_id>/",
        views.staff_application,
        name="staff-application",
    ),
    path(
        "secretariat/grant-applications/<int:application_id>/assign/", views.staff_assign, name="staff-assign"
    ),
    path(
        "secretariat/grant-applications/<int:application_id>/assignments/<int:assignment_id>/release/",
        views.staff_assignment_release,
        name="staff-assignment-release",
    ),
    path(
        "secretariat/grant-applications/<int:application_id>/decide/", views.staff_decide, name="staff-decide"
    ),
    path("secretariat/awards/<int:award_id>/revoke/", views.staff_award_revoke, name="staff-award-revoke"),
    path("secretariat/awards/<int:award_id>/mentor/", views.staff_award_mentor, name="staff-award-mentor"),
    path("secretariat/grant-reports/", views.staff_reports, name="staff-reports"),
]
