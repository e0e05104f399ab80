"""iCalendar feeds of meetings (RFC 5545), built with the icalendar library."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event, vText

from apps.workinggroups.models import Meeting


def calendar_for(*, meetings, name: str, with_links: bool = False) -> bytes:
    """``with_links``: include online meeting links (members-only: callers opt in for people with
    a seat in the group or staff, ``GroupAccess.can_see_links``)."""
    calendar = Calendar()
    calendar.add("prodid", "-//GPU Alliance Portal//Working groups//JA")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    now = timezone.now()
    for meeting in meetings:
        calendar.add_component(_event(meeting, now, with_links))
    # Times are local (Asia/Tokyo) with a TZID; the VTIMEZONE they need is embedded.
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _event(meeting: Meeting, stamp, with_links: bool) -> Event:
    event = Event()
    event.add("uid", f"{meeting.uid}@gpu-alliance-portal")
    event.add("dtstamp", stamp)
    event.add("dtstart", timezone.localtime(meeting.starts_at))
    event.add("dtend", timezone.localtime(meeting.ends_at))
    event.add("sequence", meeting.sequence)
    event.add("summary", f"[{meeting.group.name_ja}] {meeting.title}")
    online_url = meeting.online_url if with_links else ""
    location = meeting.location or online_url
    if location:
        event["location"] = vText(location)
    description = meeting.agenda
    if online_url:
        description = f"{online_url}\n\n{description}".strip()
    if description:
        event.add("description", description)
    event.add("url", settings.SITE_URL + meeting.get_absolute_url())
    event.add("status", "CANCELLED" if meeting.cancelled else "CONFIRMED")
    return event
