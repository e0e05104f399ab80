"""Pages of the working groups. Views parse input, call one service or selector, render.

Everything under a group first resolves the group and what the visitor is in it
(``_group``): a visitor who may not see the group gets 404, on pages, htmx partials, file
downloads and calendar feeds alike.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError
from apps.core.http import render_page_or_partial
from apps.organizations.views import _posted, _querystring, staff_required
from apps.workinggroups import feeds, selectors, services
from apps.workinggroups.forms import (
    BallotForm,
    ChairForm,
    CloseForm,
    DecideForm,
    DirectoryFilterForm,
    DocumentForm,
    GroupCreateForm,
    GroupForm,
    JoinRequestForm,
    MeetingForm,
    MemberAddForm,
    MinutesForm,
    MotionForm,
    PostForm,
    RoleForm,
    SettingsForm,
    ThreadForm,
    VersionForm,
)
from apps.workinggroups.models import GroupMember, MemberSettings, WorkingGroup
from apps.workinggroups.permissions import group_access, redact_meetings
from apps.workinggroups.rendering import render_markdown

DIRECTORY_PAGE_SIZE = 30
THREADS_PAGE_SIZE = 20
POSTS_PAGE_SIZE = 20


def _group(request, slug: str):
    group = selectors.group_get(slug=slug)
    if group is None:
        raise Http404
    access = group_access(request.user, group)
    if not access.can_view:
        raise Http404
    return group, access


def _ctx(group, access, **extra) -> dict:
    return {"group": group, "access": access, **extra}


def _form_errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- Directory and group home -----------------------------------------------------------------


def directory(request):
    form = DirectoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    groups = selectors.group_directory(
        user=request.user,
        q=filters.get("q", ""),
        industry=filters.get("industry", ""),
        status=filters.get("status", ""),
    )
    page = Paginator(groups, DIRECTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        "workinggroups/directory.html",
        "results",
        {"form": form, "page": page, "querystring": _querystring(request)},
    )


def group_detail(request, slug: str):
    group, access = _group(request, slug)
    user = request.user
    pending = selectors.join_request_pending_for(group=group, user=user)
    if access.is_member:
        join_state = "member"
    elif pending is not None:
        join_state = "pending"
    elif not user.is_authenticated:
        join_state = "login"
    elif not group.is_active:
        join_state = "not_active"
    elif not (access.is_alliance_member or group.allow_outside_researchers):
        join_state = "not_eligible"
    else:
        join_state = {"open": "join", "request": "request"}.get(group.join_policy, "invitation")
    return render(
        request,
        "workinggroups/group_detail.html",
        _ctx(
            group,
            access,
            charter_html=render_markdown(group.charter),
            chairs=selectors.group_chairs(group=group),
            next_meeting=redact_meetings(selectors.meeting_next(group=group), access),
            threads=selectors.thread_list(group=group)[:5],
            documents=selectors.document_list(group=group)[:5],
            motions=selectors.motion_open_list(group=group)[:5],
            member_count=GroupMember.objects.filter(group=group).count(),
            join_state=join_state,
            join_form=JoinRequestForm(),
            feed_url=_group_feed_url(request, group),
        ),
    )


def _group_feed_url(request, group: WorkingGroup) -> str:
    if group.is_public:
        return request.build_absolute_uri(reverse("workinggroups:group-feed-public", args=[group.slug]))
    if request.user.is_authenticated:
        # Reading only: the token is made on the settings page, not on every page view.
        token = MemberSettings.objects.filter(user=request.user).values_list("feed_token", flat=True).first()
        if token is None:
            return reverse("workinggroups:settings")
        return request.build_absolute_uri(reverse("workinggroups:group-feed", args=[token, group.slug]))
    return ""


@login_required
def group_edit(request, slug: str):
    group, access = _group(request, slug)
    if not access.can_manage:
        raise Http404
    form = GroupForm(_posted(request), instance=group)
    if request.method == "POST" and form.is_valid():
        try:
            services.group_update(group_id=group.pk, actor=request.user, data=form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("The working group was saved."))
            return redirect(group)
    # A ModelForm writes the posted values on its instance: show the saved group in the header.
    group.refresh_from_db()
    return render(
        request,
        "workinggroups/group_edit.html",
        _ctx(group, access, form=form),
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def group_join(request, slug: str):
    group, _access = _group(request, slug)
    try:
        if group.join_policy == WorkingGroup.JoinPolicy.OPEN:
            services.member_join(group_id=group.pk, user=request.user)
            messages.success(request, _("Welcome: you joined the working group."))
        else:
            form = JoinRequestForm(request.POST)
            message = form.cleaned_data["message"] if form.is_valid() else ""
            services.join_request_create(group_id=group.pk, user=request.user, message=message)
            messages.success(request, _("Your request was sent to the chair."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(group)


@login_required
@require_POST
def group_leave(request, slug: str):
    group, _access = _group(request, slug)
    try:
        services.member_leave(group_id=group.pk, user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("You left the working group."))
    return redirect(group if group_access(request.user, group).can_view else "workinggroups:directory")


# --- Members ----------------------------------------------------------------------------------


def members(request, slug: str):
    group, access = _group(request, slug)
    add_form = MemberAddForm(_posted(request)) if access.can_manage else None
    if request.method == "POST":
        if not access.can_manage:
            raise Http404
        if add_form.is_valid():
            try:
                services.member_add(group_id=group.pk, actor=request.user, **add_form.cleaned_data)
            except ApplicationError as exc:
                add_form.add_error(None, exc.message)
            else:
                messages.success(request, _("%(email)s was added.") % add_form.cleaned_data)
                return redirect("workinggroups:members", slug=slug)
    return render(
        request,
        "workinggroups/members.html",
        _ctx(
            group,
            access,
            # Names of people are for the alliance: visitors of a public group see its officers.
            members=selectors.member_list(group=group)
            if (access.is_member or access.is_alliance_member or access.is_staff)
            else selectors.group_chairs(group=group),
            requests=selectors.join_requests_pending(group=group) if access.can_manage else [],
            add_form=add_form,
            role_choices=RoleForm.base_fields["role"].choices,
        ),
        status=400 if add_form is not None and add_form.errors else 200,
    )


@login_required
@require_POST
def join_request_decide(request, slug: str, request_id: int):
    group, access = _group(request, slug)
    if not access.can_manage or not group.join_requests.filter(pk=request_id).exists():
        raise Http404
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return redirect("workinggroups:members", slug=slug)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        services.join_request_decide(
            request_id=request_id, actor=request.user, approve=approve, reason=form.cleaned_data["reason"]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("The request was approved.") if approve else _("The request was declined.")
        )
    return redirect("workinggroups:members", slug=slug)


@login_required
@require_POST
def member_role(request, slug: str, seat_id: int):
    group, access = _group(request, slug)
    if not access.can_manage or not group.members.filter(pk=seat_id).exists():
        raise Http404
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            raise ApplicationError(_form_errors(form))
        services.member_set_role(seat_id=seat_id, actor=request.user, role=form.cleaned_data["role"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The role was changed."))
    return redirect("workinggroups:members", slug=slug)


@login_required
@require_POST
def member_remove(request, slug: str, seat_id: int):
    group, access = _group(request, slug)
    if not access.can_manage or not group.members.filter(pk=seat_id).exists():
        raise Http404
    try:
        services.member_remove(seat_id=seat_id, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The member was removed from the working group."))
    return redirect("workinggroups:members", slug=slug)


# --- Meetings ---------------------------------------------------------------------------------


def meetings(request, slug: str):
    group, access = _group(request, slug)
    form = MeetingForm(_posted(request)) if access.can_organize else None
    if form is not None:
        del form.fields["cancelled"]  # a new meeting is not cancelled
    if request.method == "POST":
        if not access.can_organize:
            raise Http404
        if form.is_valid():
            try:
                meeting = services.meeting_create(
                    group_id=group.pk, actor=request.user, data=form.cleaned_data
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The meeting was scheduled."))
                return redirect(meeting)
    now = timezone.now()
    all_meetings = redact_meetings(list(selectors.meeting_list(group=group)[:200]), access)
    return render(
        request,
        "workinggroups/meetings.html",
        _ctx(
            group,
            access,
            upcoming=sorted((m for m in all_meetings if m.ends_at >= now), key=lambda m: m.starts_at),
            past=[m for m in all_meetings if m.ends_at < now],
            form=form,
            feed_url=_group_feed_url(request, group),
        ),
        status=400 if form is not None and form.errors else 200,
    )


def _meeting(request, slug: str, meeting_id: int):
    group, access = _group(request, slug)
    meeting = selectors.meeting_get(group=group, meeting_id=meeting_id)
    if meeting is None:
        raise Http404
    return group, access, redact_meetings(meeting, access)


def meeting_detail(request, slug: str, meeting_id: int):
    group, access, meeting = _meeting(request, slug, meeting_id)
    minutes_form = (
        MinutesForm(_posted(request), initial={"minutes": meeting.minutes}) if access.can_organize else None
    )
    if request.method == "POST":
        if not access.can_organize:
            raise Http404
        if minutes_form.is_valid():
            try:
                services.meeting_update(
                    meeting_id=meeting.pk, actor=request.user, data=minutes_form.cleaned_data
                )
            except ApplicationError as exc:  # the role was checked again inside the transaction
                messages.error(request, exc.message)
            else:
                messages.success(request, _("The minutes were saved."))
            return redirect(meeting)
    attendance = selectors.meeting_attendance(meeting=meeting)
    roster = []
    if access.is_member or access.is_staff:
        for seat in selectors.member_list(group=group):
            roster.append({"seat": seat, "present": attendance.get(seat.user_id)})
    return render(
        request,
        "workinggroups/meeting_detail.html",
        _ctx(
            group,
            access,
            meeting=meeting,
            agenda_html=render_markdown(meeting.agenda),
            minutes_html=render_markdown(meeting.minutes),
            minutes_form=minutes_form,
            roster=roster,
            attendance_recorded=bool(attendance),
            show_link=access.can_see_links,
        ),
    )


@login_required
def meeting_edit(request, slug: str, meeting_id: int):
    group, access, meeting = _meeting(request, slug, meeting_id)
    if not access.can_organize:
        raise Http404
    initial = {
        "title": meeting.title,
        "starts_at": timezone.localtime(meeting.starts_at),
        "ends_at": timezone.localtime(meeting.ends_at),
        "location": meeting.location,
        "online_url": meeting.online_url,
        "agenda": meeting.agenda,
        "cancelled": meeting.cancelled,
    }
    form = MeetingForm(_posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.meeting_update(meeting_id=meeting.pk, actor=request.user, data=form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("The meeting was saved."))
            return redirect(meeting)
    return render(
        request,
        "workinggroups/meeting_edit.html",
        _ctx(group, access, meeting=meeting, form=form),
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def meeting_attendance(request, slug: str, meeting_id: int):
    _group_obj, access, meeting = _meeting(request, slug, meeting_id)
    if not access.can_organize:
        raise Http404
    present = [int(v) for v in request.POST.getlist("present") if v.isdigit()]
    try:
        services.attendance_record(meeting_id=meeting.pk, actor=request.user, present_user_ids=present)
    except ApplicationError as exc:  # the role was checked again inside the transaction
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The attendance was recorded."))
    return redirect(meeting)


# --- Calendar feeds ---------------------------------------------------------------------------


def _ics(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


def group_feed_public(request, slug: str):
    """A public group's calendar: no token needed. Other groups answer 404 here."""
    group = selectors.group_get(slug=slug)
    if group is None or not group.is_public:
        raise Http404
    body = feeds.calendar_for(
        meetings=selectors.meetings_for_feed(groups=[group]), name=group.display_name, with_links=False
    )
    return _ics(body, f"{group.slug}.ics")


