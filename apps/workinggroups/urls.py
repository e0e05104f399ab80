from django.urls import path

from apps.workinggroups import views

app_name = "workinggroups"
urlpatterns = [
    path("groups/", views.directory, name="directory"),
    path("groups/settings/", views.my_settings, name="settings"),
    path("groups/feeds/<str:token>/my.ics", views.my_feed, name="my-feed"),
    path("groups/feeds/<str:token>/<slug:slug>.ics", views.group_feed, name="group-feed"),
    path("groups/<slug:slug>/", views.group_detail, name="group-detail"),
    path("groups/<slug:slug>/calendar.ics", views.group_feed_public, name="group-feed-public"),
    path("groups/<slug:slug>/edit/", views.group_edit, name="group-edit"),
    path("groups/<slug:slug>/join/", views.group_join, name="group-join"),
    path("groups/<slug:slug>/leave/", views.group_leave, name="group-leave"),
    path("groups/<slug:slug>/members/", views.members, name="members"),
    path("groups/<slug:slug>/members/<int:seat_id>/role/", views.member_role, name="member-role"),
    path("groups/<slug:slug>/members/<int:seat_id>/remove/", views.member_remove, name="member-remove"),
    path(
        "groups/<slug:slug>/requests/<int:request_id>/decide/",
        views.join_request_decide,
        name="join-request-decide",
    ),
    path("groups/<slug:slug>/meetings/", views.meetings, name="meetings"),
    path("groups/<slug:slug>/meetings/<int:meeting_id>/", views.meeting_detail, name="meeting-detail"),
    path("groups/<slug:slug>/meetings/<int:meeting_id>/edit/", views.meeting_edit, name="meeting-edit"),
    path(
        "groups/<slug:slug>/meetings/<int:meeting_id>/attendance/",
        views.meeting_attendance,
        name="meeting-attendance",
    ),
    path("groups/<slug:slug>/documents/", views.documents, name="documents"),
    path("groups/<slug:slug>/documents/<int:document_id>/", views.document_detail, name="document-detail"),
    path(
        "groups/<slug:slug>/documents/<int:document_id>/v<int:number>/download/",
        views.document_download,
        name="document-download",
    ),
    path("groups/<slug:slug>/discussions/", views.threads, name="threads"),
    path("groups/<slug:slug>/discussions/<int:thread_id>/", views.thread_detail, name="thread-detail"),
    path("groups/<slug:slug>/discussions/<int:thread_id>/lock/", views.thread_lock, name="thread-lock"),
    path("groups/<slug:slug>/posts/<int:post_id>/edit/", views.post_edit, name="post-edit"),
    path("groups/<slug:slug>/posts/<int:post_id>/hide/", views.post_hide, name="post-hide"),
    path("groups/<slug:slug>/votes/", views.motions, name="motions"),
    path("groups/<slug:slug>/votes/<int:motion_id>/", views.motion_detail, name="motion-detail"),
    path("groups/<slug:slug>/votes/<int:motion_id>/ballot/", views.ballot_cast, name="ballot-cast"),
    path("secretariat/groups/", views.console, name="console"),
    path("secretariat/groups/<slug:slug>/", views.console_group, name="console-group"),
]
