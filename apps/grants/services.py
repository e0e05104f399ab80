"""Every change to grant programs: applications, attachments, reviews, decisions, awards, reports.

Each service is one use case: transactional, locks what it checks, writes its AuditEvent and sends
its e-mails after commit. Deadlines compare ``timezone.now()`` read after the row lock is taken, so
a call closed at 17:00:00 refuses a submission committed at 17:00:00.000001.

Lock order: call, then application, then assignment (then, inside ``grant_create``, pool period and
grant). Awards lock the call, so concurrent awards of one call are checked against its budget one
after the other.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from apps.core.exceptions import ApplicationError
from apps.core.files import safe_upload_name
from apps.core.permissions import has_perm
from apps.core.validators import normalize_corporate_number, validate_corporate_number
from apps.governance.services import audit_record
from apps.grants import tasks
from apps.grants.conflicts import conflicted_user_ids, with_live_conflict
from apps.grants.models import (
    Application,
    Assignment,
    Attachment,
    Award,
    AwardLine,
    Call,
    Report,
    Reviewer,
    Score,
)
from apps.organizations.models import Membership, Organization, OrganizationKind, OrgRole
from apps.providers.models import PoolPeriod, QuotaGrant, ResourcePool

Status = Application.Status
AStatus = Assignment.Status

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 10
# Accepted uploads: the type is decided by the file's first bytes, not by its name or the browser.
ATTACHMENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "txt": "text/plain",
    "md": "text/plain",
    "csv": "text/csv",
}
FINAL_REPORT_DAYS_AFTER_END = 30
PROGRESS_REPORT_MIN_DAYS = 90
REMINDER_DAYS_BEFORE = 7

APPLICATION_FIELDS = (
    "org_name_ja",
    "org_name_en",
    "org_kind",
    "org_corporate_number",
    "founded_on",
    "pi_name",
    "pi_email",
    "pi_position",
    "title",
    "abstract",
    "plan",
    "requested_hours",
    "duration_months",
    "answers",
)


# --- helpers -------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _require_staff(actor) -> None:
    if not (actor is not None and has_perm(actor, "grants.manage_programs")):
        raise ApplicationError(_("Only the secretariat can do this."), code="forbidden")


def _lock_call(call_id: int) -> Call:
    try:
        return Call.objects.select_for_update().select_related("program").get(pk=call_id)
    except Call.DoesNotExist as exc:
        raise ApplicationError(_("This call does not exist."), code="not_found") from exc


def _lock_application(application_id: int) -> Application:
    try:
        return (
            Application.objects.select_for_update(of=("self",))
            .select_related("call__program", "organization__membership", "applicant")
            .get(pk=application_id)
        )
    except Application.DoesNotExist as exc:
        raise ApplicationError(_("This application does not exist."), code="not_found") from exc


def _lock_call_then_application(application_id: int) -> tuple[Call, Application]:
    call_id = Application.objects.filter(pk=application_id).values_list("call_id", flat=True).first()
    if call_id is None:
        raise ApplicationError(_("This application does not exist."), code="not_found")
    call = _lock_call(call_id)
    return call, _lock_application(application_id)


def _snapshot(application: Application) -> dict:
    data = {name: getattr(application, name) for name in APPLICATION_FIELDS}
    data["organization"] = application.organization_id
    data["status"] = application.status
    return data


def _notify(application: Application, event: str) -> None:
    transaction.on_commit(partial(tasks.application_notify_task.delay, application.pk, event))


def _check_open(call: Call, now: datetime) -> None:
    local = timezone.localtime
    if now < call.opens_at:
        raise ApplicationError(
            _("This call opens on %(opens)s.") % {"opens": f"{local(call.opens_at):%Y-%m-%d %H:%M:%S}"},
            code="not_open",
        )
    if now >= call.closes_at:
        raise ApplicationError(
            _(
                "This call closed on %(closes)s (Japan time); applications can no longer be changed "
                "or submitted."
            )
            % {"closes": f"{local(call.closes_at):%Y-%m-%d %H:%M:%S}"},
            code="closed",
        )


def _clean_hours_per_class(call: Call, requested) -> dict[str, int]:
    if not isinstance(requested, dict):
        raise ApplicationError(_("Enter the GPU-hours you request per GPU class."), code="invalid")
    cleaned = {}
    for gpu_class, hours in requested.items():
        if hours in (None, "", 0):
            continue
        if isinstance(hours, bool) or not isinstance(hours, int) or hours < 0:
            raise ApplicationError(
                _("GPU-hours for %(cls)s must be a whole number, zero or more.") % {"cls": gpu_class},
                code="invalid",
            )
        if gpu_class not in (call.budget or {}):
            raise ApplicationError(
                _("This call has no budget for %(cls)s.") % {"cls": gpu_class}, code="unknown_class"
            )
        cleaned[gpu_class] = hours
    return cleaned


def _clean_application_data(call: Call, applicant, data: dict) -> dict:
    cleaned = {k: v for k, v in data.items() if k in APPLICATION_FIELDS}
    for text in ("org_name_ja", "org_name_en", "pi_name", "pi_position", "title", "abstract", "plan"):
        if text in cleaned:
            cleaned[text] = (cleaned[text] or "").strip()
    if "org_corporate_number" in cleaned:
        number = normalize_corporate_number(cleaned["org_corporate_number"] or "")
        if number:
            try:
                validate_corporate_number(number)
            except ValidationError as exc:
                raise ApplicationError(exc.messages[0], code="invalid") from exc
        cleaned["org_corporate_number"] = number
    if cleaned.get("org_kind") and cleaned["org_kind"] not in OrganizationKind.values:
        raise ApplicationError(_("Choose a valid organization kind."), code="invalid")
    if "requested_hours" in cleaned:
        cleaned["requested_hours"] = _clean_hours_per_class(call, cleaned["requested_hours"])
    if "duration_months" in cleaned:
        months = cleaned["duration_months"]
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 36:
            raise ApplicationError(_("The duration must be between 1 and 36 months."), code="invalid")
    if "answers" in cleaned:
        answers = cleaned["answers"] or {}
        questions = {q.key: q for q in call.questions.all()}
        if not isinstance(answers, dict) or any(k not in questions for k in answers):
            raise ApplicationError(_("These answers do not belong to this call's questions."), code="invalid")
        for key, value in answers.items():
            if not isinstance(value, str) or len(value) > questions[key].max_length:
                raise ApplicationError(
                    _("The answer to “%(question)s” is too long.") % {"question": questions[key].label},
                    code="invalid",
                )
        cleaned["answers"] = {k: v.strip() for k, v in answers.items()}
    if "organization" in data:
        organization = data["organization"]
        if (
            organization is not None
            and not OrgRole.objects.filter(organization=organization, user=applicant).exists()
        ):
            raise ApplicationError(
                _("You can only apply for an organization you belong to."), code="forbidden"
            )
        cleaned["organization"] = organization
        if organization is not None:  # the typed details are for organizations not on the portal
            cleaned.update(org_name_ja="", org_name_en="", org_kind="", org_corporate_number="")
    return cleaned


def _clean_preferred_pools(pool_ids) -> list[ResourcePool]:
    ids = sorted(set(pool_ids or []))
    pools = list(ResourcePool.objects.filter(pk__in=ids, is_active=True))
    if len(pools) != len(ids):
        raise ApplicationError(_("Some of the chosen pools do not exist or are not active."), code="invalid")
    return pools


def eligibility_problems(application: Application, *, today: date) -> list[str]:
    """Why the application cannot be submitted to its program, in words the applicant can act on."""
    call = application.call
    program = call.program
    problems: list[str] = []
    organization = application.organization
    if organization is not None:
        kind, name = organization.kind, organization.display_name
        membership = Membership.objects.filter(organization=organization).first()
        is_member = membership is not None and membership.status == Membership.Status.ACTIVE
        if not is_member and not program.allows_non_members:
            problems.append(
                _(
                    "This program is open to members of the alliance only, and %(org)s has no active "
                    "membership."
                )
                % {"org": name}
            )
    else:
        kind, name = application.org_kind, application.organization_name
        if not program.allows_non_members:
            problems.append(
                _(
                    "This program is open to members of the alliance only: choose one of your member "
                    "organizations."
                )
            )
        if not (application.org_name_ja and application.org_kind):
            problems.append(_("Give your organization's name and kind."))
        existing = (
            Organization.objects.filter(corporate_number=application.org_corporate_number).first()
            if application.org_corporate_number
            else None
        )
        if (
            existing is not None
            and not OrgRole.objects.filter(organization=existing, user_id=application.applicant_id).exists()
        ):
            problems.append(
                _(
                    "%(org)s is already on the portal: ask its administrators to invite you, then apply for "
                    "it."
                )
                % {"org": existing.display_name}
            )
        if (
            OrganizationKind.requires_corporate_number(application.org_kind)
            and not application.org_corporate_number
        ):
            problems.append(_("Companies must give their 13-digit corporate number."))
    if kind and kind not in program.eligible_kinds:
        problems.append(
            _("This program is open to %(kinds)s; %(org)s is registered as %(kind)s.")
            % {
                "kinds": " / ".join(program.eligible_kind_labels()),
                "org": name,
                "kind": dict(OrganizationKind.choices).get(kind, kind),
            }
        )
    if program.max_company_age_years is not None:
        years = program.max_company_age_years
        if application.founded_on is None:
            problems.append(
                _(
                    "Give your company's founding date: this program is for companies at most %(years)s "
                    "years old."
                )
                % {"years": years}
            )
        elif application.founded_on > today:
            problems.append(_("The founding date cannot be in the future."))
        elif application.founded_on < _years_before(today, years):
            problems.append(
                _(
                    "This program is for companies founded at most %(years)s years ago; %(org)s was "
                    "founded on %(date)s."
                )
                % {"years": years, "org": name, "date": application.founded_on.isoformat()}
            )
    requested = application.requested_hours or {}
    if not any(requested.values()):
        problems.append(_("Request GPU-hours for at least one GPU class."))
    unknown = sorted(set(requested) - set(call.budget or {}))
    if unknown:
        problems.append(_("This call has no budget for %(cls)s.") % {"cls": ", ".join(unknown)})
    if application.total_requested > program.max_gpu_hours:
        problems.append(
            _("This program awards at most %(max)s GPU-hours; %(asked)s were requested.")
            % {"max": f"{program.max_gpu_hours:,}", "asked": f"{application.total_requested:,}"}
        )
    if application.duration_months > program.max_duration_months:
        problems.append(
            _("This program's awards last at most %(max)s months; %(asked)s were requested.")
            % {"max": program.max_duration_months, "asked": application.duration_months}
        )
    if not (application.title and application.abstract and application.plan and application.pi_name):
        problems.append(_("Fill in the title, the abstract, the plan and the principal investigator."))
    for question in call.questions.all():
        if question.required and not (application.answers or {}).get(question.key):
            problems.append(_("Answer the question “%(question)s”.") % {"question": question.label})
    return problems


# --- applications --------------------------------------------------------------------------------


@transaction.atomic
def application_create(
    *, call_id: int, applicant, data: dict, preferred_pool_ids=(), now: datetime | None = None
) -> Application:
    """Start a draft for an open call."""
    call = Call.objects.select_related("program").filter(pk=call_id, is_published=True).first()
    if call is None:
        raise ApplicationError(_("This call does not exist."), code="not_found")
    _check_open(call, now or timezone.now())
    cleaned = _clean_application_data(call, applicant, data)
    pools = _clean_preferred_pools(preferred_pool_ids)
    application = Application(call=call, applicant=applicant, status=Status.DRAFT, **cleaned)
    try:
        with transaction.atomic():
            application.save()
    except IntegrityError as exc:
        raise ApplicationError(
            _("This organization already has an application in this call."), code="duplicate"
        ) from exc
    application.preferred_pools.set(pools)
    audit_record(
        actor=applicant, action="grant_application.created", target=application, after=_snapshot(application)
    )
    return application


@transaction.atomic
def application_update(
    *, application_id: int, actor, data: dict, preferred_pool_ids=(), now: datetime | None = None
) -> Application:
    """Change a draft or a submitted application, only before the call's deadline. A submitted
    application must stay eligible."""
    application = _lock_application(application_id)
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can edit this application."), code="forbidden")
    if application.status not in (Status.DRAFT, Status.SUBMITTED):
        raise ApplicationError(
            _("This application can no longer be edited (status: %(status)s).")
            % {"status": application.get_status_display()},
            code="not_editable",
        )
    now = now or timezone.now()
    _check_open(application.call, now)
    before = _snapshot(application)
    cleaned = _clean_application_data(application.call, actor, data)
    for name, value in cleaned.items():
        setattr(application, name, value)
    if application.status == Status.SUBMITTED:
        problems = eligibility_problems(application, today=timezone.localdate(now))
        if problems:
            raise ApplicationError(" ".join(problems), code="ineligible", extra={"problems": problems})
    try:
        with transaction.atomic():
            application.save()
    except IntegrityError as exc:
        raise ApplicationError(
            _("This organization already has an application in this call."), code="duplicate"
        ) from exc
    application.preferred_pools.set(_clean_preferred_pools(preferred_pool_ids))
    audit_record(
        actor=actor,
        action="grant_application.updated",
        target=application,
        before=before,
        after=_snapshot(application),
    )
    return application


@transaction.atomic
def application_submit(*, application_id: int, actor, now: datetime | None = None) -> Application:
    """Submit a draft: refused after the deadline (to the second) or when not eligible, with reasons."""
    application = _lock_application(application_id)
    now = now or timezone.now()  # read after the lock: a submission racing the deadline is judged here
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can submit this application."), code="forbidden")
    if application.status != Status.DRAFT:
        raise ApplicationError(_("Only a draft can be submitted."), code="bad_transition")
    _check_open(application.call, now)
    problems = eligibility_problems(application, today=timezone.localdate(now))
    if problems:
        raise ApplicationError(
            _("This application is not eligible: %(reasons)s") % {"reasons": " ".join(problems)},
            code="ineligible",
            extra={"problems": problems},
        )
    before = application.status
    application.status = Status.SUBMITTED
    application.submitted_at = now
    application.save(update_fields=["status", "submitted_at", "updated_at"])
    audit_record(
        actor=actor,
        action="grant_application.submitted",
        target=application,
        before={"status": before},
        after=_snapshot(application),
    )
    _notify(application, "submitted")
    return application


@transaction.atomic
def application_withdraw(*, application_id: int, actor, reason: str = "") -> Application:
    application = _lock_application(application_id)
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can withdraw this application."), code="forbidden")
    if application.status not in Application.WITHDRAWABLE:
        raise ApplicationError(
            _("Only a draft or a submitted application without a decision can be withdrawn."),
            code="bad_transition",
        )
    before = application.status
    application.status = Status.WITHDRAWN
    application.save(update_fields=["status", "updated_at"])
    # Reviewers have nothing left to review.
    released = application.assignments.filter(status=AStatus.ASSIGNED).delete()[0]
    audit_record(
        actor=actor,
        action="grant_application.withdrawn",
        target=application,
        before={"status": before},
        after={"status": application.status, "reason": reason, "assignments_released": released},
    )
    _notify(application, "withdrawn")
    return application


# --- attachments ---------------------------------------------------------------------------------


def _sniff(head: bytes, extension: str) -> str | None:
    """The content type of an upload from its first bytes, if it is one we accept."""
    expected = ATTACHMENT_TYPES.get(extension)
    if expected is None:
        return None
    if expected == "application/pdf":
        return expected if head.startswith(b"%PDF-") else None
    if expected == "image/png":
        return expected if head.startswith(b"\x89PNG\r\n\x1a\n") else None
    if expected == "image/jpeg":
        return expected if head.startswith(b"\xff\xd8\xff") else None
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character may be cut at the end of the sample.
        if exc.start < len(head) - 4:
            return None
    return expected


@transaction.atomic
def attachment_add(*, application_id: int, actor, uploaded_file, now: datetime | None = None) -> Attachment:
    application = _lock_application(application_id)
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can add attachments."), code="forbidden")
    if application.status not in (Status.DRAFT, Status.SUBMITTED):
        raise ApplicationError(_("This application can no longer be changed."), code="not_editable")
    _check_open(application.call, now or timezone.now())
    if application.attachments.count() >= MAX_ATTACHMENTS:
        raise ApplicationError(
            _("An application has at most %(max)s attachments.") % {"max": MAX_ATTACHMENTS}, code="too_many"
        )
    size = uploaded_file.size or 0
    if size == 0:
        raise ApplicationError(_("The file is empty."), code="invalid_file")
    if size > MAX_ATTACHMENT_BYTES:
        raise ApplicationError(
            _("Files may be at most %(mb)s MB.") % {"mb": MAX_ATTACHMENT_BYTES // (1024 * 1024)},
            code="too_large",
        )
    # A long name loses the end of its stem, never its extension (the type check reads it).
    name = safe_upload_name(
        uploaded_file.name, max_chars=Attachment._meta.get_field("original_name").max_length
    )
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    uploaded_file.seek(0)
    head = uploaded_file.read(2048)
    uploaded_file.seek(0)
    content_type = _sniff(head, extension)
    if content_type is None:
        raise ApplicationError(
            _("Only PDF, PNG, JPEG and plain-text (.txt, .md, .csv) files are accepted."), code="invalid_type"
        )
    attachment = Attachment(
        application=application,
        original_name=name,
        content_type=content_type,
        size=size,
        uploaded_by=actor,
    )
    attachment.file.save("upload", uploaded_file, save=False)
    stored, storage = attachment.file.name, attachment.file.storage
    try:  # a failure from here on leaves no stored file behind
        attachment.save()
        audit_record(
            actor=actor,
            action="grant_application.attachment_added",
            target=application,
            after={"attachment": attachment.pk, "name": name, "size": size, "type": content_type},
        )
    except Exception:
        storage.delete(stored)
        raise
    return attachment


@transaction.atomic
def attachment_remove(*, attachment_id: int, actor, now: datetime | None = None) -> None:
    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is None:
        raise ApplicationError(_("This attachment does not exist."), code="not_found")
    application = _lock_application(attachment.application_id)
    if application.applicant_id != actor.pk:
        raise ApplicationError(_("Only the applicant can remove attachments."), code="forbidden")
    if application.status not in (Status.DRAFT, Status.SUBMITTED):
        raise ApplicationError(_("This application can no longer be changed."), code="not_editable")
    _check_open(application.call, now or timezone.now())
    name, stored, storage = attachment.original_name, attachment.file.name, attachment.file.storage
    attachment.delete()
    audit_record(
        actor=actor,
        action="grant_application.attachment_removed",
        target=application,
        before={"attachment": attachment_id, "name": name},
    )
    transaction.on_commit(lambda: storage.delete(stored))


# --- reviewers and assignments -------------------------------------------------------------------


@transaction.atomic
def reviewer_add(*, call_id: int, user, actor) -> Reviewer:
    _require_staff(actor)
    call = _lock_call(call_id)
    if user is None or not user.is_active:
        raise ApplicationError(_("There is no active account with this e-mail address."), code="not_found")
    if Reviewer.objects.filter(call=call, user=user).exists():
        raise ApplicationError(
            _("%(user)s already reviews this call.") % {"user": user.email}, code="duplicate"
        )
    reviewer = Reviewer.objects.create(call=call, user=user, added_by=actor)
    audit_record(actor=actor, action="grant_reviewer.added", target=call, after={"user": user.pk})
    return reviewer


@transaction.atomic
def reviewer_remove(*, reviewer_id: int, actor) -> None:
    _require_staff(actor)
    reviewer = Reviewer.objects.filter(pk=reviewer_id).select_related("user").first()
    if reviewer is None:
        raise ApplicationError(_("This reviewer does not exist."), code="not_found")
    call = _lock_call(reviewer.call_id)
    pending = Assignment.objects.filter(
        application__call=call, reviewer=reviewer.user, status=AStatus.ASSIGNED
    ).count()
    if pending:
        raise ApplicationError(
            _("%(user)s still has %(count)s reviews to do; reassign them first.")
            % {"user": reviewer.user.email, "count": pending},
            code="has_assignments",
        )
    reviewer.delete()
    audit_record(actor=actor, action="grant_reviewer.removed", target=call, before={"user": reviewer.user_id})


def _assign(application: Application, user, actor) -> Assignment:
    assignment = Assignment.objects.create(application=application, reviewer=user, assigned_by=actor)
    audit_record(
        actor=actor,
        action="grant_assignment.created",
        target=application,
        after={"assignment": assignment.pk, "reviewer": user.pk},
    )
    transaction.on_commit(partial(tasks.assignment_notify_task.delay, assignment.pk))
    return assignment


@transaction.atomic
def assignment_create(*, application_id: int, reviewer_user, actor) -> Assignment:
    """Assign a reviewer of the call to an application; refused on a conflict of interest."""
    _require_staff(actor)
    _call, application = _lock_call_then_application(application_id)
    if application.status not in Application.DECIDABLE:
        raise ApplicationError(
            _("Only submitted applications without a decision can be assigned."), code="bad_transition"
        )
    if (
        reviewer_user is None
        or not Reviewer.objects.filter(call_id=application.call_id, user=reviewer_user).exists()
    ):
        raise ApplicationError(_("Add this person to the call's reviewers first."), code="not_reviewer")
    if conflicted_user_ids(application, [reviewer_user.pk]):
        raise ApplicationError(
            _("%(user)s belongs to the applicant organization and cannot review this application.")
            % {"user": reviewer_user.email},
            code="conflict",
        )
    existing = Assignment.objects.filter(application=application, reviewer=reviewer_user).first()
    if existing is not None:
        message = (
            _("%(user)s declared a conflict of interest with this application.")
            if existing.status == AStatus.CONFLICT
            else _("%(user)s is already assigned to this application.")
        )
        raise ApplicationError(message % {"user": reviewer_user.email}, code="duplicate")
    return _assign(application, reviewer_user, actor)


@dataclass
class AutoAssignResult:
    created: int = 0
    short: list[int] = field(default_factory=list)  # applications left with fewer reviews than asked


@transaction.atomic
def assignments_auto(*, call_id: int, actor) -> AutoAssignResult:
    """Give every submitted application of the call its number of reviews, spreading the load as
    evenly as possible over the reviewers without a conflict. Deterministic: applications in id
    order, each to the least-loaded eligible reviewers (ties by user id)."""
    _require_staff(actor)
    call = _lock_call(call_id)
    applications = list(
        Application.objects.select_for_update()
        .filter(call=call, status__in=Application.DECIDABLE)
        .order_by("pk")
    )
    reviewers = sorted(Reviewer.objects.filter(call=call).select_related("user"), key=lambda r: r.user_id)
    if not reviewers:
        raise ApplicationError(_("Add reviewers to the call first."), code="no_reviewers")
    users = {r.user_id: r.user for r in reviewers}
    assignments = with_live_conflict(Assignment.objects.filter(application__call=call)).values_list(
        "application_id", "reviewer_id", "status", "live_conflict"
    )
    taken: dict[int, set[int]] = defaultdict(set)  # any assignment, conflicts included
    active: dict[int, int] = defaultdict(int)
    load: dict[int, int] = dict.fromkeys(users, 0)
    for application_id, user_id, status, live_conflict in assignments:
        taken[application_id].add(user_id)
        # A reviewer who became conflicted after being assigned no longer counts: somebody else is
        # assigned in their place.
        if status in Assignment.ACTIVE and not live_conflict:
            active[application_id] += 1
            if user_id in load:
                load[user_id] += 1
    roles: dict[int, set[int]] = defaultdict(set)
    numbers: dict[int, set[str]] = defaultdict(set)
    for user_id, org_id, number in OrgRole.objects.filter(user_id__in=users).values_list(
        "user_id", "organization_id", "organization__corporate_number"
    ):
        roles[user_id].add(org_id)
        if number:
            numbers[user_id].add(number)
    result = AutoAssignResult()
    for application in applications:
        need = call.reviews_per_application - active[application.pk]
        if need <= 0:
            continue
        candidates = [
            user_id
            for user_id in users
            if user_id not in taken[application.pk]
            and user_id != application.applicant_id
            and application.organization_id not in roles[user_id]
            and not (
                application.org_corporate_number and application.org_corporate_number in numbers[user_id]
            )
        ]
        candidates.sort(key=lambda user_id: (load[user_id], user_id))
        for user_id in candidates[:need]:
            _assign(application, users[user_id], actor)
            load[user_id] += 1
            result.created += 1
        if len(candidates) < need:
            result.short.append(application.pk)
    audit_record(
        actor=actor,
        action="grant_call.auto_assigned",
        target=call,
        after={"created": result.created, "short": result.short},
    )
    return result


def _lock_assignment(assignment_id: int) -> tuple[Application, Assignment]:
    application_id = (
        Assignment.objects.filter(pk=assignment_id).values_list("application_id", flat=True).first()
    )
    if application_id is None:
        raise ApplicationError(_("This review does not exist."), code="not_found")
    application = _lock_application(application_id)
    assignment = Assignment.objects.select_for_update().get(pk=assignment_id)
    return application, assignment


@transaction.atomic
def assignment_declare_conflict(*, assignment_id: int, actor, reason: str) -> Assignment:
    """The reviewer declares a conflict of interest: the assignment is released for good (staff
    assign somebody else) and the reviewer no longer sees the application."""
    application, assignment = _lock_assignment(assignment_id)
    if assignment.reviewer_id != actor.pk:
        raise ApplicationError(_("This review is not assigned to you."), code="forbidden")
    if assignment.status != AStatus.ASSIGNED:
        raise ApplicationError(
            _("A conflict can only be declared before the review is submitted."), code="bad_transition"
        )
    if not (reason or "").strip():
        raise ApplicationError(_("Describe the conflict of interest."), code="reason_required")
    assignment.status = AStatus.CONFLICT
    assignment.conflict_reason = reason.strip()
    assignment.save(update_fields=["status", "conflict_reason", "updated_at"])
    audit_record(
        actor=actor,
        action="grant_assignment.conflict_declared",
        target=application,
        after={"assignment": assignment.pk, "reason": assignment.conflict_reason},
    )
    transaction.on_commit(partial(tasks.conflict_notify_task.delay, assignment.pk))
    return assignment


@transaction.atomic
def assignment_release_conflicted(*, assignment_id: int, actor) -> Assignment:
    """Staff release an assignment whose reviewer is in conflict now (a role in the applicant
    organization gained after the assignment): it becomes a recorded conflict for good, its scores
    stop counting, and staff assign somebody else."""
    _require_staff(actor)
    application, assignment = _lock_assignment(assignment_id)
    if assignment.status not in Assignment.ACTIVE:
        raise ApplicationError(_("This assignment was released."), code="bad_transition")
    if not conflicted_user_ids(application, [assignment.reviewer_id]):
        raise ApplicationError(
            _("This reviewer has no conflict of interest with the application."), code="no_conflict"
        )
    before = {"assignment": assignment.pk, "status": assignment.status}
    assignment.status = AStatus.CONFLICT
    assignment.conflict_reason = _("Role in the applicant organization (found by the portal).")
    assignment.save(update_fields=["status", "conflict_reason", "updated_at"])
    audit_record(
        actor=actor,
        action="grant_assignment.conflict_released",
        target=application,
        before=before,
        after={"assignment": assignment.pk, "status": assignment.status, "reviewer": assignment.reviewer_id},
    )
    return assignment


@transaction.atomic
def review_submit(*, assignment_id: int, actor, scores: dict, comment: str = "") -> Assignment:
    """Score every criterion of the rubric (0 to its highest score) with comments. A review may be
    revised until the application is decided."""
    application, assignment = _lock_assignment(assignment_id)
    if assignment.reviewer_id != actor.pk:
        raise ApplicationError(_("This review is not assigned to you."), code="forbidden")
    if assignment.status not in Assignment.ACTIVE:
        raise ApplicationError(_("This assignment was released."), code="bad_transition")
    if conflicted_user_ids(application, [actor.pk]):
        raise ApplicationError(
            _("You now have a role in the applicant organization: this review is blocked."), code="conflict"
        )
    if application.status not in Application.DECIDABLE:
        raise ApplicationError(
            _("This application is already decided; reviews are closed."), code="bad_transition"
        )
    criteria = list(application.call.criteria.all())
    if not criteria:
        raise ApplicationError(_("This call has no rubric yet."), code="no_rubric")
    rows = []
    for criterion in criteria:
        value = scores.get(criterion.pk)
        if not isinstance(value, tuple | list):
            value = (value, "")
        score, note = ([*value, ""])[:2]
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= criterion.max_score:
            raise ApplicationError(
                _("Score “%(criterion)s” from 0 to %(max)s.")
                % {"criterion": criterion.name, "max": criterion.max_score},
                code="invalid",
            )
        rows.append(
            Score(assignment=assignment, criterion=criterion, score=score, comment=(note or "").strip())
        )
    before = {s.criterion_id: s.score for s in assignment.scores.all()}
    assignment.scores.all().delete()
    Score.objects.bulk_create(rows)
    assignment.status = AStatus.SUBMITTED
    assignment.comment = (comment or "").strip()
    assignment.submitted_at = timezone.now()
    assignment.save(update_fields=["status", "comment", "submitted_at", "updated_at"])
    audit_record(
        actor=actor,
        action="grant_review.submitted",
        target=application,
        before={"assignment": assignment.pk, "scores": before} if before else None,
        after={"assignment": assignment.pk, "scores": {r.criterion_id: r.score for r in rows}},
    )
    return assignment


# --- decisions and awards ------------------------------------------------------------------------


def _clean_award_hours(value) -> Decimal:
    try:
        hours = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise ApplicationError(_("GPU-hours must be a number."), code="invalid") from exc
    if not hours.is_finite() or hours <= 0:
        raise ApplicationError(_("GPU-hours must be more than zero."), code="invalid")
    return hours


def awarded_by_class(call: Call) -> dict[str, Decimal]:
    """GPU-hours of the call's live awards per GPU class."""
    return {
        row["gpu_class"]: row["total"]
        for row in AwardLine.objects.filter(award__application__call=call, award__status=Award.Status.ACTIVE)
        .values("gpu_class")
        .annotate(total=Sum("gpu_hours"))
    }


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "org"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{n}"
        n += 1
    return slug


