"""Pages of the allocation round: the secretariat runs rounds (create, close, compute, adjust,
publish); an organization's owners and administrators file requests and read their result.
Views parse input, call one service or selector, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.allocations import selectors, services
from apps.allocations.forms import AdjustForm, RequestForm, ResultFilterForm, RoundCreateForm
from apps.allocations.models import AllocationRequest, AllocationRound
from apps.core.exceptions import ApplicationError
from apps.core.http import querystring_without_page, render_page_or_partial, valid_filters
from apps.organizations import selectors as org_selectors
from apps.organizations.views import _posted, staff_required

Status = AllocationRound.Status
RESULTS_PER_PAGE = 50


def _get_round(round_id: int) -> AllocationRound:
    allocation_round = selectors.round_get(round_id=round_id)
    if allocation_round is None:
        raise Http404
    return allocation_round


# --- Secretariat ---------------------------------------------------------------------------------


@staff_required
def round_list(request):
    form = RoundCreateForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            allocation_round = services.round_create(
                name=data["name"],
                fiscal_year=data["fiscal_year"],
                period_start=data["period_start"],
                period_end=data["period_end"],
                policy_id=data["policy"].pk if data["policy"] else None,
                actor=request.user,
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("The round is open for requests."))
            return redirect("allocations:round-detail", round_id=allocation_round.pk)
    return render(
        request,
        "allocations/round_list.html",
        {"rounds": selectors.round_list(), "form": form},
        status=400 if form.errors else 200,
    )


@staff_required
def round_detail(request, round_id: int):
    """The round; htmx asks only for its progress partial (polled while a compute task runs)."""
    allocation_round = _get_round(round_id)
    computing = selectors.round_is_computing(allocation_round)
    context = {"round": allocation_round, "computing": computing}
    if request.htmx:
        response = render_page_or_partial(request, "allocations/round_detail.html", "progress", context)
        if not computing:
            response["HX-Refresh"] = "true"  # done (or failed): show the whole page with the results
        return response
    context["summary"] = selectors.request_summary(allocation_round=allocation_round)
    context["can_adjust"] = allocation_round.status == Status.COMPUTED and not computing
    if allocation_round.status in (Status.COMPUTED, Status.PUBLISHED):
        round_pools = selectors.round_pool_list(allocation_round=allocation_round)
        context["classes"] = selectors.round_result_summary(
            allocation_round=allocation_round, round_pools=round_pools
        )
        context |= _results_context(request, allocation_round, round_pools, context["classes"])
    else:
        context["classes"] = []
    return render_page_or_partial(request, "allocations/round_detail.html", "progress", context)


def _results_context(request, allocation_round, round_pools, classes=()) -> dict:
    form = ResultFilterForm(
        request.GET or None, round_pools=round_pools, gpu_classes=[c.gpu_class for c in classes]
    )
    return {
        "form": form,
        "results": selectors.round_result_page(
            allocation_round=allocation_round,
            page_number=request.GET.get("page"),
            per_page=RESULTS_PER_PAGE,
            classes=classes or None,
            **valid_filters(form),
        ),
        "querystring": querystring_without_page(request),
    }


@staff_required
def round_results(request, round_id: int):
    """The filtered, paginated result list of the round alone (what htmx swaps in when a filter or
    a page changes); the round's page shows the same list under its totals."""
    allocation_round = _get_round(round_id)
    if allocation_round.status not in (Status.COMPUTED, Status.PUBLISHED):
        raise Http404
    round_pools = selectors.round_pool_list(allocation_round=allocation_round)
    context = {
        "round": allocation_round,
        "can_adjust": allocation_round.status == Status.COMPUTED
        and not selectors.round_is_computing(allocation_round),
    } | _results_context(request, allocation_round, round_pools)
    response = render(request, "allocations/round_detail.html#results", context)
    patch_vary_headers(response, ("HX-Request",))
    # The address bar shows the round's page with these filters (a reload shows the whole page).
    detail = reverse("allocations:round-detail", args=[allocation_round.pk])
    given = urlencode([(key, value) for key, value in request.GET.items() if value])
    response["HX-Push-Url"] = f"{detail}?{given}" if given else detail
    return response


def _round_actions() -> dict:
    return {
        "close": (services.round_close, _("The round is closed: requests can no longer be changed.")),
        "reopen": (services.round_reopen, _("The round is open for requests again.")),
        "compute": (services.round_compute_enqueue, _("The computation of the allocation was started.")),
        "publish": (services.round_publish, _("The round is published: the grants were created.")),
    }


@staff_required
@require_POST
def round_action(request, round_id: int, action: str):
    allocation_round = _get_round(round_id)
    service, message = _round_actions()[action]
    try:
        service(round_id=allocation_round.pk, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, message)
    return redirect("allocations:round-detail", round_id=allocation_round.pk)


@staff_required
@require_POST
def result_adjust(request, result_id: int):
    """Change one (organization, pool) amount with a reason; htmx swaps the organization's row."""
    found = selectors.result_row(result_id=result_id)
    if found is None:
        raise Http404
    result, _row = found
    form = AdjustForm(request.POST)
    error = None
    if form.is_valid():
        try:
            services.result_adjust(
                result_id=result.pk,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                actor=request.user,
            )
        except ApplicationError as exc:
            error = exc.message
    else:
        error = " ".join(e for errors in form.errors.values() for e in errors)
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, _("The amount was adjusted."))
        return redirect("allocations:round-detail", round_id=result.round_id)
    result, row = selectors.result_row(result_id=result_id)
    return render(
        request,
        "allocations/round_detail.html#org-row",
        {
            "round": result.round,
            "row": row,
            "can_adjust": result.round.status == Status.COMPUTED,
            "row_error": error,
            "row_error_for": result.pk,
            "row_form": form if error else None,
            "row_message": None if error else _("The amount was adjusted."),
        },
        status=400 if error else 200,
    )