def _feed_user(token: str) -> User:
    row = MemberSettings.objects.select_related("user").filter(feed_token=token, user__is_active=True).first()
    if row is None:
        raise Http404
    return row.user


def group_feed(request, token: str, slug: str):
    """A group's calendar for calendar apps (no session): the token stands for the user."""
    user = _feed_user(token)
    group = selectors.group_get(slug=slug)
    access = group_access(user, group) if group is not None else None
    if access is None or not access.can_view:
        raise Http404
    body = feeds.calendar_for(
        meetings=selectors.meetings_for_feed(groups=[group]),
        name=group.display_name,
        with_links=access.can_see_links,
    )
    return _ics(body, f"{group.slug}.ics")


def my_feed(request, token: str):
    """All meetings of the user's groups."""
    user = _feed_user(token)
    # Only groups with a seat now: their links are the user's to see.
    groups = WorkingGroup.objects.filter(members__user=user)
    body = feeds.calendar_for(
        meetings=selectors.meetings_for_feed(groups=groups), name=_("My working groups"), with_links=True
    )
    return _ics(body, "my-working-groups.ics")


@login_required
def my_settings(request):
    row = services.member_settings_get(user=request.user)
    form = SettingsForm(_posted(request), initial={"notify": row.notify})
    if request.method == "POST":
        if request.POST.get("action") == "regenerate":
            row = services.feed_token_regenerate(user=request.user)
            messages.success(request, _("A new calendar link was made; the old one no longer works."))
            return redirect("workinggroups:settings")
        if form.is_valid():
            services.member_settings_update(user=request.user, notify=form.cleaned_data["notify"])
            messages.success(request, _("Your settings were saved."))
            return redirect("workinggroups:settings")
    return render(
        request,
        "workinggroups/settings.html",
        {
            "form": form,
            "feed_url": request.build_absolute_uri(reverse("workinggroups:my-feed", args=[row.feed_token])),
            "seats": selectors.my_groups(user=request.user),
        },
        status=400 if form.errors else 200,
    )