def _award_organization(application: Application, *, provider_id: int, actor) -> Organization:
    """The applicant organization; for a non-member named by its details, an Organization without
    a membership (hidden from the directory) with the applicant as its owner."""
    if application.organization_id:
        return application.organization
    number = application.org_corporate_number or None
    organization = Organization.objects.filter(corporate_number=number).first() if number else None
    if (
        organization is not None
        and not OrgRole.objects.filter(organization=organization, user_id=application.applicant_id).exists()
    ):
        # Typing a known corporate number never makes the applicant one of that organization's owners.
        raise ApplicationError(
            _("%(org)s is already on the portal: ask its administrators to invite you, then apply for it.")
            % {"org": organization.display_name},
            code="organization_exists",
        )
    if organization is None:
        organization = Organization.objects.create(
            slug=_unique_slug(application.org_name_en or application.org_name_ja),
            name_ja=application.org_name_ja,
            name_en=application.org_name_en or application.org_name_ja,
            kind=application.org_kind,
            corporate_number=number,
            address="",
            home_provider_id=provider_id,
            is_listed=False,
        )
        audit_record(
            actor=actor,
            action="organization.created",
            target=organization,
            after={
                "slug": organization.slug,
                "name_ja": organization.name_ja,
                "kind": organization.kind,
                "corporate_number": organization.corporate_number,
                "grant_application": application.pk,
                "membership": None,
            },
        )
    if not OrgRole.objects.filter(organization=organization, user_id=application.applicant_id).exists():
        OrgRole.objects.create(
            organization=organization, user_id=application.applicant_id, role=OrgRole.Role.OWNER
        )
        audit_record(
            actor=actor,
            action="org_role.granted",
            target=organization,
            after={"user": application.applicant_id, "role": OrgRole.Role.OWNER},
        )
    return organization


