"""E-mails of the onboarding flow. Tasks take ids and are enqueued on commit by the services."""

from celery import shared_task
from django.conf import settings
from django.urls import reverse

from apps.core.mail import send_templated_mail


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def application_notify_task(application_id: int, status: str) -> None:
    from apps.organizations.models import MembershipApplication

    application = (
        MembershipApplication.objects.select_related("applicant", "organization")
        .filter(pk=application_id)
        .first()
    )
    if application is None:
        return
    context = {
        "application": application,
        "status": status,
        "url": settings.SITE_URL + application.get_absolute_url(),
    }
    send_templated_mail(
        to=[application.applicant.email],
        template="organizations/emails/application_status",
        context=context,
        language=application.applicant.language,
    )
    if status == MembershipApplication.Status.SUBMITTED:
        send_templated_mail(
            to=[settings.SECRETARIAT_EMAIL],
            template="organizations/emails/application_to_review",
            context={
                **context,
                "url": settings.SITE_URL + reverse("organizations:review-detail", args=[application.pk]),
            },
            language=settings.LANGUAGE_CODE,
        )


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invitation_send_task(invitation_id: int, token: str) -> None:
    from apps.accounts.models import User
    from apps.organizations.models import Invitation

    invitation = (
        Invitation.objects.select_related("organization", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.state != "pending":
        return
    existing = User.objects.filter(email__iexact=invitation.email).only("language").first()
    send_templated_mail(
        to=[invitation.email],
        template="organizations/emails/invitation",
        context={
            "invitation": invitation,
            "url": settings.SITE_URL + reverse("organizations:invitation-accept", args=[token]),
        },
        language=existing.language if existing else settings.LANGUAGE_CODE,
    )
