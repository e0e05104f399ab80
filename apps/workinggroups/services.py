"""Every change to working groups: groups, seats, join requests, meetings, documents,
discussions, notification settings and votes.

Each service is one use case: transactional, locks what it checks, writes its AuditEvent and
sends its e-mails after commit. Permission checks are repeated here (not only in the views).
"""

from __future__ import annotations

import datetime
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.core.exceptions import ApplicationError
from apps.governance.services import audit_record
from apps.organizations.models import Membership, Organization, OrgRole
from apps.workinggroups.models import (
    Attendance,
    Ballot,
    Document,
    DocumentVersion,
    GroupMember,
    JoinRequest,
    Meeting,
    MemberSettings,
    Motion,
    MotionOption,
    Post,
    Thread,
    WorkingGroup,
)
from apps.workinggroups.permissions import forget_access, group_access, member_organizations
from apps.workinggroups.tasks import join_request_notify_task, post_notify_task
from apps.workinggroups.uploads import validate_upload

Role = GroupMember.Role
Status = WorkingGroup.Status
EDIT_WINDOW = datetime.timedelta(minutes=15)

GROUP_FIELDS = (
    "name_ja",
    "name_en",
    "charter_ja",
    "charter_en",
    "industry",
    "visibility",
    "join_policy",
    "allow_outside_researchers",
)


def _snapshot(group: WorkingGroup) -> dict:
    return {**model_to_dict(group, fields=GROUP_FIELDS), "status": group.status}


def _lock_group(group_id: int) -> WorkingGroup:
    try:
        return WorkingGroup.objects.select_for_update().get(pk=group_id)
    except WorkingGroup.DoesNotExist as exc:
        raise ApplicationError(_("This working group does not exist."), code="not_found") from exc


def _require_staff(user) -> None:
    if not (user and user.is_authenticated and user.is_staff):
        raise ApplicationError(_("Only the secretariat can do this."), code="forbidden")


def _require_manager(user, group: WorkingGroup) -> None:
    if not group_access(user, group, fresh=True).can_manage:
        raise ApplicationError(_("Only the chair can do this."), code="forbidden")


def _require_organizer(user, group: WorkingGroup) -> None:
    if not group_access(user, group, fresh=True).can_organize:
        raise ApplicationError(_("Only the chair or the secretary can do this."), code="forbidden")


def _require_not_closed(group: WorkingGroup) -> None:
    if group.status == Status.CLOSED:
        raise ApplicationError(_("This working group is closed."), code="closed")


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "group"
    slug, n = base, 2
    while WorkingGroup.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


# --- Groups (secretariat) ---------------------------------------------------------------------


@transaction.atomic
def group_create(*, actor, data: dict, slug: str = "", chair: User | None = None) -> WorkingGroup:
    _require_staff(actor)
    fields = {k: v for k, v in data.items() if k in GROUP_FIELDS}
    if not fields.get("name_ja") or not fields.get("name_en"):
        raise ApplicationError(_("A working group needs a Japanese and an English name."), code="name")
    slug = slugify(slug) if slug else _unique_slug(fields["name_en"])
    if WorkingGroup.objects.filter(slug=slug).exists():
        raise ApplicationError(_("This short name is already taken."), code="slug_taken")
    group = WorkingGroup.objects.create(slug=slug, status=Status.PROPOSED, **fields)
    audit_record(actor=actor, action="workinggroup.created", target=group, after=_snapshot(group))
    if chair is not None:
        group_assign_chair(group_id=group.pk, user=chair, actor=actor)
    return group


@transaction.atomic
def group_update(*, group_id: int, actor, data: dict) -> WorkingGroup:
    group = _lock_group(group_id)
    _require_manager(actor, group)
    before = _snapshot(group)
    for field in GROUP_FIELDS:
        if field in data:
            setattr(group, field, data[field])
    group.save()
    audit_record(
        actor=actor, action="workinggroup.updated", target=group, before=before, after=_snapshot(group)
    )
    return group


@transaction.atomic
def group_activate(*, group_id: int, actor) -> WorkingGroup:
    _require_staff(actor)
    group = _lock_group(group_id)
    if group.status != Status.PROPOSED:
        raise ApplicationError(_("Only a proposed working group can be activated."), code="not_proposed")
    group.status = Status.ACTIVE
    group.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, action="workinggroup.activated", target=group, after={"status": group.status})
    return group


