"""Pages, htmx partials, downloads and feeds: visibility rules, 404 for outsiders, htmx posting."""

import datetime
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from apps.workinggroups import services
from apps.workinggroups.models import Ballot, GroupMember, Post
from tests.factories import UserFactory
from tests.workinggroups.factories import (
    GroupMemberFactory,
    MeetingFactory,
    MotionFactory,
    PostFactory,
    ThreadFactory,
    WorkingGroupFactory,
    member_user,
)

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def _content(group):
    """One of everything in ``group``; returns the URLs that show it."""
    author = GroupMemberFactory(group=group).user
    meeting = MeetingFactory(group=group)
    thread = ThreadFactory(group=group, author=author)
    PostFactory(thread=thread, author=author)
    motion = MotionFactory(group=group)
    document = services.document_upload(
        group_id=group.pk, actor=author, title="議事資料", upload=SimpleUploadedFile("a.pdf", PDF)
    )
    slug = group.slug
    return [
        reverse("workinggroups:group-detail", args=[slug]),
        reverse("workinggroups:members", args=[slug]),
        reverse("workinggroups:meetings", args=[slug]),
        reverse("workinggroups:meeting-detail", args=[slug, meeting.pk]),
        reverse("workinggroups:documents", args=[slug]),
        reverse("workinggroups:document-detail", args=[slug, document.pk]),
        reverse("workinggroups:document-download", args=[slug, document.pk, 1]),
        reverse("workinggroups:threads", args=[slug]),
        reverse("workinggroups:thread-detail", args=[slug, thread.pk]),
        reverse("workinggroups:motions", args=[slug]),
        reverse("workinggroups:motion-detail", args=[slug, motion.pk]),
    ]


@pytest.mark.parametrize("visibility", ["members_only", "private"])
def test_outsider_gets_404_everywhere_including_files(client, visibility):
    group = WorkingGroupFactory(visibility=visibility)
    urls = _content(group)
    for who in (None, UserFactory()):
        client.logout()
        if who:
            client.force_login(who)
        for url in urls:
            assert client.get(url).status_code == 404, (who, url)
            assert client.get(url, headers={"HX-Request": "true"}).status_code == 404, url
    assert client.get(reverse("workinggroups:group-feed-public", args=[group.slug])).status_code == 404


def test_members_only_is_readable_by_alliance_members_private_only_by_group_members(client):
    members_only = WorkingGroupFactory(visibility="members_only")
    private = WorkingGroupFactory(visibility="private")
    mo_urls, pr_urls = _content(members_only), _content(private)
    client.force_login(member_user())
    assert all(client.get(u).status_code == 200 for u in mo_urls)
    assert all(client.get(u).status_code == 404 for u in pr_urls)
    seat = GroupMemberFactory(group=private)
    client.force_login(seat.user)
    assert all(client.get(u).status_code == 200 for u in pr_urls)


def test_public_group_is_readable_by_anybody(client):
    group = WorkingGroupFactory(visibility="public")
    for url in _content(group):
        assert client.get(url).status_code == 200, url


def test_staff_see_private_groups(staff_client):
    group = WorkingGroupFactory(visibility="private")
    for url in _content(group):
        assert staff_client.get(url).status_code == 200, url


