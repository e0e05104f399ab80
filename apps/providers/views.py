"""Pages for providers and quota grants: the secretariat's console, a member's grants and a
provider operator's console. Views parse input, call one service or selector, render."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from apps.core.exceptions import ApplicationError
from apps.core.http import querystring_without_page, render_page_or_partial, valid_filters
from apps.organizations import selectors as org_selectors
from apps.organizations.views import staff_required
from apps.providers import selectors, services
from apps.providers.forms import (
    ConsoleFilterForm,
    DriftAcceptForm,
    DriftBulkForm,
    DriftFilterForm,
    GrantCreateForm,
    GrantFilterForm,
    GrantRevokeForm,
    OrganizationSearchForm,
)
from apps.providers.models import QuotaGrant

PAGE_SIZE = 50
ORG_SUGGESTIONS = 20


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
    grants = selectors.grant_list_for_provider(provider=provider, with_sync=False)
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
    filters = _filters(form)
    grants = selectors.grant_list(**filters, with_sync=False)
    page = _page(request, grants)
    return render_page_or_partial(
        request,
        "providers/grant_list.html",
        "results",
        {
            "form": form,
            "page": page,
            "grants": selectors.grant_rows_with_usage(page),
            "sync_counts": []
            if request.htmx
            else selectors.sync_state_counts(
                selectors.grant_list(with_sync=False),
                # Unfiltered, the page's paginator has counted every grant already.
                total=None if any(filters.values()) else page.paginator.count,
            ),
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


@staff_required
def grant_org_search(request):
    """The organizations a grant can be made for, by name or slug: the ``<option>``s of the grant
    form's suggestion list for htmx, or a plain page of links back to the form."""
    q = OrganizationSearchForm(request.GET).query()
    organizations = selectors.organization_search_for_granting(q=q, limit=ORG_SUGGESTIONS)
    return render_page_or_partial(
        request, "providers/grant_org_search.html", "options", {"q": q, "organizations": organizations}
    )


# --- Secretariat: drifts ------------------------------------------------------------------------


@staff_required
def drift_list(request):
    form = DriftFilterForm(request.GET or None)
    provider_slug = _filters(form).get("provider", "")
    page = _page(request, selectors.drift_list_open(provider_slug=provider_slug))
    return render_page_or_partial(
        request,
        "providers/drift_list.html",
        "results",
        {
            "form": form,
            "page": page,
            "accept_form": DriftAcceptForm(),
            "bulk_form": DriftBulkForm(initial={"provider": provider_slug}),
            "querystring": _querystring(request),
        },
    )


@staff_required
@require_POST
def drift_bulk(request):
    """Resend or accept the ticked differences (or all the filter shows); htmx re-renders the list."""
    form = DriftBulkForm(request.POST)
    message = error = None
    if form.is_valid():
        data = form.cleaned_data
        ids = data["drift"]
        if data["all_matching"]:
            ids = list(
                selectors.drift_list_open(provider_slug=data["provider"]).values_list("pk", flat=True)[
                    : services.DRIFT_BULK_MAX
                ]
            )
        try:
            result = services.drifts_resolve(
                drift_ids=ids, action=data["action"], actor=request.user, note=data["note"]
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            message = (
                ngettext("%(n)s difference resent.", "%(n)s differences resent.", len(result.done))
                if data["action"] == "resend"
                else ngettext("%(n)s difference accepted.", "%(n)s differences accepted.", len(result.done))
            ) % {"n": len(result.done)}
            if result.skipped:
                error = ngettext("%(n)s skipped: %(why)s", "%(n)s skipped: %(why)s", len(result.skipped)) % {
                    "n": len(result.skipped),
                    "why": "; ".join(sorted({why for _id, why in result.skipped})),
                }
    else:
        # The note's error is shown next to the note.
        error = " ".join(str(e) for name, errors in form.errors.items() if name != "note" for e in errors)
    failed = message is None
    provider_slug = form.cleaned_data.get("provider", "") if hasattr(form, "cleaned_data") else ""
    if request.htmx:
        filter_form = DriftFilterForm({"provider": provider_slug} if provider_slug else None)
        response = render(
            request,
            "providers/drift_list.html#results",
            {
                "form": filter_form,
                "page": _page(request, selectors.drift_list_open(provider_slug=provider_slug)),
                "accept_form": DriftAcceptForm(),
                "bulk_form": form if failed else DriftBulkForm(initial={"provider": provider_slug}),
                "selected": {int(v) for v in request.POST.getlist("drift") if v.isdigit() and len(v) < 19}
                if failed
                else set(),
                "bulk_message": message,
                "bulk_error": error,
                "querystring": f"provider={provider_slug}" if provider_slug else "",
            },
            status=400 if failed else 200,
        )
        return response
    if message:
        messages.success(request, message)
    if error:
        messages.error(request, error)
    url = reverse("providers:drift-list")
    return redirect(f"{url}?{urlencode({'provider': provider_slug})}" if provider_slug else url)


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
    grants = selectors.grant_list_for_org(organization=organization, with_sync=False)
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
    all_grants = selectors.grant_list_for_provider(provider=provider, with_sync=False)
    page = _page(
        request, selectors.grant_list_for_provider(provider=provider, with_sync=False, **_filters(form))
    )
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