@transaction.atomic
def group_close(*, group_id: int, actor, reason: str = "") -> WorkingGroup:
    _require_staff(actor)
    group = _lock_group(group_id)
    _require_not_closed(group)
    before = {"status": group.status}
    group.status = Status.CLOSED
    group.closed_at = timezone.now()
    group.save(update_fields=["status", "closed_at", "updated_at"])
    JoinRequest.objects.filter(group=group, status=JoinRequest.Status.PENDING).update(
        status=JoinRequest.Status.REJECTED, decided_by=actor, decided_at=timezone.now(), reason=reason
    )
    audit_record(
        actor=actor,
        action="workinggroup.closed",
        target=group,
        before=before,
        after={"status": group.status, "reason": reason},
    )
    return group


def _default_organization(user) -> Organization | None:
    orgs = member_organizations(user, fresh=True)
    return orgs[0] if orgs else None


@transaction.atomic
def group_assign_chair(*, group_id: int, user: User, actor) -> GroupMember:
    """Make ``user`` the chair; a previous chair stays a member."""
    _require_staff(actor)
    group = _lock_group(group_id)
    _require_not_closed(group)
    previous = GroupMember.objects.select_for_update().filter(group=group, role=Role.CHAIR).first()
    if previous and previous.user_id == user.pk:
        return previous
    if previous:
        previous.role = Role.MEMBER
        previous.save(update_fields=["role", "updated_at"])
    seat = GroupMember.objects.select_for_update().filter(group=group, user=user).first()
    if seat is None:
        seat = GroupMember.objects.create(
            group=group, user=user, organization=_default_organization(user), role=Role.CHAIR
        )
    else:
        seat.role = Role.CHAIR
        seat.save(update_fields=["role", "updated_at"])
    audit_record(
        actor=actor,
        action="workinggroup.chair_assigned",
        target=group,
        before={"chair": previous.user.email if previous else None},
        after={"chair": user.email},
    )
    forget_access(user)
    return seat


# --- Seats and join requests ------------------------------------------------------------------


def _check_can_join(user, group: WorkingGroup) -> Organization | None:
    if not (user and user.is_authenticated):
        raise ApplicationError(_("Log in to join a working group."), code="login")
    if group.status != Status.ACTIVE:
        raise ApplicationError(_("Only an active working group accepts new members."), code="not_active")
    if GroupMember.objects.filter(group=group, user=user).exists():
        raise ApplicationError(_("You are already a member of this working group."), code="already_member")
    organization = _default_organization(user)
    if organization is None and not group.allow_outside_researchers:
        raise ApplicationError(
            _("This working group is open to people of member organizations only."), code="not_eligible"
        )
    return organization


@transaction.atomic
def member_join(*, group_id: int, user) -> GroupMember:
    """Join a group whose policy is open."""
    group = _lock_group(group_id)
    if not group_access(user, group, fresh=True).can_view:
        raise ApplicationError(_("This working group does not exist."), code="not_found")
    organization = _check_can_join(user, group)
    if group.join_policy != WorkingGroup.JoinPolicy.OPEN:
        raise ApplicationError(_("This working group does not take members directly."), code="not_open")
    seat = GroupMember.objects.create(group=group, user=user, organization=organization, role=Role.MEMBER)
    audit_record(
        actor=user,
        action="workinggroup.member_joined",
        target=group,
        after={"user": user.email, "organization": organization.slug if organization else None},
    )
    forget_access(user)
    return seat


@transaction.atomic
def join_request_create(*, group_id: int, user, message: str = "") -> JoinRequest:
    group = _lock_group(group_id)
    if not group_access(user, group, fresh=True).can_view:
        raise ApplicationError(_("This working group does not exist."), code="not_found")
    organization = _check_can_join(user, group)
    if group.join_policy != WorkingGroup.JoinPolicy.REQUEST:
        raise ApplicationError(_("This working group does not take join requests."), code="not_by_request")
    if JoinRequest.objects.filter(group=group, user=user, status=JoinRequest.Status.PENDING).exists():
        raise ApplicationError(_("Your request is already waiting for the chair."), code="pending")
    join_request = JoinRequest.objects.create(
        group=group, user=user, organization=organization, message=message.strip()
    )
    audit_record(
        actor=user, action="workinggroup.join_requested", target=group, after={"request": join_request.pk}
    )
    transaction.on_commit(partial(join_request_notify_task.delay, join_request.pk))
    return join_request


