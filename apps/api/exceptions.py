"""Every error of the member API is JSON: ``{"detail": …, "code": …}``, plus ``"errors"`` (messages
per field; ``non_field_errors`` for the request as a whole) on every 400, whatever raised it: a
serializer or filter, a body that is not JSON (ParseError), or a refusal of a service
(ApplicationError) — the OpenAPI schema promises ``errors`` on every 400."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from apps.core.exceptions import ApplicationError

# ApplicationError codes that are not plain refusals of the input.
APPLICATION_ERROR_STATUS = {"forbidden": status.HTTP_403_FORBIDDEN, "not_found": status.HTTP_404_NOT_FOUND}


def _messages(detail):
    """ErrorDetail trees as plain strings, keeping their shape (lists, dicts by field or index)."""
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_messages(item) for item in detail]
    return str(detail)


def _first_code(codes) -> str:
    if isinstance(codes, dict):
        codes = next(iter(codes.values()), "invalid")
    if isinstance(codes, list):
        codes = codes[0] if codes else "invalid"
    if isinstance(codes, dict | list):
        return _first_code(codes)
    return codes if isinstance(codes, str) else "invalid"  # a message without a code


def api_exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        body = {"detail": str(exc.message), "code": exc.code}
        if exc.extra:
            body["extra"] = exc.extra
        answer = APPLICATION_ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST)
        if answer == status.HTTP_400_BAD_REQUEST:
            body["errors"] = {"non_field_errors": [str(exc.message)]}
        return Response(body, status=answer)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: let Django report it
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        errors = _messages(detail) if isinstance(detail, dict) else {"non_field_errors": _messages(detail)}
        non_field = errors.get("non_field_errors")
        message = (
            non_field[0]
            if isinstance(non_field, list) and non_field and isinstance(non_field[0], str)
            else _("The request is not valid: see the errors by field.")
        )
        response.data = {"detail": message, "code": _first_code(exc.get_codes()), "errors": errors}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = _first_code(exc.get_codes()) if isinstance(exc, exceptions.APIException) else "error"
        response.data = {"detail": str(_messages(detail)), "code": code}
        if response.status_code == status.HTTP_400_BAD_REQUEST:  # ParseError and the like
            response.data["errors"] = {"non_field_errors": [response.data["detail"]]}
    return response