# --- Members -------------------------------------------------------------------------------------


def _get_org(request, slug: str):
    """The organization, for its owners and administrators (and the secretariat); 404 otherwise."""
    organization = org_selectors.organization_get_by_slug(slug=slug)
    if organization is None or not (
        request.user.has_perm("allocations.request_for_org", organization)
        or request.user.has_perm("allocations.manage_round")
    ):
        raise Http404
    return organization


def _org_rounds_context(request, organization, *, bound: dict | None = None) -> dict:
    """Open rounds, each with one form per GPU class offered (the org's request, or a new one)."""
    open_rounds = list(selectors.round_list_open())
    requests = selectors.org_requests(organization=organization, rounds=open_rounds)
    by_key = {(r.round_id, r.gpu_class): r for r in requests}
    pools = selectors.pools_by_class()
    bound = bound or {}
    sections = []
    for allocation_round in open_rounds:
        entries = []
        for gpu_class in sorted(pools):
            existing = by_key.get((allocation_round.pk, gpu_class))
            key = (allocation_round.pk, gpu_class)
            if key in bound:
                form = bound[key]
            else:
                initial = None
                if existing is not None:
                    initial = {
                        "demand_gpu_hours": existing.demand_gpu_hours,
                        "floor_gpu_hours": existing.floor_gpu_hours,
                        "justification": existing.justification,
                        "eligible_pools": [p.pk for p in existing.eligible_pools.all()],
                    }
                form = RequestForm(initial=initial, gpu_class=gpu_class, pools=pools[gpu_class])
            entries.append({"gpu_class": gpu_class, "request": existing, "form": form})
        sections.append({"round": allocation_round, "entries": entries})
    return {
        "organization": organization,
        "sections": sections,
        "past_rounds": selectors.round_list_for_org(
            organization=organization, include_computed=request.user.has_perm("allocations.manage_round")
        ),
    }


@login_required
def org_rounds(request, slug: str):
    organization = _get_org(request, slug)
    return render(request, "allocations/org_rounds.html", _org_rounds_context(request, organization))


def _org_rounds_error(request, organization, key, form, error=None):
    if error:
        form.add_error(None, error)
        messages.error(request, error)  # also shown when the round's form is no longer on the page
    context = _org_rounds_context(request, organization, bound={key: form})
    return render(request, "allocations/org_rounds.html", context, status=400)


@login_required
@require_POST
def org_request_save(request, slug: str, round_id: int, gpu_class: str):
    """File the organization's request for a class, or change it if there is one."""
    organization = _get_org(request, slug)
    allocation_round = _get_round(round_id)
    pools = selectors.pools_by_class()
    if gpu_class not in pools:
        raise Http404
    form = RequestForm(request.POST, gpu_class=gpu_class, pools=pools[gpu_class])
    key = (allocation_round.pk, gpu_class)
    if not form.is_valid():
        return _org_rounds_error(request, organization, key, form)
    data = form.cleaned_data
    fields = {
        "demand_gpu_hours": data["demand_gpu_hours"],
        "floor_gpu_hours": data["floor_gpu_hours"],
        "justification": data["justification"],
        "eligible_pool_ids": [p.pk for p in data["eligible_pools"]],
        "actor": request.user,
    }
    existing = AllocationRequest.objects.filter(
        round=allocation_round, organization=organization, gpu_class=gpu_class
    ).first()
    try:
        if existing is None:
            services.request_submit(
                round_id=allocation_round.pk, organization=organization, gpu_class=gpu_class, **fields
            )
        else:
            services.request_update(request_id=existing.pk, **fields)
    except ApplicationError as exc:
        return _org_rounds_error(request, organization, key, form, exc.message)
    messages.success(
        request,
        _("The request for %(cls)s in %(round)s was saved.")
        % {"cls": gpu_class, "round": allocation_round.name},
    )
    return redirect("allocations:org-rounds", slug=organization.slug)


@login_required
@require_POST
def org_request_withdraw(request, slug: str, request_id: int):
    organization = _get_org(request, slug)
    allocation_request = AllocationRequest.objects.filter(pk=request_id, organization=organization).first()
    if allocation_request is None:
        raise Http404
    try:
        services.request_withdraw(request_id=allocation_request.pk, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("The request for %(cls)s was withdrawn.") % {"cls": allocation_request.gpu_class}
        )
    return redirect("allocations:org-rounds", slug=organization.slug)


@login_required
def org_round_detail(request, slug: str, round_id: int):
    """The organization's result with its explanation: once published (staff: once computed)."""
    organization = _get_org(request, slug)
    allocation_round = _get_round(round_id)
    visible = [Status.PUBLISHED] + (
        [Status.COMPUTED] if request.user.has_perm("allocations.manage_round") else []
    )
    context = {"organization": organization, "round": allocation_round, "visible": False}
    if allocation_round.status in visible:
        context |= {"visible": True} | selectors.org_round_result(
            allocation_round=allocation_round, organization=organization
        )
    else:
        context["requests"] = selectors.org_requests(organization=organization, rounds=[allocation_round])
    return render(request, "allocations/org_round_detail.html", context)
