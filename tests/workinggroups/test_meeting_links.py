"""A meeting's online link is members-only on every path: group page (also when the meeting has no
location), meetings list and its partial, meeting page, the public and the per-user iCalendar feeds,
the dashboard card. Seen by the group's members and staff; not by anonymous visitors of a public
group, other people of member organizations, outsiders or removed members."""

import pytest
from django.urls import reverse

from apps.workinggroups import services
from apps.workinggroups.models import GroupMember
from tests.factories import StaffFactory, UserFactory
from tests.workinggroups.factories import GroupMemberFactory, MeetingFactory, WorkingGroupFactory, member_user

pytestmark = pytest.mark.django_db
LINK = "https://meet.example.jp/wg-secret-7f3a9"


def _viewer(kind, group):
    if kind == "anonymous":
        return None
    if kind == "outsider":
        return UserFactory()
    if kind == "alliance member":
        return member_user()
    if kind == "removed member":
        chair = GroupMemberFactory(group=group, role="chair").user
        seat = GroupMemberFactory(group=group)
        services.member_remove(seat_id=seat.pk, actor=chair)
        return seat.user
    if kind == "member":
        return GroupMemberFactory(group=group).user
    if kind == "staff":
        return StaffFactory()
    raise AssertionError(kind)


def _login(client, user):
    if user is None:
        return
    if user.is_staff:
        from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

        TOTP.activate(user, generate_totp_secret())
    client.force_login(user)


def _pages(group, meeting):
    return [
        reverse("workinggroups:group-detail", args=[group.slug]),
        reverse("workinggroups:meetings", args=[group.slug]),
        meeting.get_absolute_url(),
    ]


CANNOT_SEE = {
    "public": ["anonymous", "outsider", "alliance member", "removed member"],
    "members_only": ["alliance member", "removed member"],
}


@pytest.mark.parametrize(("visibility", "kind"), [(v, k) for v, kinds in CANNOT_SEE.items() for k in kinds])
@pytest.mark.parametrize("location", ["", "東京都千代田区 会議室A"], ids=["online_only", "with_place"])
def test_people_outside_the_group_never_get_the_link(client, visibility, kind, location):
    group = WorkingGroupFactory(visibility=visibility)
    meeting = MeetingFactory(group=group, location=location, online_url=LINK)
    viewer = _viewer(kind, group)
    _login(client, viewer)
    for url in _pages(group, meeting):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            assert LINK.encode() not in response.content, (url, headers)
    # The group page still says the meeting is online (without the link) when it has no place.
    if not location:
        page = client.get(reverse("workinggroups:group-detail", args=[group.slug])).content.decode()
        assert meeting.title in page
    # Feeds: the token-less one of public groups, and the viewer's own token.
    if visibility == "public":
        public = client.get(reverse("workinggroups:group-feed-public", args=[group.slug]))
        assert public.status_code == 200 and LINK.encode() not in public.content
    if viewer is not None:
        token = services.member_settings_get(user=viewer).feed_token
        feed = client.get(reverse("workinggroups:group-feed", args=[token, group.slug]))
        assert feed.status_code == 200 and LINK.encode() not in feed.content
        mine = client.get(reverse("workinggroups:my-feed", args=[token]))
        assert mine.status_code == 200 and LINK.encode() not in mine.content


@pytest.mark.parametrize("visibility", ["public", "members_only", "private"])
@pytest.mark.parametrize("kind", ["member", "staff"])
def test_members_and_staff_get_the_link_everywhere(client, visibility, kind):
    group = WorkingGroupFactory(visibility=visibility)
    meeting = MeetingFactory(group=group, location="", online_url=LINK)
    viewer = _viewer(kind, group)
    _login(client, viewer)
    group_page, _meetings, meeting_page = _pages(group, meeting)
    assert LINK.encode() in client.get(group_page).content
    assert LINK.encode() in client.get(meeting_page).content
    token = services.member_settings_get(user=viewer).feed_token
    assert LINK.encode() in client.get(reverse("workinggroups:group-feed", args=[token, group.slug])).content
    if kind == "member":
        assert LINK.encode() in client.get(reverse("workinggroups:my-feed", args=[token])).content


def test_the_link_goes_away_with_the_seat(client):
    """Feeds are fetched by calendar apps long after the member left: the token feed re-checks."""
    group = WorkingGroupFactory(visibility="public")
    MeetingFactory(group=group, location="", online_url=LINK)
    seat = GroupMemberFactory(group=group)
    token = services.member_settings_get(user=seat.user).feed_token
    group_feed = reverse("workinggroups:group-feed", args=[token, group.slug])
    my_feed = reverse("workinggroups:my-feed", args=[token])
    assert LINK.encode() in client.get(group_feed).content
    assert LINK.encode() in client.get(my_feed).content
    GroupMember.objects.filter(pk=seat.pk).delete()
    assert LINK.encode() not in client.get(group_feed).content
    assert LINK.encode() not in client.get(my_feed).content


def test_the_dashboard_card_shows_no_link(client):
    group = WorkingGroupFactory(visibility="public")
    MeetingFactory(group=group, location="", online_url=LINK)
    member = GroupMemberFactory(group=group).user
    client.force_login(member)
    # The card links to the meeting page (where the member sees the link), never the link itself.
    assert LINK.encode() not in client.get(reverse("dashboard")).content
