"""Exports of the portal's lists: small ones stream at once, large ones become a background job
with a progress page; files are downloaded by the user who asked, until they expire."""

import tempfile

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.exceptions import ApplicationError
from apps.core.http import querystring_without_page, render_page_or_partial, valid_filters
from apps.organizations.views import staff_required
from apps.reports import services
from apps.reports.models import ExportFormat, ExportJob
from apps.reports.writers import csv_lines, write_xlsx

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


_query = querystring_without_page


def export(request, name: str, fmt: str):
    if fmt not in ExportFormat.values:
        raise Http404
    resolved = services.export_resolve(name=name, user=request.user, params=request.GET)
    if resolved is None:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404
    spec, queryset = resolved
    total = services.count(queryset)
    if total > settings.EXPORT_STREAM_MAX_ROWS and request.user.is_authenticated:
        try:
            job = services.export_job_create(
                name=name, user=request.user, query=_query(request), fmt=fmt, total_rows=total
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("reports:export-list")
        return redirect(job)
    file_name = services.export_file_name(spec, request.GET, fmt)
    services.export_record_download(user=request.user, name=name, query=_query(request), fmt=fmt, rows=total)
    if fmt == ExportFormat.CSV:
        response = StreamingHttpResponse(
            csv_lines(spec.columns, queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        return response
    handle = tempfile.TemporaryFile()  # noqa: SIM115  FileResponse closes it (and so deletes it)
    write_xlsx(handle, spec.columns, queryset, title=str(spec.title))
    handle.seek(0)
    return FileResponse(handle, as_attachment=True, filename=file_name, content_type=XLSX_TYPE)


def _own_job(request, public_id) -> ExportJob:
    job = ExportJob.objects.filter(public_id=public_id, user=request.user).first()
    if job is None:
        raise Http404
    return job


@login_required
def export_detail(request, public_id):
    job = _own_job(request, public_id)
    return render_page_or_partial(request, "reports/export_detail.html", "progress", {"job": job})


@login_required
def export_download(request, public_id):
    job = _own_job(request, public_id)
    if job.status != ExportJob.Status.DONE or not job.file or job.expires_at <= timezone.now():
        raise Http404
    content_type = XLSX_TYPE if job.format == ExportFormat.XLSX else "text/csv; charset=utf-8"
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:  # removed from the storage behind the portal's back
        raise Http404 from None
    return FileResponse(handle, as_attachment=True, filename=job.file_name, content_type=content_type)


@login_required
def export_list(request):
    jobs = ExportJob.objects.filter(user=request.user).order_by("-created_at")[:50]
    return render(request, "reports/export_list.html", {"jobs": jobs})


# --- statements and settlement -----------------------------------------------------------------------


def _window(request, years: list[int]):
    from apps.reports.selectors import Window, parse_window

    value = request.GET.get("period", "")
    window = parse_window(value)
    error = bool(value) and window is None
    return window or Window.fiscal_year(years[0]), error


@login_required
def org_statement(request, slug: str):
    from apps.organizations.selectors import organization_get_by_slug
    from apps.reports import selectors

    organization = organization_get_by_slug(slug=slug)
    if organization is None or not request.user.has_perm("providers.view_org_grants", organization):
        raise Http404
    years = selectors.statement_years(organization=organization)
    window, bad_period = _window(request, years)
    statement = selectors.statement(organization=organization, window=window)
    return render(
        request,
        "reports/statement.html",
        {
            "organization": organization,
            "statement": statement,
            "window": window,
            "bad_period": bad_period,
            "choices": selectors.window_choices(
                sorted(set(years) | {window.fiscal_year_number}, reverse=True)
            ),
            "chart": _statement_chart(statement),
        },
    )


def _statement_chart(statement) -> dict:
    return {
        "type": "bar",
        "labels": [f"{month:%Y-%m}" for month, _granted, _used in statement.by_month],
        "series": [
            {"label": str(_("Granted (GPU-hours)")), "data": [float(g) for _m, g, _u in statement.by_month]},
            {"label": str(_("Used (GPU-hours)")), "data": [float(u) for _m, _g, u in statement.by_month]},
        ],
    }


def _settlement_page(request, *, provider=None):
    from apps.reports import selectors

    years = sorted({selectors.fiscal_year_of(timezone.localdate()) - k for k in range(3)}, reverse=True)
    window, bad_period = _window(request, years)
    rows = selectors.settlement(window=window, provider=provider)
    return render(
        request,
        "reports/settlement.html",
        {
            "provider": provider,
            "rows": rows,
            "window": window,
            "bad_period": bad_period,
            "choices": selectors.window_choices(
                sorted(set(years) | {window.fiscal_year_number}, reverse=True)
            ),
            "total_hours": sum((r.gpu_hours for r in rows), selectors.ZERO),
            "total_amount": sum((r.amount for r in rows), selectors.ZERO),
        },
    )


@staff_required
def settlement(request):
    return _settlement_page(request)


@login_required
def provider_settlement(request, slug: str):
    from apps.providers.selectors import provider_get

    provider = provider_get(slug=slug)
    if provider is None or not request.user.has_perm("providers.view_provider_console", provider):
        raise Http404
    return _settlement_page(request, provider=provider)


# --- transparency (public) ---------------------------------------------------------------------------


TRANSPARENCY_CACHE_SECONDS = 600


def _cached(key: str, build):
    """Public transparency figures are cached for a few minutes (per language: they carry labels);
    a published round does not change, and usage arrives in batches."""
    from django.core.cache import cache
    from django.utils.translation import get_language

    return cache.get_or_set(f"transparency:{get_language()}:{key}", build, TRANSPARENCY_CACHE_SECONDS)


def transparency_index(request):
    from apps.allocations.models import AllocationRound
    from apps.reports import selectors

    rounds = AllocationRound.objects.filter(status=AllocationRound.Status.PUBLISHED).order_by(
        "-period_start", "-pk"
    )
    return render(
        request,
        "reports/transparency_index.html",
        {"rounds": rounds, "years": selectors.transparency_years()},
    )


def _figures_chart(figures, *, with_capacity=True, with_requested=False) -> dict:
    series = []
    if with_capacity:
        series.append({"label": str(_("Capacity")), "data": [float(f.capacity) for f in figures]})
    if with_requested:
        series.append({"label": str(_("Requested")), "data": [float(f.requested) for f in figures]})
    series.append({"label": str(_("Granted")), "data": [float(f.granted) for f in figures]})
    series.append({"label": str(_("Used")), "data": [float(f.used) for f in figures]})
    return {
        "type": "bar",
        "labels": [f.label for f in figures],
        "series": series,
        "unit": str(_("GPU-hours")),
    }


def _kinds_chart(kinds) -> dict:
    return {
        "type": "doughnut",
        "labels": [f.label for f in kinds],
        "series": [
            {"label": str(_("Share of the GPU-hours granted")), "data": [round(f.share, 1) for f in kinds]}
        ],
    }


def transparency_round(request, round_id: int):
    from apps.allocations.models import AllocationRound
    from apps.reports import selectors

    allocation_round = AllocationRound.objects.filter(
        pk=round_id, status=AllocationRound.Status.PUBLISHED
    ).first()
    if allocation_round is None:
        raise Http404
    report = _cached(
        f"round:{allocation_round.pk}", lambda: selectors.round_report(allocation_round=allocation_round)
    )
    return render(
        request,
        "reports/transparency_round.html",
        {
            "report": report,
            "round": allocation_round,
            "class_chart": _figures_chart(report.classes, with_requested=True),
            "provider_chart": _figures_chart(report.providers),
            "kind_chart": _kinds_chart(report.kinds),
        },
    )


def transparency_year(request, year: int):
    from apps.reports import selectors

    if year not in selectors.transparency_years():
        raise Http404
    report = _cached(f"fy:{year}", lambda: selectors.fiscal_year_report(year=year))
    return render(
        request,
        "reports/transparency_year.html",
        {
            "report": report,
            "class_chart": _figures_chart(report.classes),
            "provider_chart": _figures_chart(report.providers),
            "kind_chart": _kinds_chart(report.kinds),
        },
    )


# --- usage lists and the audit log -----------------------------------------------------------------------

PAGE_SIZE = 50


_valid = valid_filters


def _usage_page(request, *, template: str, listing, organization=None, export: str, scope: dict):
    from django.core.paginator import Paginator

    from apps.reports.forms import UsageFilterForm

    form = UsageFilterForm(request.GET or None, scoped_to_org=organization is not None)
    rows = listing(org=organization, **_valid(form))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        template,
        "results",
        {
            "form": form,
            "page": page,
            "organization": organization,
            "export": export,
            "scope_key": next(iter(scope), ""),
            "scope_value": next(iter(scope.values()), ""),
            "querystring": _query(request),
        },
    )


@staff_required
def usage_months(request):
    from apps.reports import selectors

    return _usage_page(
        request,
        template="reports/usage_months.html",
        listing=selectors.usage_month_list,
        export="usage-months",
        scope={},
    )


@staff_required
def usage_records(request):
    from apps.reports import selectors

    return _usage_page(
        request,
        template="reports/usage_records.html",
        listing=selectors.usage_record_list,
        export="usage-records",
        scope={},
    )


@login_required
def org_usage(request, slug: str):
    from apps.organizations.selectors import organization_get_by_slug
    from apps.reports import selectors

    organization = organization_get_by_slug(slug=slug)
    if organization is None or not request.user.has_perm("providers.view_org_grants", organization):
        raise Http404
    return _usage_page(
        request,
        template="reports/usage_months.html",
        listing=selectors.usage_month_list,
        organization=organization,
        export="usage-months",
        scope={"org": organization.slug},
    )


@staff_required
def audit_log(request):
    from django.core.paginator import Paginator

    from apps.reports import selectors
    from apps.reports.forms import AuditFilterForm

    form = AuditFilterForm(request.GET or None)
    page = Paginator(selectors.audit_event_list(**_valid(form)), PAGE_SIZE).get_page(request.GET.get("page"))
    from apps.governance.selectors import audit_verification_latest

    return render_page_or_partial(
        request,
        "reports/audit_log.html",
        "results",
        {
            "form": form,
            "page": page,
            "querystring": _query(request),
            "verification": audit_verification_latest(),
        },
    )


@staff_required
@require_POST
def audit_verify(request):
    """Staff's "verify now": a worker walks the chain and compares it with every provider's
    checkpoints; the audit log page shows the verdict."""
    from apps.governance.services import audit_verification_request

    verification = audit_verification_request(actor=request.user)
    verification.refresh_from_db()  # without a worker (the demo) the task has run on commit
    if verification.outcome == verification.Outcome.RUNNING:
        messages.info(request, _("The audit chain is being verified against every provider's checkpoints."))
    elif verification.is_broken:
        messages.error(request, _("The audit chain does not verify: see the problems below."))
    else:
        messages.success(request, _("The audit chain was verified: see the result below."))
    return redirect("reports:audit-log")