@transaction.atomic
def join_request_decide(*, request_id: int, actor, approve: bool, reason: str = "") -> JoinRequest:
    try:
        join_request = (
            JoinRequest.objects.select_for_update().select_related("group", "user").get(pk=request_id)
        )
    except JoinRequest.DoesNotExist as exc:
        raise ApplicationError(_("This request does not exist."), code="not_found") from exc
    group = _lock_group(join_request.group_id)
    _require_manager(actor, group)
    if join_request.status != JoinRequest.Status.PENDING:
        raise ApplicationError(_("This request was already decided."), code="decided")
    if approve:
        _require_not_closed(group)
        if not GroupMember.objects.filter(group=group, user=join_request.user).exists():
            GroupMember.objects.create(
                group=group, user=join_request.user, organization=join_request.organization, role=Role.MEMBER
            )
    join_request.status = JoinRequest.Status.APPROVED if approve else JoinRequest.Status.REJECTED
    join_request.decided_by = actor
    join_request.decided_at = timezone.now()
    join_request.reason = reason
    join_request.save()
    audit_record(
        actor=actor,
        action="workinggroup.join_approved" if approve else "workinggroup.join_rejected",
        target=group,
        after={"user": join_request.user.email, "reason": reason},
    )
    transaction.on_commit(partial(join_request_notify_task.delay, join_request.pk))
    forget_access(join_request.user)
    return join_request


@transaction.atomic
def member_add(*, group_id: int, actor, email: str, role: str = Role.MEMBER) -> GroupMember:
    """The chair adds a person by e-mail (groups by invitation, or anybody the chair invites)."""
    group = _lock_group(group_id)
    _require_manager(actor, group)
    _require_not_closed(group)
    if role == Role.CHAIR:
        raise ApplicationError(_("The secretariat assigns the chair."), code="chair")
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        raise ApplicationError(
            _("Nobody has an account with this e-mail address; ask them to sign up first."), code="no_user"
        )
    if GroupMember.objects.filter(group=group, user=user).exists():
        raise ApplicationError(_("This person is already a member."), code="already_member")
    organization = _default_organization(user)
    if organization is None and not group.allow_outside_researchers:
        raise ApplicationError(
            _("This working group is open to people of member organizations only."), code="not_eligible"
        )
    seat = GroupMember.objects.create(group=group, user=user, organization=organization, role=role)
    JoinRequest.objects.filter(group=group, user=user, status=JoinRequest.Status.PENDING).update(
        status=JoinRequest.Status.APPROVED, decided_by=actor, decided_at=timezone.now()
    )
    audit_record(
        actor=actor,
        action="workinggroup.member_added",
        target=group,
        after={"user": user.email, "role": role},
    )
    forget_access(user)
    return seat


@transaction.atomic
def member_set_role(*, seat_id: int, actor, role: str) -> GroupMember:
    seat = GroupMember.objects.select_for_update().select_related("group", "user").filter(pk=seat_id).first()
    if seat is None:
        raise ApplicationError(_("This member does not exist."), code="not_found")
    _require_manager(actor, seat.group)
    if role not in Role.values:
        raise ApplicationError(_("Unknown role."), code="role")
    if role == Role.CHAIR or seat.role == Role.CHAIR:
        raise ApplicationError(_("The secretariat assigns the chair."), code="chair")
    before = seat.role
    seat.role = role
    seat.save(update_fields=["role", "updated_at"])
    audit_record(
        actor=actor,
        action="workinggroup.role_changed",
        target=seat.group,
        before={"user": seat.user.email, "role": before},
        after={"user": seat.user.email, "role": role},
    )
    forget_access(seat.user)
    return seat