# --- Documents --------------------------------------------------------------------------------


def documents(request, slug: str):
    group, access = _group(request, slug)
    form = DocumentForm(request.POST or None, request.FILES or None) if access.can_contribute else None
    if request.method == "POST":
        if not access.can_contribute:
            raise Http404
        if form.is_valid():
            data = form.cleaned_data
            try:
                document = services.document_upload(
                    group_id=group.pk,
                    actor=request.user,
                    title=data["title"],
                    description=data["description"],
                    upload=data["file"],
                )
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                messages.success(request, _("The document was uploaded."))
                return redirect(document)
    return render(
        request,
        "workinggroups/documents.html",
        _ctx(group, access, documents=selectors.document_list(group=group)[:200], form=form),
        status=400 if form is not None and form.errors else 200,
    )


def document_detail(request, slug: str, document_id: int):
    group, access = _group(request, slug)
    document = selectors.document_get(group=group, document_id=document_id)
    if document is None:
        raise Http404
    form = VersionForm(request.POST or None, request.FILES or None) if access.can_contribute else None
    if request.method == "POST":
        if not access.can_contribute:
            raise Http404
        if form.is_valid():
            try:
                services.document_add_version(
                    document_id=document.pk,
                    actor=request.user,
                    upload=form.cleaned_data["file"],
                    note=form.cleaned_data["note"],
                )
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                messages.success(request, _("The new version was uploaded."))
                return redirect(document)
    return render(
        request,
        "workinggroups/document_detail.html",
        _ctx(group, access, document=document, form=form),
        status=400 if form is not None and form.errors else 200,
    )


