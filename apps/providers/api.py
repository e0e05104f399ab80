"""The portal's side of the Provider API: providers push usage here, signed with their key."""

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.providers import signing
from apps.providers.models import Provider, UsageRejection
from apps.providers.usage import BadDocument, UsageRejected, parse_json_document, usage_ingest

MAX_RECORDS_PER_PUSH = 10_000


def _error(status: int, code: str, message: str, **extra) -> JsonResponse:
    if status == 400:
        extra.setdefault("errors", [{"index": None, "record_id": None, "errors": {"body": [message]}}])
    return JsonResponse({"error": message, "code": code, **extra}, status=status)


@csrf_exempt
@require_POST
def usage_push(request, slug: str):
    provider = Provider.objects.filter(slug=slug, is_active=True).first()
    if provider is None:
        return _error(404, "not_found", "unknown provider")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(400, "too_large", "the body is larger than the portal accepts")
    if request.headers.get(signing.HEADER_KEY_ID) != provider.api_key_id or not provider.api_secret:
        return _error(401, "bad_signature", "unknown key id")
    try:
        signing.verify(
            secret=provider.api_secret,
            method=request.method,
            path=request.get_full_path(),
            body=body,
            timestamp=request.headers.get(signing.HEADER_TIMESTAMP),
            signature=request.headers.get(signing.HEADER_SIGNATURE),
        )
    except signing.SignatureError as exc:
        return _error(401, "bad_signature", exc.reason)
    try:
        data = parse_json_document(body)
    except BadDocument as exc:
        return _error(400, "invalid", exc.reason)
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list):
        return _error(400, "invalid", "expected an object with a list under 'records'")
    if len(records) > MAX_RECORDS_PER_PUSH:
        return _error(400, "too_many", f"at most {MAX_RECORDS_PER_PUSH} records per request")
    try:
        result = usage_ingest(
            provider=provider, records=records, strict=True, source=UsageRejection.Source.PUSH
        )
    except UsageRejected as exc:
        return _error(
            400,
            "invalid_records",
            f"{len(exc.errors)} invalid records; nothing was stored",
            errors=exc.errors,
        )
    return JsonResponse({"accepted": result.accepted, "duplicates": result.duplicates})