@transaction.atomic
def member_leave(*, group_id: int, user) -> None:
    group = _lock_group(group_id)
    seat = GroupMember.objects.select_for_update().filter(group=group, user=user).first()
    if seat is None:
        raise ApplicationError(_("You are not a member of this working group."), code="not_member")
    if seat.role == Role.CHAIR:
        raise ApplicationError(
            _("The chair cannot leave; ask the secretariat to assign another chair first."), code="chair"
        )
    seat.delete()
    audit_record(actor=user, action="workinggroup.member_left", target=group, before={"user": user.email})
    forget_access(user)


@transaction.atomic
def member_remove(*, seat_id: int, actor) -> None:
    seat = GroupMember.objects.select_for_update().select_related("group", "user").filter(pk=seat_id).first()
    if seat is None:
        raise ApplicationError(_("This member does not exist."), code="not_found")
    _require_manager(actor, seat.group)
    if seat.role == Role.CHAIR:
        raise ApplicationError(_("The secretariat assigns the chair."), code="chair")
    seat.delete()
    audit_record(
        actor=actor, action="workinggroup.member_removed", target=seat.group, before={"user": seat.user.email}
    )
    forget_access(seat.user)


# --- Meetings ---------------------------------------------------------------------------------

MEETING_FIELDS = ("title", "starts_at", "ends_at", "location", "online_url", "agenda")


def _check_meeting_times(starts_at, ends_at) -> None:
    if ends_at <= starts_at:
        raise ApplicationError(_("A meeting must end after it starts."), code="times")


@transaction.atomic
def meeting_create(*, group_id: int, actor, data: dict) -> Meeting:
    group = _lock_group(group_id)
    _require_organizer(actor, group)
    _require_not_closed(group)
    fields = {k: data[k] for k in MEETING_FIELDS if k in data}
    _check_meeting_times(fields["starts_at"], fields["ends_at"])
    meeting = Meeting.objects.create(group=group, **fields)
    audit_record(
        actor=actor,
        action="meeting.created",
        target=meeting,
        after=model_to_dict(meeting, fields=MEETING_FIELDS),
    )
    return meeting


@transaction.atomic
def meeting_update(*, meeting_id: int, actor, data: dict) -> Meeting:
    meeting = Meeting.objects.select_for_update().select_related("group").get(pk=meeting_id)
    _require_organizer(actor, meeting.group)
    fields = (*MEETING_FIELDS, "minutes", "cancelled")
    before = model_to_dict(meeting, fields=fields)
    for field in fields:
        if field in data:
            setattr(meeting, field, data[field])
    _check_meeting_times(meeting.starts_at, meeting.ends_at)
    meeting.sequence = F("sequence") + 1
    meeting.save()
    meeting.refresh_from_db()
    audit_record(
        actor=actor,
        action="meeting.updated",
        target=meeting,
        before=before,
        after=model_to_dict(meeting, fields=fields),
    )
    return meeting


@transaction.atomic
def attendance_record(*, meeting_id: int, actor, present_user_ids: list[int]) -> int:
    """Record who attended: members listed are present, the group's other members absent."""
    meeting = Meeting.objects.select_for_update().select_related("group").get(pk=meeting_id)
    _require_organizer(actor, meeting.group)
    member_ids = set(GroupMember.objects.filter(group=meeting.group).values_list("user_id", flat=True))
    present = set(present_user_ids) & member_ids
    Attendance.objects.filter(meeting=meeting).delete()
    Attendance.objects.bulk_create(
        [Attendance(meeting=meeting, user_id=uid, present=uid in present) for uid in sorted(member_ids)]
    )
    audit_record(
        actor=actor, action="meeting.attendance_recorded", target=meeting, after={"present": sorted(present)}
    )
    return len(present)


# --- Documents --------------------------------------------------------------------------------


@transaction.atomic
def document_upload(
    *, group_id: int, actor, title: str, upload, description: str = "", note: str = ""
) -> Document:
    group = _lock_group(group_id)
    if not group_access(actor, group, fresh=True).can_contribute:
        raise ApplicationError(_("Only members of the working group can upload documents."), code="forbidden")
    _require_not_closed(group)
    name, content_type = validate_upload(upload)
    document = Document.objects.create(
        group=group, title=title.strip() or name, description=description, created_by=actor, current_version=1
    )
    version = DocumentVersion(
        document=document,
        number=1,
        original_name=name,
        size=upload.size,
        content_type=content_type,
        note=note,
        uploaded_by=actor,
    )
    _save_version(version, name, upload)
    audit_record(
        actor=actor,
        action="document.uploaded",
        target=document,
        after={"version": 1, "file": name, "size": upload.size},
    )
    return document


