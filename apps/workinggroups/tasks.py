"""E-mails of the working groups. Tasks take ids and are enqueued on commit by the services.

``discussion_digest_task`` runs once a day (celery beat): the daily digest of new posts.
"""

from __future__ import annotations

import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.core.mail import send_templated_mail

DIGEST_MAX_POSTS = 50


def _notify_mode(settings_row) -> str:
    return settings_row.notify if settings_row else "immediate"


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def post_notify_task(post_id: int) -> int:
    """Immediate e-mails about a new post to the group's members who want them (not the author)."""
    from apps.workinggroups.models import GroupMember, MemberSettings, Post

    post = Post.objects.select_related("thread__group", "author").filter(pk=post_id).first()
    if post is None or post.is_hidden:
        return 0
    group = post.thread.group
    seats = (
        GroupMember.objects.filter(group=group, user__is_active=True)
        .exclude(user_id=post.author_id)
        .select_related("user")
    )
    modes = dict(MemberSettings.objects.filter(user__wg_seats__group=group).values_list("user_id", "notify"))
    sent = 0
    for seat in seats:
        if modes.get(seat.user_id, MemberSettings.Notify.IMMEDIATE) != MemberSettings.Notify.IMMEDIATE:
            continue
        send_templated_mail(
            to=[seat.user.email],
            template="workinggroups/emails/post",
            context={
                "post": post,
                "thread": post.thread,
                "group": group,
                "url": settings.SITE_URL + post.thread.get_absolute_url(),
            },
            language=seat.user.language,
        )
        sent += 1
    return sent


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def join_request_notify_task(request_id: int) -> None:
    """A new request goes to the chair and vice-chairs; a decision to the person who asked."""
    from apps.workinggroups.models import GroupMember, JoinRequest

    join_request = JoinRequest.objects.select_related("group", "user").filter(pk=request_id).first()
    if join_request is None:
        return
    group = join_request.group
    context = {"join_request": join_request, "group": group}
    if join_request.status == JoinRequest.Status.PENDING:
        from django.urls import reverse

        url = settings.SITE_URL + reverse("workinggroups:members", args=[group.slug])
        for seat in GroupMember.objects.filter(
            group=group, role__in=GroupMember.MANAGER_ROLES
        ).select_related("user"):
            send_templated_mail(
                to=[seat.user.email],
                template="workinggroups/emails/join_request",
                context={**context, "url": url},
                language=seat.user.language,
            )
    else:
        send_templated_mail(
            to=[join_request.user.email],
            template="workinggroups/emails/join_decision",
            context={**context, "url": settings.SITE_URL + group.get_absolute_url()},
            language=join_request.user.language,
        )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def discussion_digest_task() -> int:
    """Send the daily digest to everybody who chose it: the posts of their groups since their
    last digest (at most a day back), not their own, not hidden ones. Returns e-mails sent."""
    from apps.workinggroups.models import MemberSettings, Post

    now = timezone.now()
    sent = 0
    rows = MemberSettings.objects.filter(
        notify=MemberSettings.Notify.DAILY, user__is_active=True
    ).select_related("user")
    for row in rows.iterator(chunk_size=200):
        since = max(row.last_digest_at or now - datetime.timedelta(days=1), now - datetime.timedelta(days=1))
        posts = list(
            Post.objects.filter(
                thread__group__members__user=row.user,
                created_at__gt=since,
                created_at__lte=now,
                is_hidden=False,
            )
            .exclude(author=row.user)
            .select_related("thread__group", "author")
            .order_by("thread__group__name_en", "thread_id", "created_at")[:DIGEST_MAX_POSTS]
        )
        if posts:
            send_templated_mail(
                to=[row.user.email],
                template="workinggroups/emails/digest",
                context={"posts": posts, "site_url": settings.SITE_URL},
                language=row.user.language,
            )
            sent += 1
        MemberSettings.objects.filter(pk=row.pk).update(last_digest_at=now)
    return sent
