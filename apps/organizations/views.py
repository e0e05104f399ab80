from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.exceptions import ApplicationError
from apps.core.http import querystring_without_page, render_page_or_partial
from apps.core.permissions import has_perm
from apps.organizations import selectors, services
from apps.organizations.forms import (
    ApplicationForm,
    DirectoryFilterForm,
    InvitationForm,
    OrganizationProfileForm,
    ReviewDecisionForm,
    ReviewFilterForm,
    SubmitForm,
    WithdrawForm,
)
from apps.organizations.models import MembershipApplication, OrgRole, ParticipationTerms

DASHBOARD_ORGS_PAGE_SIZE = 25  # the dashboard's list of the user's organizations


def staff_required(view):
    """Secretariat-only views answer 404 to everybody else: they do not exist for them."""

    @login_required
    def wrapper(request, *args, **kwargs):
        if not has_perm(request.user, "organizations.review_application"):
            raise Http404
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


# --- Public pages ----------------------------------------------------------------------------


def terms_current(request):
    terms = services.terms_current()
    return render(
        request,
        "organizations/terms.html",
        {
            "terms": terms,
            "versions": selectors.terms_list_published(),
            "is_current": True,
        },
    )


def terms_version(request, version: str):
    terms = get_object_or_404(ParticipationTerms, version=version, is_published=True)
    current = services.terms_current()
    return render(
        request,
        "organizations/terms.html",
        {
            "terms": terms,
            "versions": selectors.terms_list_published(),
            "is_current": current is not None and current.pk == terms.pk,
        },
    )


def directory(request):
    form = DirectoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    organizations = selectors.directory_list(
        q=filters.get("q", ""), kind=filters.get("kind", ""), provider=filters.get("provider", "")
    )
    page = Paginator(organizations, settings.DIRECTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        "organizations/directory.html",
        "results",
        {
            "form": form,
            "page": page,
            "querystring": _querystring(request),
        },
    )


def organization_detail(request, slug: str):
    organization = selectors.organization_get_by_slug(slug=slug)
    if organization is None or not has_perm(request.user, "organizations.view_org_public", organization):
        raise Http404
    can_view_private = has_perm(request.user, "organizations.view_org_private", organization)
    return render(
        request,
        "organizations/organization_detail.html",
        {
            "organization": organization,
            "can_view_private": can_view_private,
            "can_manage": has_perm(request.user, "organizations.manage_org", organization),
            "people": selectors.organization_people(organization=organization) if can_view_private else [],
        },
    )


# --- Member area -----------------------------------------------------------------------------


@login_required
def dashboard(request):
    user = request.user
    page = Paginator(selectors.organization_list_for_user(user=user), DASHBOARD_ORGS_PAGE_SIZE).get_page(
        request.GET.get("orgs_page")
    )
    context = {
        "organizations": selectors.organization_rows_for_user(page, user=user),
        "orgs_page": page,
        "orgs_querystring": _querystring_without(request, "orgs_page"),
        "applications": selectors.application_list_for_user(user=user)[:20],
        "invitations": selectors.invitation_pending_for_user(user=user),
    }
    if user.is_staff:
        context["queue_counts"] = selectors.application_status_counts()
    return render(request, "organizations/dashboard.html", context)


def _querystring_without(request, key: str) -> str:
    params = request.GET.copy()
    params.pop(key, None)
    return params.urlencode()


def _get_private_org(request, slug: str):
    organization = selectors.organization_get_by_slug(slug=slug)
    if organization is None or not has_perm(request.user, "organizations.view_org_private", organization):
        raise Http404
    return organization


@login_required
def organization_manage(request, slug: str):
    organization = _get_private_org(request, slug)
    can_manage = has_perm(request.user, "organizations.manage_org", organization)
    invite_form = InvitationForm(_posted(request)) if can_manage else None
    if request.method == "POST":
        if not can_manage:
            raise Http404
        if invite_form.is_valid():
            try:
                services.invitation_create(
                    organization_id=organization.pk, inviter=request.user, **invite_form.cleaned_data
                )
            except ApplicationError as exc:
                invite_form.add_error(None, exc.message)
            else:
                messages.success(request, _("Invitation sent to %(email)s.") % invite_form.cleaned_data)
                return redirect("organizations:org-manage", slug=slug)
    return render(
        request,
        "organizations/organization_manage.html",
        {
            "organization": organization,
            "can_manage": can_manage,
            "people": selectors.organization_people(organization=organization),
            "invitations": selectors.invitation_list_for_org(organization=organization) if can_manage else [],
            "invite_form": invite_form,
        },
    )


