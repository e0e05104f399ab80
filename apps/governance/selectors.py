from apps.governance.models import AuditEvent


def audit_event_list_for_target(*, target, limit: int = 50):
    return (
        AuditEvent.objects.filter(target_type=target._meta.label_lower, target_id=str(target.pk))
        .select_related("actor")
        .order_by("-id")[:limit]
    )
