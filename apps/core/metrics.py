"""Prometheus metrics of the portal, computed at scrape time from the database, so every gunicorn and
Celery process reports the same numbers. Served by apps.core.views.metrics; docs/operations.md
lists them."""

from __future__ import annotations

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry


class PortalCollector:
    """One scrape: a fixed number of grouped queries, whatever the size of the tables."""

    def collect(self):
        from apps.core.selectors import delivery_health
        from apps.providers.models import DeliveryAttempt, GrantDrift, GrantOutbox, UsageMonth, UsageRejection
        from apps.reports.models import ExportJob

        now = timezone.now()
        waiting = Q(state__in=[GrantOutbox.State.PENDING, GrantOutbox.State.IN_FLIGHT])

        messages = GaugeMetricFamily(
            "portal_outbox_messages", "Outbox rows by provider and state.", labels=["provider", "state"]
        )
        pending = GaugeMetricFamily(
            "portal_outbox_pending",
            "Deliveries waiting (pending or in flight) by provider.",
            labels=["provider"],
        )
        oldest = GaugeMetricFamily(
            "portal_outbox_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting, by provider (0 when none).",
            labels=["provider"],
        )
        waiting_by_provider: dict[str, tuple[int, float]] = {}
        rows = (
            GrantOutbox.objects.values("provider__slug", "state")
            .annotate(n=Count("id"), oldest=Min("created_at", filter=waiting))
            .order_by()
        )
        for row in rows:
            slug = row["provider__slug"]
            messages.add_metric([slug, row["state"]], row["n"])
            count, age = waiting_by_provider.get(slug, (0, 0.0))
            if row["oldest"] is not None:
                count += row["n"]
                age = max(age, (now - row["oldest"]).total_seconds())
            waiting_by_provider[slug] = (count, age)
        for slug, (count, age) in sorted(waiting_by_provider.items()):
            pending.add_metric([slug], count)
            oldest.add_metric([slug], age)
        yield messages
        yield pending
        yield oldest

        attempts = CounterMetricFamily(
            "portal_delivery_attempts",
            "Calls to providers' APIs by provider and result (success or failure).",
            labels=["provider", "result"],
        )
        for row in DeliveryAttempt.objects.values("provider__slug", "ok").annotate(n=Count("id")).order_by():
            attempts.add_metric([row["provider__slug"], "success" if row["ok"] else "failure"], row["n"])
        yield attempts

        drifts = GaugeMetricFamily(
            "portal_drifts",
            "Differences found by reconciliation, by provider and state (open, accepted, resent, vanished).",
            labels=["provider", "state"],
        )
        drift_rows = GrantDrift.objects.values("provider__slug", "resolution").annotate(n=Count("id"))
        for row in drift_rows.order_by():
            drifts.add_metric([row["provider__slug"], row["resolution"] or "open"], row["n"])
        yield drifts

        accepted = CounterMetricFamily(
            "portal_usage_records_accepted",
            "Usage records stored, by the provider of the grant's pool.",
            labels=["provider"],
        )
        usage = UsageMonth.objects.values("grant__pool__provider__slug").annotate(n=Sum("records")).order_by()
        for row in usage:
            accepted.add_metric([row["grant__pool__provider__slug"]], row["n"] or 0)
        yield accepted

        rejected = CounterMetricFamily(
            "portal_usage_records_rejected",
            "Usage records refused at a push or skipped at a pull (UsageRejection), by provider and source.",
            labels=["provider", "source"],
        )
        refused = UsageRejection.objects.values("provider__slug", "source").annotate(n=Sum("rejected"))
        for row in refused.order_by("provider__slug", "source"):
            rejected.add_metric([row["provider__slug"], row["source"]], row["n"] or 0)
        yield rejected

        exports = GaugeMetricFamily("portal_export_jobs", "Background exports by state.", labels=["state"])
        counts = dict(ExportJob.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in ExportJob.Status.values:
            exports.add_metric([status], counts.get(status, 0))
        yield exports

        from apps.governance.selectors import audit_verification_last_finished

        verification = audit_verification_last_finished()
        verdict = GaugeMetricFamily(
            "portal_audit_chain_intact",
            "Last verification of the audit chain against the providers' checkpoints: 1 intact, "
            "0.5 intact but some providers unreadable, 0 broken, -1 never verified.",
        )
        outcome_value = {"intact": 1, "incomplete": 0.5, "broken": 0}
        verdict.add_metric([], outcome_value.get(verification.outcome, -1) if verification else -1)
        yield verdict
        yield GaugeMetricFamily(
            "portal_audit_chain_verified_age_seconds",
            "Seconds since the last finished verification of the audit chain (-1 when none).",
            value=(timezone.now() - verification.finished_at).total_seconds() if verification else -1,
        )

        health = delivery_health()
        yield GaugeMetricFamily(
            "portal_workers_alive", "Celery workers whose heartbeat is recent.", value=health.workers_alive
        )
        yield GaugeMetricFamily(
            "portal_worker_last_seen_age_seconds",
            "Seconds since any worker's last heartbeat (-1 when none was ever seen).",
            value=health.worker_last_seen_age if health.worker_last_seen_age is not None else -1,
        )
        yield GaugeMetricFamily(
            "portal_outbox_overdue_seconds",
            "How long the most overdue delivery has been due without being taken (0 when none).",
            value=health.overdue_seconds,
        )


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalCollector())
    return registry
