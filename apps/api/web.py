"""The HTML side of the member API: the token section of the profile page (create, revoke), the
Swagger UI, and the JSON 404 for unknown /api/v1/ paths."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.views import SpectacularSwaggerSplitView

from apps.api import selectors, services
from apps.api.forms import TokenCreateForm
from apps.core.exceptions import ApplicationError

SECTION = "api/_tokens_section.html"


class SwaggerDocs(SpectacularSwaggerSplitView):
    """Swagger UI from the sidecar's files; the init script is a separate file (CSP: no inline
    script) and the page has no inline style (api/swagger_ui.html)."""

    template_name = "api/swagger_ui.html"


@csrf_exempt  # API clients send no CSRF token; this view changes nothing
def api_not_found(request, *args, **kwargs):
    path = request.path_info
    detail = _("There is no such API endpoint.")
    if not path.endswith("/"):
        try:
            resolve(path + "/")
        except Resolver404:
            pass
        else:
            detail = _("There is no such API endpoint. Did you mean %(path)s?") % {"path": path + "/"}
    return JsonResponse({"detail": detail, "code": "not_found"}, status=404)


def _section(request, *, form=None, secret=None) -> dict:
    return {
        "tokens": list(selectors.token_list_for_user(user=request.user)),
        "form": form or TokenCreateForm(user=request.user),
        "secret": secret,
    }


def _render(request, section: dict, *, status: int = 200):
    """The section alone for htmx, else the token page."""
    template = SECTION if request.htmx else "api/tokens.html"
    response = render(request, template, {"api_section": section}, status=status)
    patch_vary_headers(response, ("HX-Request",))
    if section.get("secret"):
        add_never_cache_headers(response)  # the secret is in this page: keep it out of caches
    return response


@login_required
@require_GET
def token_list(request):
    return _render(request, _section(request))


@login_required
@require_POST
def token_create(request):
    form = TokenCreateForm(request.POST, user=request.user)
    if not form.is_valid():
        return _render(request, _section(request, form=form), status=400)
    data = form.cleaned_data
    try:
        token, secret = services.token_create(
            user=request.user,
            name=data["name"],
            scope=data["scope"],
            expires_in_days=data["lifetime"],
            organization_ids=[o.pk for o in data["organizations"]],
        )
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _render(request, _section(request, form=form), status=400)
    return _render(request, _section(request, secret={"value": secret, "token": token}))


@login_required
@require_POST
def token_revoke(request, token_id: int):
    try:
        token = services.token_revoke(token_id=token_id, actor=request.user)
    except ApplicationError as exc:
        if exc.code == "not_found":
            raise Http404 from exc
        error, message = exc.message, None
    else:
        error, message = None, _("The token “%(name)s” was revoked.") % {"name": token.name}
    if request.htmx:
        section = _section(request)
        section["message"], section["error"] = message, error
        return _render(request, section, status=400 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, message)
    return redirect("accounts:profile")
