from apps.governance.models import AuditEvent, AuditVerification


def audit_event_list_for_target(*, target, limit: int = 50):
    return (
        AuditEvent.objects.filter(target_type=target._meta.label_lower, target_id=str(target.pk))
        .select_related("actor")
        .order_by("-id")[:limit]
    )


def audit_verification_latest():
    """The newest verification run (running or finished), or None."""
    return AuditVerification.objects.select_related("requested_by").first()


def audit_verification_last_finished():
    return AuditVerification.objects.exclude(outcome=AuditVerification.Outcome.RUNNING).first()