@login_required
def organization_profile(request, slug: str):
    organization = _get_private_org(request, slug)
    if not has_perm(request.user, "organizations.manage_org", organization):
        raise Http404
    form = OrganizationProfileForm(_posted(request), instance=organization)
    if request.method == "POST" and form.is_valid():
        services.organization_update_profile(
            organization_id=organization.pk, actor=request.user, data=form.cleaned_data
        )
        messages.success(request, _("The organization's profile was saved."))
        return redirect("organizations:org-manage", slug=slug)
    return render(
        request, "organizations/organization_profile.html", {"organization": organization, "form": form}
    )


@login_required
@require_POST
def invitation_revoke(request, slug: str, invitation_id: int):
    organization = _get_private_org(request, slug)
    if not has_perm(request.user, "organizations.manage_org", organization):
        raise Http404
    invitation = get_object_or_404(organization.invitations, pk=invitation_id)
    try:
        services.invitation_revoke(invitation_id=invitation.pk, actor=request.user)
        messages.success(request, _("The invitation was revoked."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("organizations:org-manage", slug=slug)


@login_required
@require_POST
def role_remove(request, slug: str, role_id: int):
    organization = _get_private_org(request, slug)
    if not has_perm(request.user, "organizations.manage_org", organization):
        raise Http404
    role = get_object_or_404(OrgRole, pk=role_id, organization=organization)
    try:
        services.org_role_remove(role_id=role.pk, actor=request.user)
        messages.success(request, _("The role was removed."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("organizations:org-manage", slug=slug)


def invitation_accept(request, token: str):
    invitation = services.invitation_get_by_token(token)
    if invitation is None:
        raise Http404
    error = None
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            services.invitation_accept(token=token, user=request.user)
        except ApplicationError as exc:
            error = exc.message
        else:
            messages.success(
                request, _("Welcome to %(org)s.") % {"org": invitation.organization.display_name}
            )
            return redirect("dashboard")
    return render(
        request,
        "organizations/invitation_accept.html",
        {
            "invitation": invitation,
            "error": error,
            "token": token,
            "email_matches": request.user.is_authenticated
            and request.user.email.lower() == invitation.email.lower(),
        },
        status=400 if error else 200,
    )


# --- Applications (applicant side) ------------------------------------------------------------


def _get_own_application(request, application_id: int) -> MembershipApplication:
    application = selectors.application_get(application_id=application_id)
    if application is None or not has_perm(request.user, "organizations.view_application", application):
        raise Http404
    return application


@login_required
def application_new(request):
    form = ApplicationForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        data = {**form.cleaned_data, "home_provider": form.cleaned_data["home_provider"]}
        application = services.application_create(applicant=request.user, data=data)
        messages.success(request, _("Your draft was saved. Review it and submit it when ready."))
        return redirect(application)
    return render(request, "organizations/application_form.html", {"form": form, "application": None})


@login_required
def application_edit(request, application_id: int):
    application = _get_own_application(request, application_id)
    if application.applicant_id != request.user.pk:
        raise Http404
    if not application.is_editable:
        messages.error(request, _("This application can no longer be edited."))
        return redirect(application)
    form = ApplicationForm(_posted(request), instance=application)
    if request.method == "POST" and form.is_valid():
        try:
            services.application_update(
                application_id=application.pk, actor=request.user, data=form.cleaned_data
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your changes were saved."))
            return redirect(application)
    # The form's instance was changed by validation; show the stored one alongside.
    return render(request, "organizations/application_form.html", {"form": form, "application": application})


@login_required
def application_detail(request, application_id: int):
    application = _get_own_application(request, application_id)
    submit_form = SubmitForm(_posted(request))
    if request.method == "POST":
        if application.applicant_id != request.user.pk:
            raise Http404
        if submit_form.is_valid():
            try:
                services.application_submit(
                    application_id=application.pk, actor=request.user, accept_terms=True
                )
            except ApplicationError as exc:
                submit_form.add_error(None, exc.message)
            else:
                messages.success(
                    request, _("Your application was submitted. The secretariat will review it.")
                )
                return redirect(application)
    return render(
        request,
        "organizations/application_detail.html",
        {
            "application": application,
            "submit_form": submit_form,
            "withdraw_form": WithdrawForm(),
            "terms": services.terms_current(),
            "is_applicant": application.applicant_id == request.user.pk,
        },
        status=400 if submit_form.errors else 200,
    )


@login_required
@require_POST
def application_withdraw(request, application_id: int):
    application = _get_own_application(request, application_id)
    if application.applicant_id != request.user.pk:
        raise Http404
    form = WithdrawForm(request.POST)
    form.is_valid()
    try:
        services.application_withdraw(
            application_id=application.pk, actor=request.user, reason=form.cleaned_data.get("reason", "")
        )
        messages.success(request, _("Your application was withdrawn."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(application)


# --- Secretariat review queue ------------------------------------------------------------------


@staff_required
def review_queue(request):
    form = ReviewFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    applications = selectors.application_review_queue(
        status=filters.get("status", ""), kind=filters.get("kind", ""), q=filters.get("q", "")
    )
    page = Paginator(applications, settings.REVIEW_QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page_or_partial(
        request,
        "organizations/review_queue.html",
        "results",
        {
            "form": form,
            "page": page,
            "counts": _status_counts(form),
            "decision_form": ReviewDecisionForm(),
            "querystring": _querystring(request),
        },
    )


@staff_required
def review_detail(request, application_id: int):
    application = selectors.application_get(application_id=application_id)
    if application is None or application.status == MembershipApplication.Status.DRAFT:
        raise Http404
    return render(
        request,
        "organizations/review_detail.html",
        {
            "application": application,
            "decision_form": ReviewDecisionForm(initial={"tier": application.requested_tier}),
        },
    )


@staff_required
@require_POST
def review_start(request, application_id: int):
    try:
        services.application_start_review(application_id=application_id, reviewer=request.user)
    except ApplicationError as exc:
        return _review_result(request, application_id, error=exc.message)
    return _review_result(request, application_id, message=_("Review started."))


@staff_required
@require_POST
def review_decide(request, application_id: int):
    form = ReviewDecisionForm(request.POST)
    if not form.is_valid():
        return _review_result(request, application_id, form=form)
    decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
    try:
        if decision == "approve":
            services.application_approve(
                application_id=application_id,
                reviewer=request.user,
                tier=form.cleaned_data.get("tier") or None,
                reason=reason,
            )
            message = _("Approved: the organization is now a member.")
        elif decision == "request_changes":
            services.application_request_changes(
                application_id=application_id, reviewer=request.user, reason=reason
            )
            message = _("Sent back to the applicant for changes.")
        else:
            services.application_reject(application_id=application_id, reviewer=request.user, reason=reason)
            message = _("Rejected.")
    except ApplicationError as exc:
        return _review_result(request, application_id, form=form, error=exc.message)
    return _review_result(request, application_id, message=message)


def _review_result(request, application_id, *, message=None, error=None, form=None):
    """htmx: re-render the application's row in the queue; otherwise back to the page."""
    application = selectors.application_get(application_id=application_id)
    if application is None:
        raise Http404
    if request.htmx:
        # The row is swapped in place; the status counts above the table follow out of band.
        return render(
            request,
            "organizations/review_queue.html#row_response",
            {
                "oob": True,
                "counts": _status_counts(ReviewFilterForm()),
                "application": application,
                "decision_form": form or ReviewDecisionForm(),
                "row_message": message,
                "row_error": error,
            },
            status=400 if (error or (form and form.errors)) else 200,
        )
    if error:
        messages.error(request, error)
    elif form is not None and form.errors:
        for errors in form.errors.values():
            for e in errors:
                messages.error(request, e)
    elif message:
        messages.success(request, message)
    return redirect("organizations:review-detail", application_id=application_id)


def _status_counts(form) -> list[tuple[str, str, int]]:
    counts = selectors.application_status_counts()
    return [(value, label, counts.get(value, 0)) for value, label in form.fields["status"].choices if value]


_querystring = querystring_without_page  # imported by other apps' views


def _posted(request):
    """Bind forms on POST even when the body is empty, so an empty submission shows errors."""
    return request.POST if request.method == "POST" else None
