"""Pages of grant programs: public program and call pages; applicants' applications, attachments
and reports; reviewers' assignments; the secretariat's call console, ranking and decisions.
Views parse input, call one service or selector, render. Whoever may not see an object gets 404."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.exceptions import ApplicationError
from apps.core.http import render_page_or_partial
from apps.core.permissions import has_perm
from apps.grants import selectors, services
from apps.grants.forms import (
    ApplicationForm,
    AssignForm,
    AttachmentForm,
    ConflictForm,
    DecisionForm,
    MentorForm,
    ReportForm,
    ReviewerAddForm,
    ReviewForm,
    RevokeForm,
    WithdrawForm,
)
from apps.grants.models import Application, Assignment, Award, Reviewer
from apps.organizations.views import _posted, staff_required

Status = Application.Status


def _errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- Public pages --------------------------------------------------------------------------------


def program_list(request):
    return render(request, "grants/program_list.html", {"programs": selectors.program_list_public()})


def program_detail(request, slug: str):
    program = selectors.program_get_public(slug=slug)
    if program is None:
        raise Http404
    return render(
        request,
        "grants/program_detail.html",
        {"program": program, "calls": selectors.call_list_for_program(program=program)},
    )


def call_detail(request, slug: str, call_id: int):
    call = selectors.call_get_public(slug=slug, call_id=call_id)
    if call is None:
        raise Http404
    return render(request, "grants/call_detail.html", {"call": call, "program": call.program})


# --- Applicants ----------------------------------------------------------------------------------


@login_required
def application_new(request, slug: str, call_id: int):
    call = selectors.call_get_public(slug=slug, call_id=call_id)
    if call is None:
        raise Http404
    if not call.is_open():
        messages.error(request, _("This call is not accepting applications."))
        return redirect(call)
    form = ApplicationForm(
        _posted(request),
        call=call,
        user=request.user,
        initial={"pi_email": request.user.email, "pi_name": request.user.full_name},
    )
    if request.method == "POST" and form.is_valid():
        data, pools = form.service_data()
        try:
            application = services.application_create(
                call_id=call.pk, applicant=request.user, data=data, preferred_pool_ids=pools
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your draft was saved. Check it and submit it before the deadline."))
            return redirect(application)
    return render(
        request,
        "grants/application_form.html",
        {"form": form, "call": call, "application": None},
        status=400 if form.errors else 200,
    )


def _own_application(request, application_id: int) -> Application:
    application = selectors.application_get(application_id=application_id)
    if application is None or not has_perm(request.user, "grants.view_application", application):
        raise Http404
    return application


@login_required
def application_edit(request, application_id: int):
    application = _own_application(request, application_id)
    if not has_perm(request.user, "grants.edit_application", application):
        raise Http404
    if application.status not in (Status.DRAFT, Status.SUBMITTED) or not application.call.is_open():
        messages.error(request, _("This application can no longer be changed."))
        return redirect(application)
    form = ApplicationForm(
        _posted(request), call=application.call, user=request.user, application=application
    )
    if request.method == "POST" and form.is_valid():
        data, pools = form.service_data()
        try:
            services.application_update(
                application_id=application.pk, actor=request.user, data=data, preferred_pool_ids=pools
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your changes were saved."))
            return redirect(application)
    return render(
        request,
        "grants/application_form.html",
        {"form": form, "call": application.call, "application": application},
        status=400 if form.errors else 200,
    )


@login_required
def application_detail(request, application_id: int):
    application = _own_application(request, application_id)
    is_applicant = application.applicant_id == request.user.pk
    open_now = application.call.is_open()
    problems = []
    if is_applicant and application.status == Status.DRAFT:
        problems = services.eligibility_problems(application, today=timezone.localdate())
    return render(
        request,
        "grants/application_detail.html",
        {
            "application": application,
            "award": selectors.award_of(application),
            "is_applicant": is_applicant,
            "can_edit": is_applicant and open_now and application.status in (Status.DRAFT, Status.SUBMITTED),
            "can_submit": is_applicant and open_now and application.status == Status.DRAFT and not problems,
            "can_withdraw": is_applicant and application.status in Application.WITHDRAWABLE,
            "problems": problems,
            "attachment_form": AttachmentForm(),
            "withdraw_form": WithdrawForm(),
            "questions": [
                (q, (application.answers or {}).get(q.key, "")) for q in application.call.questions.all()
            ],
        },
    )


@login_required
@require_POST
def application_submit(request, application_id: int):
    application = _own_application(request, application_id)
    if not has_perm(request.user, "grants.edit_application", application):
        raise Http404
    try:
        services.application_submit(application_id=application.pk, actor=request.user)
    except ApplicationError as exc:
        for problem in exc.extra.get("problems") or [exc.message]:
            messages.error(request, problem)
    else:
        messages.success(request, _("Your application was submitted."))
    return redirect(application)


@login_required
@require_POST
def application_withdraw(request, application_id: int):
    application = _own_application(request, application_id)
    if not has_perm(request.user, "grants.edit_application", application):
        raise Http404
    form = WithdrawForm(request.POST)
    form.is_valid()
    try:
        services.application_withdraw(
            application_id=application.pk, actor=request.user, reason=form.cleaned_data.get("reason", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your application was withdrawn."))
    return redirect(application)


@login_required
@require_POST
def attachment_upload(request, application_id: int):
    application = _own_application(request, application_id)
    if not has_perm(request.user, "grants.edit_application", application):
        raise Http404
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect(application)
    try:
        services.attachment_add(
            application_id=application.pk, actor=request.user, uploaded_file=form.cleaned_data["file"]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The file was attached."))
    return redirect(application)


@login_required
@require_POST
def attachment_delete(request, attachment_id: int):
    attachment = selectors.attachment_get(attachment_id=attachment_id)
    if attachment is None or not has_perm(request.user, "grants.edit_application", attachment.application):
        raise Http404
    try:
        services.attachment_remove(attachment_id=attachment.pk, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The file was removed."))
    return redirect(attachment.application)


@login_required
def attachment_download(request, attachment_id: int):
    attachment = selectors.attachment_get(attachment_id=attachment_id)
    if attachment is None or not selectors.can_download(request.user, attachment):
        raise Http404
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(
        handle, as_attachment=True, filename=attachment.original_name, content_type=attachment.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def my_applications(request):
    return render(
        request,
        "grants/my_applications.html",
        {
            "applications": selectors.application_list_for_user(user=request.user)[:100],
            "reports": selectors.reports_due_for_user(user=request.user),
            "today": timezone.localdate(),
        },
    )


@login_required
def report_detail(request, report_id: int):
    report = selectors.report_get(report_id=report_id)
    if report is None or not (
        selectors.can_submit_report(request.user, report) or has_perm(request.user, "grants.manage_programs")
    ):
        raise Http404
    can_submit = (
        selectors.can_submit_report(request.user, report) and report.award.status == Award.Status.ACTIVE
    )
    initial = {"body": report.body, "outcomes": report.outcomes, "publications": report.publications}
    form = ReportForm(_posted(request), initial=initial)
    if request.method == "POST":
        if not can_submit:
            raise Http404
        if form.is_valid():
            try:
                services.report_submit(report_id=report.pk, actor=request.user, **form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Thank you: the report was submitted."))
                return redirect("grants:report-detail", report_id=report.pk)
    return render(
        request,
        "grants/report_detail.html",
        {"report": report, "form": form, "can_submit": can_submit},
        status=400 if form.errors else 200,
    )


# --- Reviewers -----------------------------------------------------------------------------------


@login_required
def review_list(request):
    return render(
        request,
        "grants/review_list.html",
        {"assignments": selectors.assignment_list_for_reviewer(user=request.user)[:200]},
    )


def _own_assignment(request, assignment_id: int) -> Assignment:
    assignment = selectors.assignment_get(assignment_id=assignment_id)
    if assignment is None or not has_perm(request.user, "grants.review_assignment", assignment):
        raise Http404
    return assignment


@login_required
def review_detail(request, assignment_id: int):
    assignment = _own_assignment(request, assignment_id)
    application = assignment.application
    open_for_review = application.status in Application.DECIDABLE
    form = ReviewForm(
        _posted(request),
        criteria=application.call.criteria.all(),
        scores=assignment.scores.all(),
        initial={"comment": assignment.comment},
    )
    if request.method == "POST" and not open_for_review:
        messages.error(request, _("This application is already decided; reviews are closed."))
        return redirect("grants:review-detail", assignment_id=assignment.pk)
    if request.method == "POST" and form.is_valid():
        try:
            services.review_submit(
                assignment_id=assignment.pk,
                actor=request.user,
                scores=form.scores(),
                comment=form.cleaned_data["comment"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your review was saved."))
            return redirect("grants:review-detail", assignment_id=assignment.pk)
    return render(
        request,
        "grants/review_detail.html",
        {
            "assignment": assignment,
            "application": application,
            "form": form,
            "conflict_form": ConflictForm(),
            "open_for_review": open_for_review,
            "questions": [
                (q, (application.answers or {}).get(q.key, "")) for q in application.call.questions.all()
            ],
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def review_conflict(request, assignment_id: int):
    assignment = _own_assignment(request, assignment_id)
    form = ConflictForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
        return redirect("grants:review-detail", assignment_id=assignment.pk)
    try:
        services.assignment_declare_conflict(
            assignment_id=assignment.pk, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("grants:review-detail", assignment_id=assignment.pk)
    messages.success(request, _("Thank you: the conflict was recorded and the application released."))
    return redirect("grants:review-list")


# --- Secretariat ---------------------------------------------------------------------------------


@staff_required
def staff_programs(request):
    return render(
        request,
        "grants/staff_programs.html",
        {"programs": selectors.program_list_for_staff(), "overdue": selectors.overdue_report_count()},
    )


def _staff_call(call_id: int):
    call = selectors.call_get(call_id=call_id)
    if call is None:
        raise Http404
    return call


@staff_required
def staff_call(request, call_id: int):
    """The call's console: budget, reviewers, and the applications ranked by weighted score.
    htmx asks only for the ranking (status filter)."""
    call = _staff_call(call_id)
    status = request.GET.get("status", "")
    statuses = (status,) if status in Application.IN_REVIEW else None
    rows, budgets = selectors.call_ranking(call=call, statuses=statuses)
    return render_page_or_partial(
        request,
        "grants/staff_call.html",
        "ranking",
        {
            "call": call,
            "rows": rows,
            "budgets": budgets,
            "reviewers": selectors.reviewer_list(call=call),
            "reviewer_form": ReviewerAddForm(),
            "status": status,
            "status_choices": [(s, Status(s).label) for s in Application.IN_REVIEW],
        },
    )


@staff_required
@require_POST
def staff_reviewer_add(request, call_id: int):
    call = _staff_call(call_id)
    form = ReviewerAddForm(request.POST)
    if form.is_valid():
        try:
            services.reviewer_add(call_id=call.pk, user=form.user, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("%(email)s was added to the reviewers.") % {"email": form.user.email})
    else:
        messages.error(request, _errors(form))
    return redirect("grants:staff-call", call_id=call.pk)


@staff_required
@require_POST
def staff_reviewer_remove(request, reviewer_id: int):
    reviewer = Reviewer.objects.filter(pk=reviewer_id).first()
    if reviewer is None:
        raise Http404
    try:
        services.reviewer_remove(reviewer_id=reviewer.pk, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The reviewer was removed."))
    return redirect("grants:staff-call", call_id=reviewer.call_id)


@staff_required
@require_POST
def staff_auto_assign(request, call_id: int):
    call = _staff_call(call_id)
    try:
        result = services.assignments_auto(call_id=call.pk, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(count)s reviews were assigned.") % {"count": result.created})
        if result.short:
            messages.warning(
                request,
                _("%(count)s applications have fewer reviewers than asked: add reviewers and assign again.")
                % {"count": len(result.short)},
            )
    return redirect("grants:staff-call", call_id=call.pk)


def _staff_application(application_id: int) -> Application:
    application = selectors.staff_application_get(application_id=application_id)
    if application is None or application.status == Status.DRAFT:
        raise Http404
    return application


def _decision_form(application, data=None):
    today = timezone.localdate()
    periods = selectors.award_period_choices(
        application=application, valid_from=today, valid_until=today + datetime.timedelta(days=3 * 366)
    )
    initial = {
        "valid_from": today,
        "valid_until": services.add_months(today, application.duration_months),
        "decision": "award",
    }
    return DecisionForm(data, periods=periods, initial=initial)


def _staff_application_page(request, application, *, decision_form=None, assign_form=None, status=200):
    criteria = list(application.call.criteria.all())
    reviews = []
    for assignment in application.assignments.all():
        scores = {s.criterion_id: s for s in assignment.scores.all()}
        reviews.append(
            {
                "assignment": assignment,
                "scores": [(c, scores.get(c.pk)) for c in criteria],
                "weighted": selectors.weighted_score({k: s.score for k, s in scores.items()}, criteria)
                if assignment.status == Assignment.Status.SUBMITTED and not assignment.live_conflict
                else None,
                "blocked": assignment.status in Assignment.ACTIVE and assignment.live_conflict,
            }
        )
    reviewer_users = [
        r.user for r in Reviewer.objects.filter(call_id=application.call_id).select_related("user")
    ]
    return render(
        request,
        "grants/staff_application.html",
        {
            "application": application,
            "award": selectors.award_of(application),
            "reviews": reviews,
            "criteria": criteria,
            "assign_form": assign_form or AssignForm(users=reviewer_users),
            "decision_form": decision_form or _decision_form(application),
            "can_decide": application.status in Application.DECIDABLE,
            "budget_left": selectors.budget_left(call=application.call),
            "revoke_form": RevokeForm(),
            "mentor_form": MentorForm(),
            "questions": [
                (q, (application.answers or {}).get(q.key, "")) for q in application.call.questions.all()
            ],
        },
        status=status,
    )


@staff_required
def staff_application(request, application_id: int):
    return _staff_application_page(request, _staff_application(application_id))


@staff_required
@require_POST
def staff_assign(request, application_id: int):
    application = _staff_application(application_id)
    users = [r.user for r in Reviewer.objects.filter(call_id=application.call_id).select_related("user")]
    form = AssignForm(request.POST, users=users)
    if form.is_valid():
        try:
            services.assignment_create(
                application_id=application.pk, reviewer_user=form.cleaned_data["reviewer"], actor=request.user
            )
        except ApplicationError as exc:
            form.add_error("reviewer", exc.message)
    if form.errors:
        return _staff_application_page(request, application, assign_form=form, status=400)
    messages.success(request, _("The reviewer was assigned."))
    return redirect("grants:staff-application", application_id=application.pk)


@staff_required
@require_POST
def staff_assignment_release(request, application_id: int, assignment_id: int):
    application = _staff_application(application_id)
    if not application.assignments.filter(pk=assignment_id).exists():
        raise Http404
    try:
        services.assignment_release_conflicted(assignment_id=assignment_id, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The assignment was released: assign another reviewer."))
    return redirect("grants:staff-application", application_id=application.pk)


@staff_required
@require_POST
def staff_decide(request, application_id: int):
    application = _staff_application(application_id)
    if application.status not in Application.DECIDABLE:
        messages.error(request, _("This application is already decided."))
        return redirect("grants:staff-application", application_id=application.pk)
    form = _decision_form(application, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["decision"] == "award":
                services.application_award(
                    application_id=application.pk,
                    actor=request.user,
                    lines=form.lines,
                    valid_from=data["valid_from"],
                    valid_until=data["valid_until"],
                    mentor=form.mentor,
                    feedback=data["feedback"],
                )
                message = _("Awarded: the grants were created and are being sent to the providers.")
            elif data["decision"] == "waitlist":
                services.application_waitlist(
                    application_id=application.pk, actor=request.user, feedback=data["feedback"]
                )
                message = _("The application is on the waiting list.")
            else:
                services.application_decline(
                    application_id=application.pk, actor=request.user, feedback=data["feedback"]
                )
                message = _("The application was declined.")
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    if form.errors:
        return _staff_application_page(request, application, decision_form=form, status=400)
    messages.success(request, message)
    return redirect("grants:staff-application", application_id=application.pk)


def _staff_award(award_id: int) -> Award:
    award = Award.objects.filter(pk=award_id).first()
    if award is None:
        raise Http404
    return award


@staff_required
@require_POST
def staff_award_revoke(request, award_id: int):
    award = _staff_award(award_id)
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
    else:
        try:
            services.award_revoke(award_id=award.pk, actor=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The award was revoked and its grants withdrawn."))
    return redirect("grants:staff-application", application_id=award.application_id)


@staff_required
@require_POST
def staff_award_mentor(request, award_id: int):
    award = _staff_award(award_id)
    form = MentorForm(request.POST)
    if not form.is_valid():
        messages.error(request, _errors(form))
    else:
        try:
            services.award_set_mentor(award_id=award.pk, actor=request.user, mentor=form.mentor)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The mentor was assigned."))
    return redirect("grants:staff-application", application_id=award.application_id)


@staff_required
def staff_reports(request):
    page = Paginator(selectors.report_list_for_staff(), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "grants/staff_reports.html",
        {"page": page, "today": timezone.localdate(), "overdue": selectors.overdue_report_count()},
    )
