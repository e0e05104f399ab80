"""Pages of the working groups run a fixed number of queries, however much data they show.

Each test measures a page with a small data set, grows the data, and asserts the same count.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.workinggroups import services
from tests.workinggroups.factories import (
    GroupMemberFactory,
    MeetingFactory,
    MotionFactory,
    PostFactory,
    ThreadFactory,
    WorkingGroupFactory,
)

pytestmark = pytest.mark.django_db

QUERY_BUDGET = 30


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


def _grow(group, n, author):
    for _ in range(n):
        seat = GroupMemberFactory(group=group)
        MeetingFactory(group=group)
        thread = ThreadFactory(group=group, author=seat.user)
        PostFactory(thread=thread, author=seat.user)
        PostFactory(thread=thread, author=author)
        MotionFactory(group=group)
        services.document_upload(
            group_id=group.pk, actor=seat.user, title="資料", upload=SimpleUploadedFile("a.txt", b"hello")
        )


@pytest.mark.parametrize(
    "page",
    ["group-detail", "members", "meetings", "documents", "threads", "motions", "thread-detail", "dashboard"],
)
def test_page_query_count_does_not_grow(client, page):
    group = WorkingGroupFactory(visibility="members_only")
    chair = GroupMemberFactory(group=group, role="chair").user
    client.force_login(chair)
    thread = ThreadFactory(group=group, author=chair)

    def url():
        if page == "thread-detail":
            return thread.get_absolute_url()
        if page == "dashboard":
            return reverse("dashboard")
        return reverse(f"workinggroups:{page}", args=[group.slug])

    def grow_thread(n):
        for _ in range(n):
            PostFactory(thread=thread, author=GroupMemberFactory(group=group).user)

    _grow(group, 3, chair)
    grow_thread(3)
    for _ in range(3):
        GroupMemberFactory(role="member", user=chair)  # other groups of the chair (dashboard)
    small = _count(client, url())
    assert small <= QUERY_BUDGET
    _grow(group, 15, chair)
    grow_thread(15)
    for _ in range(10):
        GroupMemberFactory(role="member", user=chair)
    assert _count(client, url()) == small


def test_directory_query_count_does_not_grow(client):
    for _ in range(3):
        GroupMemberFactory(group=WorkingGroupFactory(visibility="public"))
    url = reverse("workinggroups:directory")
    small = _count(client, url)
    for _ in range(40):
        GroupMemberFactory(group=WorkingGroupFactory(visibility="public"))
    assert _count(client, url) == small