def document_download(request, slug: str, document_id: int, number: int):
    group, _access = _group(request, slug)
    version = selectors.document_version_get(group=group, document_id=document_id, number=number)
    if version is None:
        raise Http404
    try:
        handle = version.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(
        handle, as_attachment=True, filename=version.original_name, content_type=version.content_type
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Discussions ------------------------------------------------------------------------------


def threads(request, slug: str):
    group, access = _group(request, slug)
    form = ThreadForm(_posted(request)) if access.can_contribute else None
    if request.method == "POST":
        if not access.can_contribute:
            raise Http404
        if form.is_valid():
            try:
                thread = services.thread_create(group_id=group.pk, actor=request.user, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The thread was started."))
                return redirect(thread)
    page = Paginator(selectors.thread_list(group=group), THREADS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        "workinggroups/threads.html",
        "thread-list",
        _ctx(group, access, page=page, form=form),
        status=400 if form is not None and form.errors else 200,
    )


def _thread(request, slug: str, thread_id: int):
    group, access = _group(request, slug)
    thread = selectors.thread_get(group=group, thread_id=thread_id)
    if thread is None:
        raise Http404
    return group, access, thread


def _decorate(post, *, user, access, thread) -> None:
    """Flags the post template needs (templates decide nothing)."""
    now = timezone.now()
    post.html = render_markdown(post.body) if not post.is_hidden or access.can_manage else ""
    post.can_edit = (
        user.is_authenticated
        and access.can_contribute
        and thread.group.status != WorkingGroup.Status.CLOSED
        and post.author_id == user.pk
        and not post.is_hidden
        and not thread.is_locked
        and now - post.created_at <= services.EDIT_WINDOW
    )
    post.can_moderate = access.can_manage


def _posts_page(request, thread, access, number):
    paginator = Paginator(selectors.post_list(thread=thread), POSTS_PAGE_SIZE)
    page = paginator.get_page(number)
    for post in page:
        _decorate(post, user=request.user, access=access, thread=thread)
    return page


def thread_detail(request, slug: str, thread_id: int):
    group, access, thread = _thread(request, slug, thread_id)
    if request.method == "POST":
        return _post_reply(request, group, access, thread)
    page = _posts_page(request, thread, access, request.GET.get("page"))
    can_reply = access.can_contribute and not thread.is_locked and group.status != WorkingGroup.Status.CLOSED
    return render_page_or_partial(
        request,
        "workinggroups/thread_detail.html",
        "posts",
        _ctx(
            group,
            access,
            thread=thread,
            page=page,
            form=PostForm() if can_reply else None,
            can_reply=can_reply,
        ),
    )


def _post_reply(request, group, access, thread):
    if not access.can_contribute:
        raise Http404
    form = PostForm(request.POST)
    error = None
    if form.is_valid():
        try:
            post = services.post_create(
                thread_id=thread.pk, actor=request.user, body=form.cleaned_data["body"]
            )
        except ApplicationError as exc:
            error = exc.message
    else:
        error = _form_errors(form)
    if error:
        if not request.htmx:
            messages.error(request, error)
            return redirect(thread)
        return render(
            request,
            "workinggroups/thread_detail.html#reply-form",
            _ctx(group, access, thread=thread, form=form, can_reply=True, reply_error=error),
            status=400,
        )
    if not request.htmx:
        messages.success(request, _("Your reply was posted."))
        last = Paginator(selectors.post_list(thread=thread), POSTS_PAGE_SIZE).num_pages
        return redirect(f"{thread.get_absolute_url()}?page={last}#post-{post.pk}")
    _decorate(post, user=request.user, access=access, thread=thread)
    return render(
        request,
        "workinggroups/thread_detail.html#reply-result",
        _ctx(group, access, thread=thread, post=post, form=PostForm(), can_reply=True),
    )


def post_edit(request, slug: str, post_id: int):
    group, access = _group(request, slug)
    post = selectors.post_get(group=group, post_id=post_id)
    if post is None:
        raise Http404
    # Only the author, and only while still a member of the group (the service checks it again).
    if post.author_id != getattr(request.user, "pk", None) or not access.can_contribute:
        raise Http404
    thread = post.thread
    form = PostForm(_posted(request), initial={"body": post.body})
    error = None
    if request.method == "POST":
        if form.is_valid():
            try:
                post = services.post_edit(post_id=post.pk, actor=request.user, body=form.cleaned_data["body"])
            except ApplicationError as exc:
                error = exc.message
            else:
                if request.htmx:
                    _decorate(post, user=request.user, access=access, thread=thread)
                    return render(
                        request,
                        "workinggroups/thread_detail.html#post",
                        _ctx(group, access, thread=thread, post=post),
                    )
                messages.success(request, _("Your message was saved."))
                return redirect(thread)
        else:
            error = _form_errors(form)
    template = "workinggroups/post_edit.html#edit-form" if request.htmx else "workinggroups/post_edit.html"
    return render(
        request,
        template,
        _ctx(group, access, thread=thread, post=post, form=form, error=error),
        status=400 if error else 200,
    )


@login_required
@require_POST
def post_hide(request, slug: str, post_id: int):
    group, access = _group(request, slug)
    post = selectors.post_get(group=group, post_id=post_id)
    if post is None or not access.can_manage:
        raise Http404
    hidden = request.POST.get("hidden") != "0"
    post = services.post_set_hidden(post_id=post.pk, actor=request.user, hidden=hidden)
    if request.htmx:
        post = selectors.post_get(group=group, post_id=post.pk)
        _decorate(post, user=request.user, access=access, thread=post.thread)
        return render(
            request,
            "workinggroups/thread_detail.html#post",
            _ctx(group, access, thread=post.thread, post=post),
        )
    return redirect(post.thread)


@login_required
@require_POST
def thread_lock(request, slug: str, thread_id: int):
    _group_obj, access, thread = _thread(request, slug, thread_id)
    if not access.can_manage:
        raise Http404
    locked = request.POST.get("locked") != "0"
    services.thread_set_locked(thread_id=thread.pk, actor=request.user, locked=locked)
    messages.success(request, _("The thread was locked.") if locked else _("The thread was reopened."))
    return redirect(thread)


# --- Votes ------------------------------------------------------------------------------------


def motions(request, slug: str):
    group, access = _group(request, slug)
    form = MotionForm(_posted(request)) if access.can_manage else None
    if request.method == "POST":
        if not access.can_manage:
            raise Http404
        if form.is_valid():
            data = form.cleaned_data
            try:
                motion = services.motion_create(
                    group_id=group.pk,
                    actor=request.user,
                    title=data["title"],
                    description=data["description"],
                    options=data["option_list"],
                    scope=data["scope"],
                    is_secret=data["is_secret"],
                    opens_at=data["opens_at"],
                    closes_at=data["closes_at"],
                    quorum_kind=data["quorum_kind"],
                    quorum_value=data["quorum_value"],
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The motion was put to the vote."))
                return redirect(motion)
    return render(
        request,
        "workinggroups/motions.html",
        _ctx(group, access, motions=selectors.motion_list(group=group)[:200], form=form),
        status=400 if form is not None and form.errors else 200,
    )


def _motion_context(request, group, access, motion, *, form=None, error=None) -> dict:
    closed = motion.is_closed
    own = selectors.ballot_for(motion=motion, user=request.user)
    seat, reason = services.voter_eligibility(motion=motion, user=request.user)
    can_vote = motion.is_open and seat is not None and own is None
    if (
        can_vote
        and motion.scope == motion.Scope.ORGANIZATION
        and selectors.organization_has_voted(motion=motion, organization_id=seat.organization_id)
    ):
        can_vote, reason = False, _("Your organization has already voted on this motion.")
    result = selectors.motion_result(motion=motion)
    return _ctx(
        group,
        access,
        motion=motion,
        state=motion.state(),
        description_html=render_markdown(motion.description),
        result=result,
        show_results=closed,
        voters=selectors.open_ballots_list(motion=motion) if closed and not motion.is_secret else [],
        own_ballot=own,
        can_vote=can_vote,
        not_eligible_reason=reason if (motion.is_open and own is None and not can_vote) else None,
        ballot_form=form or (BallotForm(motion=motion) if can_vote else None),
        ballot_error=error,
    )


def motion_detail(request, slug: str, motion_id: int):
    group, access = _group(request, slug)
    motion = selectors.motion_get(group=group, motion_id=motion_id)
    if motion is None:
        raise Http404
    return render(
        request, "workinggroups/motion_detail.html", _motion_context(request, group, access, motion)
    )


@login_required
@require_POST
def ballot_cast(request, slug: str, motion_id: int):
    group, access = _group(request, slug)
    motion = selectors.motion_get(group=group, motion_id=motion_id)
    if motion is None:
        raise Http404
    form = BallotForm(request.POST, motion=motion)
    error = None
    if form.is_valid():
        try:
            services.ballot_cast(
                motion_id=motion.pk, voter=request.user, option_id=form.cleaned_data["option"]
            )
        except ApplicationError as exc:
            error = exc.message
    else:
        error = _("Choose one of the motion's options.")
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, _("Your vote was recorded."))
        return redirect(motion)
    context = _motion_context(request, group, access, motion, error=error)
    if error and context["can_vote"]:
        context["ballot_form"] = form
    return render(
        request, "workinggroups/motion_detail.html#ballot-box", context, status=400 if error else 200
    )


# --- Secretariat console ----------------------------------------------------------------------


@staff_required
def console(request):
    form = GroupCreateForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chair = None
        if data.get("chair_email"):
            chair = User.objects.filter(email__iexact=data["chair_email"], is_active=True).first()
            if chair is None:
                form.add_error("chair_email", _("Nobody has an account with this e-mail address."))
        if not form.errors:
            try:
                group = services.group_create(
                    actor=request.user, data=data, slug=data.get("slug") or "", chair=chair
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("The working group was created."))
                return redirect("workinggroups:console-group", slug=group.slug)
    all_groups = selectors.group_console_list()
    return render(
        request,
        "workinggroups/console.html",
        {"groups": all_groups, "form": form},
        status=400 if form.errors else 200,
    )


@staff_required
def console_group(request, slug: str):
    group = selectors.group_get(slug=slug)
    if group is None:
        raise Http404
    chair_form = ChairForm(request.POST if request.POST.get("action") == "chair" else None)
    close_form = CloseForm(request.POST if request.POST.get("action") == "close" else None)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "activate":
                services.group_activate(group_id=group.pk, actor=request.user)
                messages.success(request, _("The working group is active."))
                return redirect("workinggroups:console-group", slug=slug)
            if action == "close" and close_form.is_valid():
                services.group_close(
                    group_id=group.pk, actor=request.user, reason=close_form.cleaned_data["reason"]
                )
                messages.success(request, _("The working group was closed."))
                return redirect("workinggroups:console-group", slug=slug)
            if action == "chair" and chair_form.is_valid():
                chair = User.objects.filter(
                    email__iexact=chair_form.cleaned_data["email"], is_active=True
                ).first()
                if chair is None:
                    chair_form.add_error("email", _("Nobody has an account with this e-mail address."))
                else:
                    services.group_assign_chair(group_id=group.pk, user=chair, actor=request.user)
                    messages.success(request, _("The chair was assigned."))
                    return redirect("workinggroups:console-group", slug=slug)
        except ApplicationError as exc:
            messages.error(request, exc.message)
    access = group_access(request.user, group)
    return render(
        request,
        "workinggroups/console_group.html",
        _ctx(
            group,
            access,
            chairs=selectors.group_chairs(group=group),
            chair_form=chair_form,
            close_form=close_form,
            member_count=GroupMember.objects.filter(group=group).count(),
        ),
        status=400 if chair_form.errors or close_form.errors else 200,
    )