def test_directory_lists_only_visible_groups_and_filters(client):
    public = WorkingGroupFactory(visibility="public", name_en="Finance AI", industry="finance")
    members_only = WorkingGroupFactory(visibility="members_only", name_en="Medical AI")
    private = WorkingGroupFactory(visibility="private", name_en="Secret board")
    url = reverse("workinggroups:directory")
    page = client.get(url).content.decode()
    assert public.name_ja in page and members_only.name_ja not in page and private.name_ja not in page
    client.force_login(member_user())
    page = client.get(url).content.decode()
    assert public.name_ja in page and members_only.name_ja in page and private.name_ja not in page
    response = client.get(url, {"industry": "finance"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body
    assert public.name_ja in body and members_only.name_ja not in body
    assert response["Vary"].count("HX-Request") == 1


def test_group_page_is_in_japanese_by_default_and_english_on_request(client):
    group = WorkingGroupFactory(visibility="public")
    body = client.get(group.get_absolute_url()).content.decode()
    assert '<html lang="ja">' in body
    assert group.name_ja in body and group.charter_ja in body and group.charter_en not in body
    client.cookies["django_language"] = "en"
    body = client.get(group.get_absolute_url()).content.decode()
    assert '<html lang="en">' in body
    assert group.name_en in body and "Charter" in body and group.charter_en in body


# --- Join flow over HTTP ------------------------------------------------------------------------


def test_member_joins_an_open_group_and_leaves(client, alliance_member):
    group = WorkingGroupFactory(join_policy="open")
    client.force_login(alliance_member)
    response = client.post(reverse("workinggroups:group-join", args=[group.slug]))
    assert response.status_code == 302
    assert GroupMember.objects.filter(group=group, user=alliance_member).exists()
    client.post(reverse("workinggroups:group-leave", args=[group.slug]))
    assert not GroupMember.objects.filter(group=group, user=alliance_member).exists()


def test_join_request_then_chair_approves_on_the_members_page(client, group, chair, alliance_member):
    group.join_policy = "request"
    group.save()
    client.force_login(alliance_member)
    client.post(reverse("workinggroups:group-join", args=[group.slug]), {"message": "よろしく"})
    join_request = group.join_requests.get()
    # A plain member cannot decide: the URL does not exist for them.
    client.force_login(GroupMemberFactory(group=group).user)
    url = reverse("workinggroups:join-request-decide", args=[group.slug, join_request.pk])
    assert client.post(url, {"decision": "approve"}).status_code == 404
    client.force_login(chair)
    page = client.get(reverse("workinggroups:members", args=[group.slug])).content.decode()
    assert "よろしく" in page
    client.post(url, {"decision": "approve"})
    assert GroupMember.objects.filter(group=group, user=alliance_member).exists()


def test_outsider_cannot_join_members_only_group(client, outsider):
    group = WorkingGroupFactory(join_policy="open")
    client.force_login(outsider)
    assert client.post(reverse("workinggroups:group-join", args=[group.slug])).status_code == 404
    assert not GroupMember.objects.filter(user=outsider).exists()


# --- Discussions with htmx ----------------------------------------------------------------------


def test_reply_posted_with_htmx_returns_the_new_post_and_a_reset_form(client, group, member):
    thread = ThreadFactory(group=group)
    client.force_login(member)
    response = client.post(
        thread.get_absolute_url(), {"body": "**重要** な提案"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body
    assert 'id="reply-box"' in body
    assert 'hx-swap-oob="beforeend:#posts-list"' in body
    assert "<strong>重要</strong>" in body
    post = Post.objects.get()
    assert f'id="post-{post.pk}"' in body
    assert "重要" not in body.split('id="reply-box"')[1].split("</textarea>")[0]


def test_empty_htmx_reply_gets_400_with_the_form_and_nothing_saved(client, group, member):
    thread = ThreadFactory(group=group)
    client.force_login(member)
    response = client.post(thread.get_absolute_url(), {"body": " "}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert 'id="reply-box"' in response.content.decode()
    assert not Post.objects.exists()


def test_non_member_reply_is_404_even_in_a_public_group(client):
    group = WorkingGroupFactory(visibility="public")
    thread = ThreadFactory(group=group)
    client.force_login(member_user())
    response = client.post(thread.get_absolute_url(), {"body": "hi"}, headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert not Post.objects.exists()


def test_posts_paginate_with_an_htmx_partial(client, group, member):
    thread = ThreadFactory(group=group)
    for i in range(25):
        PostFactory(thread=thread, body=f"投稿番号{i:02d}")
    client.force_login(member)
    first = client.get(thread.get_absolute_url()).content.decode()
    assert "投稿番号00" in first and "投稿番号24" not in first
    response = client.get(thread.get_absolute_url(), {"page": 2}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body
    assert "投稿番号24" in body and "投稿番号00" not in body


def test_hidden_post_shows_a_note_to_members_and_the_body_to_the_chair(client, group, chair, member):
    post = PostFactory(thread=ThreadFactory(group=group), author=member, body="問題のある投稿")
    client.force_login(chair)
    response = client.post(
        reverse("workinggroups:post-hide", args=[group.slug, post.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "問題のある投稿" in response.content.decode()
    client.force_login(member)
    page = client.get(post.thread.get_absolute_url()).content.decode()
    assert "問題のある投稿" not in page
    assert "hidden by the chair" in page or "主査により非表示" in page


def test_member_cannot_hide_or_lock(client, group, member):
    post = PostFactory(thread=ThreadFactory(group=group))
    client.force_login(member)
    assert client.post(reverse("workinggroups:post-hide", args=[group.slug, post.pk])).status_code == 404
    url = reverse("workinggroups:thread-lock", args=[group.slug, post.thread.pk])
    assert client.post(url).status_code == 404


def test_author_edits_with_htmx(client, group, member):
    thread = services.thread_create(group_id=group.pk, actor=member, title="t", body="before")
    post = thread.posts.get()
    client.force_login(member)
    url = reverse("workinggroups:post-edit", args=[group.slug, post.pk])
    form = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<textarea" in form and "<html" not in form
    response = client.post(url, {"body": "after"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "after" in response.content.decode()
    other = GroupMemberFactory(group=group).user
    client.force_login(other)
    assert client.post(url, {"body": "hijack"}).status_code == 404


# --- Markdown sanitising ------------------------------------------------------------------------

ATTACKS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src='https://evil.example'></iframe>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<svg onload="alert(1)"></svg>',
]


def test_markdown_is_sanitised_in_posts_minutes_and_motions(client, group, chair, member):
    payload = "\n\n".join(ATTACKS) + "\n\n[ok](https://example.jp)"
    thread = services.thread_create(group_id=group.pk, actor=member, title="x", body=payload)
    meeting = MeetingFactory(group=group, agenda=payload, minutes=payload)
    motion = MotionFactory(group=group, description=payload)
    client.force_login(member)
    for url in (thread.get_absolute_url(), meeting.get_absolute_url(), motion.get_absolute_url()):
        body = client.get(url).content.decode().lower()
        main = body.split('<main id="main"')[1]
        assert "<script>alert" not in main
        assert "onerror" not in main and "onload=" not in main
        assert "javascript:" not in main
        assert "<iframe" not in main and "<svg" not in main
        assert 'href="https://example.jp" rel="nofollow noopener"' in main


# --- Documents ----------------------------------------------------------------------------------


def test_upload_new_version_keeps_the_old_and_downloads_each(client, group, member):
    client.force_login(member)
    response = client.post(
        reverse("workinggroups:documents", args=[group.slug]),
        {"title": "標準化案", "file": SimpleUploadedFile("案.pdf", PDF + b"v1")},
    )
    assert response.status_code == 302
    document = group.documents.get()
    client.post(
        document.get_absolute_url(),
        {"note": "第2版", "file": SimpleUploadedFile("案_v2.pdf", PDF + b"v2")},
    )
    versions = list(document.versions.order_by("number"))
    assert [v.number for v in versions] == [1, 2]
    assert "案" not in versions[0].file.name  # the stored path is random, not the original name
    for number, tail in ((1, b"v1"), (2, b"v2")):
        response = client.get(
            reverse("workinggroups:document-download", args=[group.slug, document.pk, number])
        )
        assert response.status_code == 200
        assert b"".join(response.streaming_content).endswith(tail)
        assert response["Content-Disposition"].startswith("attachment")
        assert "filename*=utf-8''" in response["Content-Disposition"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("evil.exe", b"MZ\x90\x00"),
        ("fake.pdf", b"<html><script>alert(1)</script></html>"),
        ("fake.png", PDF),
        ("fake.docx", b"PK\x03\x04 not really a zip"),
        ("notes.txt", b"\x00\x01\x02binary"),
        ("empty.pdf", b""),
    ],
)
def test_uploads_outside_the_allow_list_get_a_form_error_and_leave_nothing(
    client, group, member, settings, name, content
):
    client.force_login(member)
    response = client.post(
        reverse("workinggroups:documents", args=[group.slug]),
        {"title": "x", "file": SimpleUploadedFile(name, content)},
    )
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert not group.documents.exists()
    media = settings.MEDIA_ROOT
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_too_large_upload_is_refused(client, group, member, monkeypatch):
    from apps.workinggroups import forms, uploads

    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 10)
    monkeypatch.setattr(forms, "MAX_UPLOAD_BYTES", 10)
    client.force_login(member)
    response = client.post(
        reverse("workinggroups:documents", args=[group.slug]),
        {"title": "x", "file": SimpleUploadedFile("big.pdf", PDF)},
    )
    assert response.status_code == 400
    assert not group.documents.exists()


def test_real_office_file_is_accepted(client, group, member):
    import io

    from openpyxl import Workbook

    buffer = io.BytesIO()
    Workbook().save(buffer)
    client.force_login(member)
    client.post(
        reverse("workinggroups:documents", args=[group.slug]),
        {"title": "集計", "file": SimpleUploadedFile("集計.xlsx", buffer.getvalue())},
    )
    assert group.documents.get().versions.get().content_type.endswith("spreadsheetml.sheet")


def test_alliance_member_reads_but_cannot_upload_to_a_members_only_group(client, group, alliance_member):
    client.force_login(alliance_member)
    url = reverse("workinggroups:documents", args=[group.slug])
    assert client.get(url).status_code == 200
    assert client.post(url, {"title": "x", "file": SimpleUploadedFile("a.pdf", PDF)}).status_code == 404


# --- Calendar feeds -----------------------------------------------------------------------------


def _parse(response):
    assert response["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.content)


def test_public_group_feed_parses_with_tokyo_times_and_no_meeting_link(client):
    group = WorkingGroupFactory(visibility="public")
    start = timezone.make_aware(datetime.datetime(2026, 12, 3, 14, 0))  # 14:00 in Tokyo
    MeetingFactory(group=group, title="第3回", starts_at=start, ends_at=start + datetime.timedelta(hours=2))
    calendar = _parse(client.get(reverse("workinggroups:group-feed-public", args=[group.slug])))
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1
    dtstart = events[0].decoded("dtstart")
    assert dtstart == start and str(dtstart.tzinfo) == "Asia/Tokyo"
    assert dtstart.hour == 14
    assert "第3回" in str(events[0]["summary"])
    assert list(calendar.walk("VTIMEZONE"))
    assert (
        b"meet.example.jp"
        not in client.get(reverse("workinggroups:group-feed-public", args=[group.slug])).content
    )


def test_private_feed_works_by_token_and_regenerating_kills_the_old_link(client, group, member):
    MeetingFactory(group=group)
    token = services.member_settings_get(user=member).feed_token
    url = reverse("workinggroups:group-feed", args=[token, group.slug])
    calendar = _parse(client.get(url))  # no session: calendar apps fetch anonymously
    event = next(iter(calendar.walk("VEVENT")))
    assert "meet.example.jp" in str(event["description"])
    my = _parse(client.get(reverse("workinggroups:my-feed", args=[token])))
    assert len(list(my.walk("VEVENT"))) == 1
    services.feed_token_regenerate(user=member)
    assert client.get(url).status_code == 404
    assert client.get(reverse("workinggroups:my-feed", args=[token])).status_code == 404


def test_feed_token_of_an_outsider_cannot_read_a_private_group(client):
    group = WorkingGroupFactory(visibility="private")
    MeetingFactory(group=group)
    token = services.member_settings_get(user=member_user()).feed_token
    assert client.get(reverse("workinggroups:group-feed", args=[token, group.slug])).status_code == 404
    assert (
        client.get(reverse("workinggroups:group-feed", args=["not-a-token", group.slug])).status_code == 404
    )
    assert client.get(reverse("workinggroups:group-feed-public", args=[group.slug])).status_code == 404


# --- Votes over HTTP ----------------------------------------------------------------------------


def test_vote_with_htmx_and_results_only_after_closing(client, group, member):
    motion = MotionFactory(group=group, is_secret=True)
    client.force_login(member)
    page = client.get(motion.get_absolute_url()).content.decode()
    assert 'id="ballot-form"' in page
    option = motion.options.get(label="反対")
    url = reverse("workinggroups:ballot-cast", args=[group.slug, motion.pk])
    response = client.post(url, {"option": option.pk}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert Ballot.objects.filter(voter=member).exists()
    # The turnout outside the swapped box is updated out of band.
    oob = response.content.decode().split('id="ballot-count"')[1]
    assert oob.startswith(' hx-swap-oob="true">') and "有権者" in oob and "のうち 1" in oob
    again = client.post(url, {"option": option.pk}, headers={"HX-Request": "true"})
    assert again.status_code == 400
    assert Ballot.objects.count() == 1
    page = client.get(motion.get_absolute_url()).content.decode()
    assert "反対</td>" not in page  # no results while open
    type(motion).objects.filter(pk=motion.pk).update(
        opens_at=timezone.now() - datetime.timedelta(days=2),
        closes_at=timezone.now() - datetime.timedelta(days=1),
    )
    page = client.get(motion.get_absolute_url()).content.decode()
    assert "反対</td>" in page
    assert member.get_full_name() not in page.split("<main")[1].split("wg-tabs")[1]  # secret: no voter list


def test_open_ballot_lists_voters_after_closing(client, group, member):
    motion = MotionFactory(group=group)
    services.ballot_cast(motion_id=motion.pk, voter=member, option_id=motion.options.first().pk)
    type(motion).objects.filter(pk=motion.pk).update(closes_at=timezone.now() - datetime.timedelta(seconds=1))
    client.force_login(member)
    page = client.get(motion.get_absolute_url()).content.decode()
    assert "Ballots (open ballot)" in page or "投票内訳" in page


def test_quorum_not_reached_is_shown(client, group, member):
    GroupMemberFactory(group=group)
    motion = MotionFactory(group=group, quorum_value=2)
    services.ballot_cast(motion_id=motion.pk, voter=member, option_id=motion.options.first().pk)
    type(motion).objects.filter(pk=motion.pk).update(closes_at=timezone.now() - datetime.timedelta(seconds=1))
    client.force_login(member)
    page = client.get(motion.get_absolute_url()).content.decode()
    assert "Quorum not reached" in page or "定足数に達していません" in page


def test_ineligible_vote_post_leaves_nothing(client, group, alliance_member):
    motion = MotionFactory(group=group)
    client.force_login(alliance_member)
    url = reverse("workinggroups:ballot-cast", args=[group.slug, motion.pk])
    response = client.post(url, {"option": motion.options.first().pk}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    assert not Ballot.objects.exists()
    assert client.post(url, {"option": "abc"}, headers={"HX-Request": "true"}).status_code == 400


# --- Secretariat console ------------------------------------------------------------------------


def test_console_is_404_for_non_staff(client, chair):
    client.force_login(chair)
    assert client.get(reverse("workinggroups:console")).status_code == 404


def test_staff_create_activate_and_close_a_group(staff_client):
    chair = member_user()
    response = staff_client.post(
        reverse("workinggroups:console"),
        {
            "name_ja": "製造業AI分科会",
            "name_en": "Manufacturing AI",
            "industry": "manufacturing",
            "visibility": "public",
            "join_policy": "open",
            "chair_email": chair.email,
        },
    )
    assert response.status_code == 302
    group = GroupMember.objects.get(user=chair, role="chair").group
    url = reverse("workinggroups:console-group", args=[group.slug])
    staff_client.post(url, {"action": "activate"})
    group.refresh_from_db()
    assert group.status == "active"
    staff_client.post(url, {"action": "close", "reason": "完了"})
    group.refresh_from_db()
    assert group.status == "closed"


def test_console_create_with_bad_input_gets_400(staff_client):
    response = staff_client.post(reverse("workinggroups:console"), {"name_ja": "", "chair_email": "x"})
    assert response.status_code == 400


def test_dashboard_shows_my_groups(client, group, member):
    client.force_login(member)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="my-working-groups"' in page and group.name_ja in page


def test_settings_page_saves_notification_choice(client, member):
    client.force_login(member)
    url = reverse("workinggroups:settings")
    assert client.post(url, {"notify": "daily"}).status_code == 302
    assert member.wg_settings.notify == "daily"
    assert client.post(url, {"notify": "weird"}).status_code == 400


def test_chair_edits_the_group_page_and_a_member_gets_404(client, group, chair, member):
    url = reverse("workinggroups:group-edit", args=[group.slug])
    client.force_login(member)
    assert client.get(url).status_code == 404
    client.force_login(chair)
    data = {
        "name_ja": group.name_ja,
        "name_en": group.name_en,
        "industry": "medical",
        "charter_ja": "新しい趣旨",
        "charter_en": "New charter",
        "visibility": "public",
        "join_policy": "request",
    }
    assert client.post(url, data).status_code == 302
    group.refresh_from_db()
    assert group.visibility == "public" and group.charter_ja == "新しい趣旨"
    assert client.post(url, {**data, "visibility": "everyone"}).status_code == 400


def test_meeting_form_errors_get_400_and_nothing_saved(client, group, chair):
    client.force_login(chair)
    url = reverse("workinggroups:meetings", args=[group.slug])
    response = client.post(
        url, {"title": "x", "starts_at": "2026-12-01T10:00", "ends_at": "2026-12-01T09:00"}
    )
    assert response.status_code == 400
    assert not group.meetings.exists()
    response = client.post(
        url,
        {
            "title": "第1回",
            "starts_at": "2026-12-01T10:00",
            "ends_at": "2026-12-01T12:00",
            "agenda": "1. 開会",
        },
    )
    assert response.status_code == 302
    meeting = group.meetings.get()
    # The form's times are Japan time.
    assert timezone.localtime(meeting.starts_at).hour == 10
    assert meeting.starts_at.astimezone(datetime.UTC).hour == 1


def test_member_cannot_schedule_meetings(client, group, member):
    client.force_login(member)
    url = reverse("workinggroups:meetings", args=[group.slug])
    assert client.post(url, {"title": "x"}).status_code == 404


def test_thread_list_paginates_with_htmx(client, group, member):
    for i in range(25):
        ThreadFactory(group=group, title=f"スレッド{i:02d}")
    client.force_login(member)
    url = reverse("workinggroups:threads", args=[group.slug])
    response = client.get(url, {"page": 2}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body and "<table>" in body
    assert len(re.findall(r"スレッド\d\d", body)) == 5  # the 25 threads, 20 a page


def test_my_feed_has_only_my_groups(client, group, member):
    MeetingFactory(group=group, title="自分の会議")
    MeetingFactory(group=WorkingGroupFactory(visibility="public"), title="他の会議")
    token = services.member_settings_get(user=member).feed_token
    calendar = _parse(client.get(reverse("workinggroups:my-feed", args=[token])))
    summaries = [str(e["summary"]) for e in calendar.walk("VEVENT")]
    assert len(summaries) == 1 and "自分の会議" in summaries[0]


def test_bad_directory_filters_do_not_fail(client):
    response = client.get(reverse("workinggroups:directory"), {"industry": "<script>", "page": "x"})
    assert response.status_code == 200


def test_visitors_of_a_public_group_see_its_officers_not_all_members(client):
    group = WorkingGroupFactory(visibility="public")
    chair = GroupMemberFactory(group=group, role="chair").user
    plain = GroupMemberFactory(group=group).user
    url = reverse("workinggroups:members", args=[group.slug])
    page = client.get(url).content.decode()
    assert chair.get_full_name() in page and plain.get_full_name() not in page
    client.force_login(member_user())
    page = client.get(url).content.decode()
    assert plain.get_full_name() in page


def test_secretary_records_attendance_and_members_see_it(client, group, member):
    secretary = GroupMemberFactory(group=group, role="secretary").user
    meeting = MeetingFactory(group=group)
    url = reverse("workinggroups:meeting-attendance", args=[group.slug, meeting.pk])
    client.force_login(member)
    assert client.post(url, {"present": [member.pk]}).status_code == 404
    client.force_login(secretary)
    assert client.post(url, {"present": [member.pk, "junk"]}).status_code == 302
    assert dict(meeting.attendance.values_list("user_id", "present")) == {
        member.pk: True,
        secretary.pk: False,
    }
    client.force_login(member)
    page = client.get(meeting.get_absolute_url()).content.decode()
    assert "present" in page or "出席" in page