@transaction.atomic
def document_add_version(*, document_id: int, actor, upload, note: str = "") -> DocumentVersion:
    try:
        document = Document.objects.select_for_update().select_related("group").get(pk=document_id)
    except Document.DoesNotExist as exc:
        raise ApplicationError(_("This document does not exist."), code="not_found") from exc
    if not group_access(actor, document.group, fresh=True).can_contribute:
        raise ApplicationError(_("Only members of the working group can upload documents."), code="forbidden")
    _require_not_closed(document.group)
    name, content_type = validate_upload(upload)
    number = document.current_version + 1
    version = DocumentVersion(
        document=document,
        number=number,
        original_name=name,
        size=upload.size,
        content_type=content_type,
        note=note,
        uploaded_by=actor,
    )
    _save_version(version, name, upload)
    document.current_version = number
    document.save(update_fields=["current_version", "updated_at"])
    audit_record(
        actor=actor,
        action="document.version_added",
        target=document,
        after={"version": number, "file": name, "size": upload.size},
    )
    return version


def _save_version(version: DocumentVersion, name: str, upload) -> None:
    """Write the file, then the row. A file is not part of the transaction: when the row cannot
    be written the file is removed again, so a refused upload leaves nothing behind."""
    version.file.save(name, upload, save=False)
    try:
        version.save()
    except BaseException:
        version.file.storage.delete(version.file.name)
        raise


# --- Discussions ------------------------------------------------------------------------------


def _require_can_post(user, group: WorkingGroup) -> None:
    if not group_access(user, group, fresh=True).can_contribute:
        raise ApplicationError(_("Only members of the working group can post."), code="forbidden")
    _require_not_closed(group)


@transaction.atomic
def thread_create(*, group_id: int, actor, title: str, body: str) -> Thread:
    group = _lock_group(group_id)
    _require_can_post(actor, group)
    title, body = title.strip(), body.strip()
    if not title or not body:
        raise ApplicationError(_("A thread needs a title and a first message."), code="empty")
    now = timezone.now()
    thread = Thread.objects.create(group=group, title=title, author=actor, last_post_at=now, post_count=1)
    post = Post.objects.create(thread=thread, author=actor, body=body)
    audit_record(actor=actor, action="thread.created", target=thread, after={"title": title, "post": post.pk})
    transaction.on_commit(partial(post_notify_task.delay, post.pk))
    return thread


@transaction.atomic
def post_create(*, thread_id: int, actor, body: str) -> Post:
    thread = Thread.objects.select_for_update().select_related("group").filter(pk=thread_id).first()
    if thread is None:
        raise ApplicationError(_("This thread does not exist."), code="not_found")
    _require_can_post(actor, thread.group)
    if thread.is_locked:
        raise ApplicationError(_("The chair locked this thread."), code="locked")
    body = body.strip()
    if not body:
        raise ApplicationError(_("Write a message first."), code="empty")
    post = Post.objects.create(thread=thread, author=actor, body=body)
    Thread.objects.filter(pk=thread.pk).update(last_post_at=post.created_at, post_count=F("post_count") + 1)
    audit_record(actor=actor, action="post.created", target=post, after={"thread": thread.pk})
    transaction.on_commit(partial(post_notify_task.delay, post.pk))
    return post


