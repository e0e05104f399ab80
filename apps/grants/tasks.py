"""E-mails of grant programs and the report reminders (beat: ``report_reminders_task``).

Tasks take ids and are enqueued on commit by the services; each e-mail renders in its recipient's
language."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.urls import reverse

from apps.core.mail import send_templated_mail


def _url(path: str) -> str:
    return settings.SITE_URL + path


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def application_notify_task(application_id: int, event: str) -> None:
    """Tell the applicant what happened to the application (and the secretariat of submissions)."""
    from apps.grants.models import Application

    application = (
        Application.objects.select_related("applicant", "call__program", "organization")
        .filter(pk=application_id)
        .first()
    )
    if application is None:
        return
    context = {"application": application, "event": event, "url": _url(application.get_absolute_url())}
    send_templated_mail(
        to=[application.applicant.email],
        template="grants/emails/application_status",
        context=context,
        language=application.applicant.language,
    )
    if event in ("submitted", "withdrawn"):
        send_templated_mail(
            to=[settings.SECRETARIAT_EMAIL],
            template="grants/emails/application_to_staff",
            context={**context, "url": _url(reverse("grants:staff-application", args=[application.pk]))},
            language=settings.LANGUAGE_CODE,
        )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def assignment_notify_task(assignment_id: int) -> None:
    from apps.grants.conflicts import is_conflicted
    from apps.grants.models import Assignment

    assignment = (
        Assignment.objects.select_related("reviewer", "application__call").filter(pk=assignment_id).first()
    )
    if assignment is None or assignment.status != Assignment.Status.ASSIGNED or is_conflicted(assignment):
        return
    send_templated_mail(
        to=[assignment.reviewer.email],
        template="grants/emails/review_assigned",
        context={"assignment": assignment, "url": _url(assignment.get_absolute_url())},
        language=assignment.reviewer.language,
    )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def conflict_notify_task(assignment_id: int) -> None:
    from apps.grants.models import Assignment

    assignment = (
        Assignment.objects.select_related("reviewer", "application__call").filter(pk=assignment_id).first()
    )
    if assignment is None:
        return
    send_templated_mail(
        to=[settings.SECRETARIAT_EMAIL],
        template="grants/emails/conflict_declared",
        context={
            "assignment": assignment,
            "url": _url(reverse("grants:staff-application", args=[assignment.application_id])),
        },
        language=settings.LANGUAGE_CODE,
    )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def mentor_notify_task(award_id: int) -> None:
    from apps.grants.models import Award

    award = Award.objects.select_related("mentor", "application", "organization").filter(pk=award_id).first()
    if award is None or award.mentor is None:
        return
    send_templated_mail(
        to=[award.mentor.email],
        template="grants/emails/mentor_assigned",
        context={"award": award},
        language=award.mentor.language,
    )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def report_notify_task(report_id: int, event: str) -> None:
    """``reminder``: the report is due soon; ``overdue``: it is late (the secretariat is told too)."""
    from apps.grants.models import Report

    report = (
        Report.objects.select_related("award__application__applicant", "award__organization")
        .filter(pk=report_id)
        .first()
    )
    if report is None or report.submitted_at is not None:
        return
    applicant = report.award.application.applicant
    context = {"report": report, "event": event, "url": _url(report.get_absolute_url())}
    send_templated_mail(
        to=[applicant.email],
        template="grants/emails/report_due",
        context=context,
        language=applicant.language,
    )
    if event == "overdue":
        send_templated_mail(
            to=[settings.SECRETARIAT_EMAIL],
            template="grants/emails/report_due",
            context={**context, "to_staff": True, "url": _url(reverse("grants:staff-reports"))},
            language=settings.LANGUAGE_CODE,
        )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def report_submitted_notify_task(report_id: int) -> None:
    from apps.grants.models import Report

    report = (
        Report.objects.select_related("award__application", "award__organization")
        .filter(pk=report_id)
        .first()
    )
    if report is None:
        return
    send_templated_mail(
        to=[settings.SECRETARIAT_EMAIL],
        template="grants/emails/report_submitted",
        context={"report": report, "url": _url(reverse("grants:staff-reports"))},
        language=settings.LANGUAGE_CODE,
    )


@shared_task
def report_reminders_task() -> dict:
    """Daily (beat): reminders for reports due within a week, notices for overdue ones."""
    from apps.grants.services import report_reminders_send

    return report_reminders_send()
