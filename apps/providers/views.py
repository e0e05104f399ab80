"""Pages for providers and quota grants: the secretariat's console, a member's grants and a
provider operator's console. Views parse input, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.exceptions import ApplicationError
from apps.core.http import querystring_without_page, render_page_or_partial, valid_filters
from apps.organizations import selectors as org_selectors
from apps.organizations.views import staff_required
from apps.providers import selectors, services
from apps.providers.forms import (
    ConsoleFilterForm,
    DriftAcceptForm,
    DriftFilterForm,
    GrantCreateForm,
    GrantFilterForm,
    GrantRevokeForm,
)
from apps.providers.models import QuotaGrant

PAGE_SIZE = 50


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


_querystring = querystring_without_page
_filters = valid_filters


# --- Secretariat: providers ---------------------------------------------------------------------


@staff_required
def provider_list(request):
    return render(
        request,
        "providers/provider_list.html",
        {"providers": selectors.provider_list_with_pools(), "open_drifts": selectors.drift_open_count()},
    )


@staff_required
def provider_detail(request, slug: str):
    provider = selectors.provider_get_with_health(slug=slug)
    if provider is None:
        raise Http404
    grants = selectors.grant_list_for_provider(provider=provider)
    return render(
        request,
        "providers/provider_detail.html",
        {
            "provider": provider,
            "pools": selectors.pool_list_with_periods(provider=provider),
            "attempts": selectors.delivery_attempt_list(provider=provider),
            "drifts": selectors.drift_list_open(provider=provider)[:20],
            "operators": selectors.provider_operator_list(provider=provider),
            "sync_counts": selectors.sync_state_counts(grants),
            "totals": selectors.grant_totals(grants),
            "usage_rejections": selectors.usage_rejection_summary(provider=provider),
        },
    )


@staff_required
@require_POST
def provider_reconcile(request, slug: str):
    """Compare the provider's quotas with ours now (the same as the scheduled reconciliation)."""
    provider = selectors.provider_get(slug=slug)
    if provider is None:
        raise Http404
    report = services.provider_reconcile(provider_id=provider.pk)
    if report.error:
        messages.error(
            request,
            _("Reconciliation with %(provider)s failed: %(error)s")
            % {"provider": provider.display_name, "error": report.error},
        )
    else:
        messages.success(
            request,
            _(
                "Reconciled with %(provider)s: %(checked)d grants checked, %(missing)d missing at the "
                "provider, %(extra)d unknown to the portal, %(different)d different, %(resolved)d "
                "differences resolved."
            )
            % {"provider": provider.display_name, **report.__dict__},
        )
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("providers:provider-detail", slug=provider.slug)


# --- Secretariat: grants ------------------------------------------------------------------------


@staff_required
def grant_list(request):
    form = GrantFilterForm(request.GET or None)
    grants = selectors.grant_list(**_filters(form))
    page = _page(request, grants)
    return render_page_or_partial(
        request,
        "providers/grant_list.html",
        "results",
        {
            "form": form,
            "page": page,
            "grants": selectors.grant_rows_with_usage(page),
            "sync_counts": [] if request.htmx else selectors.sync_state_counts(selectors.grant_list()),
            "querystring": _querystring(request),
        },
    )


def _get_grant(public_id) -> QuotaGrant:
    grant = selectors.grant_get(public_id=public_id)
    if grant is None:
        raise Http404
    return grant


@staff_required
def grant_detail(request, public_id):
    return _render_grant_detail(request, _get_grant(public_id))


def _render_grant_detail(request, grant: QuotaGrant, *, revoke_form=None, status=200):
    [grant] = selectors.grant_rows_with_usage([grant])
    return render(
        request,
        "providers/grant_detail.html",
        {
            "grant": grant,
            "history": selectors.grant_history(grant=grant),
            "revoke_form": revoke_form or GrantRevokeForm(),
            "can_revoke": grant.state not in (QuotaGrant.State.REVOKING, QuotaGrant.State.REVOKED),
        },
        status=status,
    )


@staff_required
@require_POST
def grant_resend(request, public_id):
    grant = _get_grant(public_id)
    error = message = None
    try:
        services.grant_resend(grant_id=grant.pk, actor=request.user)
    except ApplicationError as exc:
        error = exc.message
    else:
        message = _("The grant will be sent to the provider again.")
    if request.htmx:
        return _grant_row(request, grant.pk, message=message, error=error)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, message)
    return redirect(grant)


