import hmac

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from apps.core.metrics import metrics_registry
from apps.core.selectors import delivery_health
from apps.organizations.services import terms_current
from apps.providers.models import Provider


def home(request):
    return render(
        request,
        "core/home.html",
        {
            "providers": Provider.objects.filter(is_active=True).order_by("name_en"),
            "terms": terms_current(),
        },
    )


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@never_cache
def healthz(request):
    """For load balancers and monitors: 200 while the portal can serve and deliver; 503 with the
    problems named when the database is unreachable, or when deliveries are overdue and no worker
    is alive (nothing consumes the queue). Two queries whatever the size of the tables."""
    try:
        health = delivery_health()
    except DatabaseError:
        return JsonResponse({"status": "error", "problems": ["database"]}, status=503)
    problems = health.problems
    body = {
        "status": "error" if health.failing else ("degraded" if problems else "ok"),
        "problems": problems,
        "outbox": {
            "pending": health.pending,
            "oldest_pending_age_seconds": _seconds(health.oldest_pending_age),
            "overdue_seconds": _seconds(health.overdue_seconds),
            "stale": health.backlog_stale,
        },
        "workers": {
            "required": health.worker_required,
            "alive": health.workers_alive,
            "last_seen_age_seconds": _seconds(health.worker_last_seen_age),
        },
    }
    return JsonResponse(body, status=503 if health.failing else 200)


def _metrics_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


@never_cache
def metrics(request):
    """Prometheus text format. Staff, or ``Authorization: Bearer <METRICS_TOKEN>`` (docs/operations.md)."""
    if not _metrics_allowed(request):
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