@transaction.atomic
def post_edit(*, post_id: int, actor, body: str) -> Post:
    post = Post.objects.select_for_update().select_related("thread__group").filter(pk=post_id).first()
    if post is None:
        raise ApplicationError(_("This message does not exist."), code="not_found")
    if post.author_id != getattr(actor, "pk", None):
        raise ApplicationError(_("Only the author can edit a message."), code="forbidden")
    # Authorship is not enough: the author must still be a member of the group now (a removed
    # member keeps authorship of old posts but no longer writes there).
    _require_can_post(actor, post.thread.group)
    if timezone.now() - post.created_at > EDIT_WINDOW:
        raise ApplicationError(
            _("Messages can be edited for %(minutes)d minutes after posting.")
            % {"minutes": EDIT_WINDOW.seconds // 60},
            code="edit_window",
        )
    if post.is_hidden or post.thread.is_locked:
        raise ApplicationError(_("This message can no longer be edited."), code="not_editable")
    body = body.strip()
    if not body:
        raise ApplicationError(_("Write a message first."), code="empty")
    before = {"body": post.body}
    post.body = body
    post.edited_at = timezone.now()
    post.save(update_fields=["body", "edited_at", "updated_at"])
    audit_record(actor=actor, action="post.edited", target=post, before=before, after={"body": body})
    return post


@transaction.atomic
def thread_set_locked(*, thread_id: int, actor, locked: bool) -> Thread:
    thread = Thread.objects.select_for_update().select_related("group").get(pk=thread_id)
    _require_manager(actor, thread.group)
    thread.is_locked = locked
    thread.save(update_fields=["is_locked", "updated_at"])
    audit_record(
        actor=actor,
        action="thread.locked" if locked else "thread.unlocked",
        target=thread,
        after={"locked": locked},
    )
    return thread


@transaction.atomic
def post_set_hidden(*, post_id: int, actor, hidden: bool) -> Post:
    post = Post.objects.select_for_update().select_related("thread__group").get(pk=post_id)
    _require_manager(actor, post.thread.group)
    post.is_hidden = hidden
    post.hidden_by = actor if hidden else None
    post.save(update_fields=["is_hidden", "hidden_by", "updated_at"])
    audit_record(
        actor=actor,
        action="post.hidden" if hidden else "post.unhidden",
        target=post,
        after={"hidden": hidden},
    )
    return post


# --- Personal settings ------------------------------------------------------------------------


def member_settings_get(*, user) -> MemberSettings:
    settings_row = MemberSettings.objects.filter(user=user).first()
    if settings_row is None:
        try:
            with transaction.atomic():
                settings_row = MemberSettings.objects.create(user=user, feed_token=MemberSettings.new_token())
        except IntegrityError:
            settings_row = MemberSettings.objects.get(user=user)
    return settings_row


@transaction.atomic
def member_settings_update(*, user, notify: str) -> MemberSettings:
    if notify not in MemberSettings.Notify.values:
        raise ApplicationError(_("Unknown notification setting."), code="notify")
    row = member_settings_get(user=user)
    row = MemberSettings.objects.select_for_update().get(pk=row.pk)
    before = {"notify": row.notify}
    row.notify = notify
    row.save(update_fields=["notify"])
    audit_record(
        actor=user, action="wgsettings.notify_changed", target=row, before=before, after={"notify": notify}
    )
    return row


@transaction.atomic
def feed_token_regenerate(*, user) -> MemberSettings:
    row = member_settings_get(user=user)
    row = MemberSettings.objects.select_for_update().get(pk=row.pk)
    row.feed_token = MemberSettings.new_token()
    row.save(update_fields=["feed_token"])
    audit_record(actor=user, action="wgsettings.feed_token_regenerated", target=row)
    return row


# --- Votes ------------------------------------------------------------------------------------


@transaction.atomic
def motion_create(
    *,
    group_id: int,
    actor,
    title: str,
    description: str,
    options: list[str],
    scope: str,
    is_secret: bool,
    opens_at: datetime.datetime,
    closes_at: datetime.datetime,
    quorum_kind: str,
    quorum_value: int,
) -> Motion:
    group = _lock_group(group_id)
    _require_manager(actor, group)
    if group.status != Status.ACTIVE:
        raise ApplicationError(_("Only an active working group can vote."), code="not_active")
    labels = []
    for label in options:
        label = label.strip()
        if label and label not in labels:
            labels.append(label)
    if len(labels) < 2:
        raise ApplicationError(_("A motion needs at least two different options."), code="options")
    if closes_at <= opens_at:
        raise ApplicationError(_("Voting must close after it opens."), code="times")
    if closes_at <= timezone.now():
        raise ApplicationError(_("The closing time is already past."), code="times")
    if scope not in Motion.Scope.values or quorum_kind not in Motion.QuorumKind.values:
        raise ApplicationError(_("Unknown ballot or quorum setting."), code="invalid")
    if quorum_value < 1 or (quorum_kind == Motion.QuorumKind.PERCENT and quorum_value > 100):
        raise ApplicationError(_("The quorum must be at least 1 (and at most 100 %)."), code="quorum")
    motion = Motion.objects.create(
        group=group,
        title=title.strip(),
        description=description,
        scope=scope,
        is_secret=is_secret,
        opens_at=opens_at,
        closes_at=closes_at,
        quorum_kind=quorum_kind,
        quorum_value=quorum_value,
        created_by=actor,
    )
    MotionOption.objects.bulk_create(
        [MotionOption(motion=motion, label=label, position=i) for i, label in enumerate(labels)]
    )
    audit_record(
        actor=actor,
        action="motion.created",
        target=motion,
        after={
            "title": motion.title,
            "options": labels,
            "scope": scope,
            "secret": is_secret,
            "opens_at": opens_at,
            "closes_at": closes_at,
            "quorum": f"{quorum_value} {quorum_kind}",
        },
    )
    return motion


def _represents_active_member(seat: GroupMember) -> bool:
    membership = getattr(seat.organization, "membership", None) if seat.organization_id else None
    return membership is not None and membership.status == Membership.Status.ACTIVE


def voter_eligibility(*, motion: Motion, user) -> tuple[GroupMember | None, str | None]:
    """The seat a person votes with, or (None, reason) when they may not vote."""
    if not (user and user.is_authenticated):
        return None, _("Log in to vote.")
    seat = (
        GroupMember.objects.filter(group_id=motion.group_id, user=user)
        .select_related("organization__membership")
        .first()
    )
    if seat is None or not seat.has_voting_right:
        return None, _("Only members of the working group with voting rights can vote.")
    if motion.scope == Motion.Scope.ORGANIZATION and not (
        _represents_active_member(seat)
        # The seat names an organization; the person must still hold a role in it now.
        and OrgRole.objects.filter(organization_id=seat.organization_id, user=user).exists()
    ):
        return None, _("This motion takes one vote per member organization; you do not represent one.")
    return seat, None


@transaction.atomic
def ballot_cast(*, motion_id: int, voter, option_id: int) -> Ballot:
    # Lock the motion: ballots on one motion are cast one after another, so the checks below
    # hold; the unique constraints refuse anything a race could still let through.
    motion = Motion.objects.select_for_update().select_related("group").filter(pk=motion_id).first()
    if motion is None:
        raise ApplicationError(_("This motion does not exist."), code="not_found")
    now = timezone.now()
    if motion.group.status == Status.CLOSED:
        raise ApplicationError(_("This working group is closed."), code="closed")
    if now < motion.opens_at:
        raise ApplicationError(_("Voting has not opened yet."), code="not_open")
    if now >= motion.closes_at:
        raise ApplicationError(_("Voting has closed."), code="closed")
    seat, reason = voter_eligibility(motion=motion, user=voter)
    if seat is None:
        raise ApplicationError(reason, code="not_eligible")
    option = MotionOption.objects.filter(motion=motion, pk=option_id).first()
    if option is None:
        raise ApplicationError(_("Choose one of the motion's options."), code="option")
    if Ballot.objects.filter(motion=motion, voter=voter).exists():
        raise ApplicationError(_("You have already voted on this motion."), code="double_vote")
    organization_id = seat.organization_id if motion.scope == Motion.Scope.ORGANIZATION else None
    if organization_id and Ballot.objects.filter(motion=motion, organization_id=organization_id).exists():
        raise ApplicationError(
            _("Your organization has already voted on this motion."), code="double_vote_org"
        )
    try:
        with transaction.atomic():
            ballot = Ballot.objects.create(
                motion=motion, option=option, voter=voter, organization_id=organization_id, cast_at=now
            )
    except IntegrityError as exc:
        raise ApplicationError(
            _("A ballot was already cast for you or your organization."), code="double_vote"
        ) from exc
    # A secret ballot's choice lives on the ballot row only, never in the audit log.
    after = {"motion": motion.pk, "organization": organization_id}
    if not motion.is_secret:
        after["option"] = option.label
    audit_record(actor=voter, action="ballot.cast", target=motion, after=after)
    return ballot