@staff_required
@require_POST
def grant_revoke(request, public_id):
    grant = _get_grant(public_id)
    form = GrantRevokeForm(request.POST)
    if not form.is_valid():
        return _render_grant_detail(request, grant, revoke_form=form, status=400)
    try:
        services.grant_revoke(grant_id=grant.pk, actor=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The grant is being revoked at the provider."))
    return redirect(grant)


def _grant_row(request, grant_id: int, *, message=None, error=None):
    """htmx: the grant's row of the grant list, re-rendered after an inline action."""
    grant = selectors.grant_get_for_row(grant_id=grant_id)
    if grant is None:
        raise Http404
    [grant] = selectors.grant_rows_with_usage([grant])
    return render(
        request,
        "providers/grant_list.html#row",
        {"grant": grant, "row_message": message, "row_error": error},
        status=400 if error else 200,
    )


@staff_required
def grant_create(request):
    initial = {"organization": request.GET.get("organization")} if request.method == "GET" else None
    form = GrantCreateForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            grant = services.grant_create(
                organization=data["organization"],
                period_id=data["period"].pk,
                gpu_hours=data["gpu_hours"],
                valid_from=data["valid_from"],
                valid_until=data["valid_until"],
                source=QuotaGrant.Source.MANUAL,
                source_ref=data["source_ref"],
                actor=request.user,
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("The grant was created and will be sent to the provider."))
            return redirect(grant)
    return render(request, "providers/grant_form.html", {"form": form}, status=400 if form.errors else 200)


# --- Secretariat: drifts ------------------------------------------------------------------------


@staff_required
def drift_list(request):
    form = DriftFilterForm(request.GET or None)
    page = _page(request, selectors.drift_list_open(provider_slug=_filters(form).get("provider", "")))
    return render_page_or_partial(
        request,
        "providers/drift_list.html",
        "results",
        {"form": form, "page": page, "accept_form": DriftAcceptForm(), "querystring": _querystring(request)},
    )


@staff_required
@require_POST
def drift_resend(request, drift_id: int):
    drift = _get_drift(drift_id)
    try:
        services.drift_resend(drift_id=drift.pk, actor=request.user)
    except ApplicationError as exc:
        return _drift_result(request, drift.pk, error=exc.message)
    return _drift_result(
        request, drift.pk, message=_("Resent: the grant will be sent to the provider again.")
    )


@staff_required
@require_POST
def drift_accept(request, drift_id: int):
    drift = _get_drift(drift_id)
    form = DriftAcceptForm(request.POST)
    if not form.is_valid():
        return _drift_result(request, drift.pk, form=form)
    try:
        services.drift_accept(drift_id=drift.pk, actor=request.user, note=form.cleaned_data["note"])
    except ApplicationError as exc:
        return _drift_result(request, drift.pk, form=form, error=exc.message)
    return _drift_result(request, drift.pk, message=_("Accepted: the difference is recorded as intended."))


def _get_drift(drift_id: int):
    drift = selectors.drift_get(drift_id=drift_id)
    if drift is None:
        raise Http404
    return drift


def _drift_result(request, drift_id: int, *, message=None, error=None, form=None):
    """htmx: re-render the drift's row; otherwise back to the list with a message."""
    failed = bool(error or (form is not None and form.errors))
    if request.htmx:
        return render(
            request,
            "providers/drift_list.html#row",
            {
                "drift": selectors.drift_get(drift_id=drift_id),
                "accept_form": form or DriftAcceptForm(),
                "row_message": message,
                "row_error": error,
            },
            status=400 if failed else 200,
        )
    if error:
        messages.error(request, error)
    elif form is not None and form.errors:
        for errors in form.errors.values():
            for e in errors:
                messages.error(request, e)
    elif message:
        messages.success(request, message)
    return redirect("providers:drift-list")


# --- Members ------------------------------------------------------------------------------------


@login_required
def org_grants(request, slug: str):
    organization = org_selectors.organization_get_by_slug(slug=slug)
    if organization is None or not request.user.has_perm("providers.view_org_grants", organization):
        raise Http404
    grants = selectors.grant_list_for_org(organization=organization)
    page = _page(request, grants)
    return render(
        request,
        "providers/org_grants.html",
        {
            "organization": organization,
            "page": page,
            "grants": selectors.grant_rows_with_usage(page),
            "totals": selectors.grant_totals(grants),
            "querystring": _querystring(request),
        },
    )


# --- Provider operators -------------------------------------------------------------------------


@login_required
def provider_console(request, slug: str):
    provider = selectors.provider_get(slug=slug)
    if provider is None or not request.user.has_perm("providers.view_provider_console", provider):
        raise Http404
    form = ConsoleFilterForm(request.GET or None)
    all_grants = selectors.grant_list_for_provider(provider=provider)
    page = _page(request, selectors.grant_list_for_provider(provider=provider, **_filters(form)))
    return render_page_or_partial(
        request,
        "providers/provider_console.html",
        "results",
        {
            "provider": provider,
            "form": form,
            "page": page,
            "grants": selectors.grant_rows_with_usage(page),
            "pools": selectors.pool_list_with_periods(provider=provider) if not request.htmx else [],
            "sync_counts": selectors.sync_state_counts(all_grants) if not request.htmx else [],
            "totals": selectors.grant_totals(all_grants) if not request.htmx else {},
            "usage_rejections": (
                selectors.usage_rejection_summary(provider=provider) if not request.htmx else {}
            ),
            "querystring": _querystring(request),
        },
    )