def _report_schedule(valid_from: date, valid_until: date) -> list[tuple[str, date]]:
    days = (valid_until - valid_from).days
    schedule = []
    if days >= PROGRESS_REPORT_MIN_DAYS:
        schedule.append((Report.Kind.PROGRESS, valid_from + timedelta(days=days // 2)))
    schedule.append((Report.Kind.FINAL, valid_until + timedelta(days=FINAL_REPORT_DAYS_AFTER_END)))
    return schedule


def _decide(application: Application, status: str, actor, feedback: str, action: str, **after) -> None:
    before = application.status
    application.status = status
    application.feedback = (feedback or "").strip()
    application.decided_at = timezone.now()
    application.decided_by = actor
    application.save(
        update_fields=["status", "feedback", "decided_at", "decided_by", "organization", "updated_at"]
    )
    audit_record(
        actor=actor,
        action=action,
        target=application,
        before={"status": before},
        after={"status": status, "feedback": application.feedback, **after},
    )
    _notify(application, status)


@transaction.atomic
def application_award(
    *,
    application_id: int,
    actor,
    lines: list[tuple[int, object]],
    valid_from: date,
    valid_until: date,
    mentor=None,
    feedback: str = "",
) -> Award:
    """Award GPU-hours on chosen pool periods: one QuotaGrant (source AWARD) per line, pushed to
    its provider, all or nothing. Refused beyond the call's remaining budget per GPU class (the
    call row is locked, so concurrent awards are checked one after the other), beyond what was
    requested per class, or beyond the program's limits."""
    from apps.providers.services import grant_create

    _require_staff(actor)
    call, application = _lock_call_then_application(application_id)
    program = call.program
    if application.status not in Application.DECIDABLE:
        raise ApplicationError(
            _("Only a submitted or waitlisted application can be awarded."), code="bad_transition"
        )
    if not (valid_from and valid_until and valid_until > valid_from):
        raise ApplicationError(_("The award must end after it starts."), code="invalid_dates")
    if valid_until > add_months(valid_from, program.max_duration_months):
        raise ApplicationError(
            _("This program's awards last at most %(months)s months.")
            % {"months": program.max_duration_months},
            code="too_long",
        )
    if not lines:
        raise ApplicationError(_("Choose at least one pool and its GPU-hours."), code="invalid")
    cleaned = [(period_id, _clean_award_hours(hours)) for period_id, hours in lines]
    periods = {
        p.pk: p
        for p in PoolPeriod.objects.filter(pk__in=[pid for pid, _h in cleaned]).select_related(
            "pool__provider"
        )
    }
    per_class: dict[str, Decimal] = defaultdict(Decimal)
    for period_id, hours in cleaned:
        period = periods.get(period_id)
        if period is None:
            raise ApplicationError(_("This pool period does not exist."), code="not_found")
        if not (period.starts_on < valid_until and valid_from < period.ends_on):
            raise ApplicationError(
                _("The period %(period)s does not overlap the award (%(start)s to %(end)s).")
                % {"period": str(period), "start": valid_from, "end": valid_until},
                code="invalid_dates",
            )
        per_class[period.pool.gpu_class] += hours
    requested = application.requested_hours or {}
    for gpu_class, hours in sorted(per_class.items()):
        if gpu_class not in (call.budget or {}):
            raise ApplicationError(
                _("This call has no budget for %(cls)s.") % {"cls": gpu_class}, code="unknown_class"
            )
        if hours > Decimal(requested.get(gpu_class, 0)):
            raise ApplicationError(
                _("%(hours)s GPU-hours of %(cls)s is more than the %(asked)s requested.")
                % {"hours": f"{hours:,.2f}", "cls": gpu_class, "asked": f"{requested.get(gpu_class, 0):,}"},
                code="more_than_requested",
            )
    total = sum(per_class.values(), Decimal("0"))
    if total > program.max_gpu_hours:
        raise ApplicationError(
            _("This program awards at most %(max)s GPU-hours.") % {"max": f"{program.max_gpu_hours:,}"},
            code="over_program_limit",
        )
    awarded = awarded_by_class(call)
    for gpu_class, hours in sorted(per_class.items()):
        budget = Decimal(call.budget[gpu_class])
        used = awarded.get(gpu_class) or Decimal("0")
        if used + hours > budget:
            raise ApplicationError(
                _(
                    "The call's budget for %(cls)s is %(budget)s GPU-hours and %(used)s are already "
                    "awarded: at most %(free)s can be awarded, not %(hours)s."
                )
                % {
                    "cls": gpu_class,
                    "budget": f"{budget:,.0f}",
                    "used": f"{used:,.2f}",
                    "free": f"{max(budget - used, Decimal('0')):,.2f}",
                    "hours": f"{hours:,.2f}",
                },
                code="over_budget",
            )
    first_period = periods[cleaned[0][0]]
    organization = _award_organization(application, provider_id=first_period.pool.provider_id, actor=actor)
    application.organization = organization
    award = Award.objects.create(
        application=application,
        organization=organization,
        valid_from=valid_from,
        valid_until=valid_until,
        mentor=mentor,
        awarded_by=actor,
    )
    for period_id, hours in cleaned:
        period = periods[period_id]
        grant_from, grant_until = max(valid_from, period.starts_on), min(valid_until, period.ends_on)
        try:
            grant = grant_create(
                organization=organization,
                period_id=period.pk,
                gpu_hours=hours,
                actor=actor,
                valid_from=grant_from,
                valid_until=grant_until,
                source=QuotaGrant.Source.AWARD,
                source_ref=f"award-{award.pk}",
            )
        except ApplicationError as exc:
            raise ApplicationError(
                _("Nothing was awarded: the grant on %(pool)s was refused: %(reason)s")
                % {"pool": period.pool.code, "reason": exc.message},
                code="grant_refused",
            ) from exc
        AwardLine.objects.create(
            award=award, period=period, gpu_class=period.pool.gpu_class, gpu_hours=hours, grant=grant
        )
    for kind, due_on in _report_schedule(valid_from, valid_until):
        Report.objects.create(award=award, kind=kind, due_on=due_on)
    audit_record(
        actor=actor,
        action="award.created",
        target=award,
        after={
            "application": application.pk,
            "organization": organization.pk,
            "valid_from": valid_from,
            "valid_until": valid_until,
            "mentor": getattr(mentor, "pk", None),
            "lines": [[pid, str(h)] for pid, h in cleaned],
        },
    )
    try:
        with transaction.atomic():
            _decide(application, Status.AWARDED, actor, feedback, "grant_application.awarded", award=award.pk)
    except IntegrityError as exc:  # the organization already has another application in this call
        raise ApplicationError(
            _("This organization already has an application in this call."), code="duplicate"
        ) from exc
    if mentor is not None:
        transaction.on_commit(partial(tasks.mentor_notify_task.delay, award.pk))
    return award


@transaction.atomic
def application_waitlist(*, application_id: int, actor, feedback: str = "") -> Application:
    _require_staff(actor)
    _call, application = _lock_call_then_application(application_id)
    if application.status != Status.SUBMITTED:
        raise ApplicationError(_("Only a submitted application can be waitlisted."), code="bad_transition")
    _decide(application, Status.WAITLISTED, actor, feedback, "grant_application.waitlisted")
    return application


@transaction.atomic
def application_decline(*, application_id: int, actor, feedback: str) -> Application:
    _require_staff(actor)
    if not (feedback or "").strip():
        raise ApplicationError(_("Please give feedback; the applicant will read it."), code="reason_required")
    _call, application = _lock_call_then_application(application_id)
    if application.status not in Application.DECIDABLE:
        raise ApplicationError(
            _("Only a submitted or waitlisted application can be declined."), code="bad_transition"
        )
    application.assignments.filter(status=AStatus.ASSIGNED).delete()
    _decide(application, Status.DECLINED, actor, feedback, "grant_application.declined")
    return application


@transaction.atomic
def award_revoke(*, award_id: int, actor, reason: str) -> Award:
    """Revoke an award: its grants are revoked at the providers and its budget is freed."""
    from apps.providers.services import grant_revoke

    _require_staff(actor)
    if not (reason or "").strip():
        raise ApplicationError(_("Give a reason for revoking the award."), code="reason_required")
    application_id = Award.objects.filter(pk=award_id).values_list("application_id", flat=True).first()
    if application_id is None:
        raise ApplicationError(_("This award does not exist."), code="not_found")
    _call, application = _lock_call_then_application(application_id)
    award = Award.objects.select_for_update().get(pk=award_id)
    if award.status != Award.Status.ACTIVE:
        raise ApplicationError(_("This award is already revoked."), code="bad_transition")
    revoked = []
    for line in award.lines.select_related("grant").order_by("pk"):
        if line.grant.state not in (QuotaGrant.State.REVOKING, QuotaGrant.State.REVOKED):
            grant_revoke(grant_id=line.grant_id, actor=actor, reason=reason)
            revoked.append(line.grant_id)
    award.status = Award.Status.REVOKED
    award.revoked_reason = reason.strip()
    award.save(update_fields=["status", "revoked_reason", "updated_at"])
    audit_record(
        actor=actor,
        action="award.revoked",
        target=award,
        before={"status": Award.Status.ACTIVE},
        after={"status": award.status, "reason": award.revoked_reason, "grants": revoked},
    )
    _notify(application, "award_revoked")
    return award


@transaction.atomic
def award_set_mentor(*, award_id: int, actor, mentor) -> Award:
    _require_staff(actor)
    award = Award.objects.select_for_update().filter(pk=award_id).first()
    if award is None:
        raise ApplicationError(_("This award does not exist."), code="not_found")
    if award.status != Award.Status.ACTIVE:
        raise ApplicationError(_("This award is revoked."), code="bad_transition")
    before = award.mentor_id
    award.mentor = mentor
    award.save(update_fields=["mentor", "updated_at"])
    audit_record(
        actor=actor,
        action="award.mentor_assigned",
        target=award,
        before={"mentor": before},
        after={"mentor": getattr(mentor, "pk", None)},
    )
    if mentor is not None:
        transaction.on_commit(partial(tasks.mentor_notify_task.delay, award.pk))
    return award


# --- reports -------------------------------------------------------------------------------------


@transaction.atomic
def report_submit(*, report_id: int, actor, body: str, outcomes: str = "", publications: str = "") -> Report:
    """Submit (or correct) a report of an award: its text, outcomes and publications."""
    report = (
        Report.objects.select_for_update(of=("self",))
        .select_related("award__application")
        .filter(pk=report_id)
        .first()
    )
    if report is None:
        raise ApplicationError(_("This report does not exist."), code="not_found")
    award = report.award
    if not (
        award.application.applicant_id == actor.pk
        or OrgRole.objects.filter(organization_id=award.organization_id, user=actor).exists()
    ):
        raise ApplicationError(_("Only the award's organization can submit its reports."), code="forbidden")
    if not (body or "").strip():
        raise ApplicationError(_("Write the report before submitting it."), code="invalid")
    before = {"submitted_at": report.submitted_at, "body": report.body} if report.submitted_at else None
    report.body = body.strip()
    report.outcomes = (outcomes or "").strip()
    report.publications = "\n".join(
        line.strip() for line in (publications or "").splitlines() if line.strip()
    )
    report.submitted_at = timezone.now()
    report.submitted_by = actor
    report.save()
    audit_record(
        actor=actor,
        action="award_report.submitted" if before is None else "award_report.corrected",
        target=report,
        before=before,
        after={
            "kind": report.kind,
            "body": report.body,
            "outcomes": report.outcomes,
            "publications": report.publications,
        },
    )
    transaction.on_commit(partial(tasks.report_submitted_notify_task.delay, report.pk))
    return report


def report_reminders_send(*, today: date | None = None) -> dict[str, int]:
    """Remind awardees of reports due within a week, and tell them and the secretariat of overdue
    ones. Each report is reminded once and reported overdue once (claimed with a conditional
    update, so concurrent runs send nothing twice)."""
    today = today or timezone.localdate()
    now = timezone.now()
    counts = {"reminders": 0, "overdue": 0}
    unsubmitted = Report.objects.filter(submitted_at__isnull=True, award__status=Award.Status.ACTIVE)
    due_soon = unsubmitted.filter(
        reminded_at__isnull=True, due_on__gte=today, due_on__lte=today + timedelta(days=REMINDER_DAYS_BEFORE)
    )
    for report_id in list(due_soon.values_list("pk", flat=True)):
        if Report.objects.filter(pk=report_id, reminded_at__isnull=True).update(reminded_at=now):
            tasks.report_notify_task.delay(report_id, "reminder")
            counts["reminders"] += 1
    overdue = unsubmitted.filter(overdue_notified_at__isnull=True, due_on__lt=today)
    for report_id in list(overdue.values_list("pk", flat=True)):
        if Report.objects.filter(pk=report_id, overdue_notified_at__isnull=True).update(
            overdue_notified_at=now
        ):
            tasks.report_notify_task.delay(report_id, "overdue")
            counts["overdue"] += 1
    return counts
