"""Views of the member API (/api/v1/). Thin: parse, call one selector or service, serialize.

Every organization-scoped view looks the organization up among those the token reaches
(``selectors.organization_get_for_token``), so another organization's data answers 404 alike.
"""

from __future__ import annotations

import re
import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.allocations import selectors as allocation_selectors
from apps.allocations import services as allocation_services
from apps.allocations.models import AllocationRequest
from apps.api import filters, selectors, serializers
from apps.api.filters import parse_month
from apps.api.parsers import SafeJSONParser
from apps.api.schema import LIST_ERRORS, READ_ERRORS, WRITE_ERRORS, ValidationErrorSerializer
from apps.core.exceptions import ApplicationError
from apps.providers.models import QuotaGrant, UsageRecord

PERIOD_PATTERN = r"^(FY2[0-9]{3}|2[0-9]{3}-(0[1-9]|1[0-2]))?$"
OPTIONAL_MONTH_PATTERN = r"^(2[0-9]{3}-(0[1-9]|1[0-2]))?$"
SLUG = OpenApiParameter(
    "slug",
    {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 80},
    OpenApiParameter.PATH,
    description="The organization's slug.",
)


class StrictQueryMixin:
    """Unknown query parameters answer 400: a misspelt filter (``?stat=active``) used to be ignored
    silently and return everything. Known: the filter set's, the paginator's, ``query_params``."""

    query_params: tuple[str, ...] = ()
    parser_classes = [SafeJSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions and throttles first
        known = set(self.query_params)
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is not None:
            known |= set(filterset_class.base_filters)
        is_list = request.method == "GET" and callable(getattr(self, "list", None))
        paginator = getattr(self, "paginator", None) if is_list else None
        if paginator is not None:
            known |= {paginator.page_query_param, paginator.page_size_query_param}
        unknown = sorted(name for name in request.query_params if name not in known)
        if unknown:
            message = _("Unknown parameter; known parameters: %(known)s.") % {
                "known": ", ".join(sorted(known)) or "—"
            }
            raise ValidationError({name[:100]: [message] for name in unknown[:20]}, code="unknown_parameter")


class OrgScopedMixin:
    """Finds ``self.organization`` among the organizations the token reaches; 404 otherwise."""

    def get_organization(self):
        if not hasattr(self, "_organization"):
            organization = selectors.organization_get_for_token(
                user=self.request.user, token=self.request.auth, slug=self.kwargs["slug"]
            )
            if organization is None:
                raise NotFound(_("No organization with this slug is reachable with this token."))
            self._organization = organization
        return self._organization

    def require_request_filer(self, organization) -> None:
        if not self.request.user.has_perm("allocations.request_for_org", organization):
            raise PermissionDenied(
                _("Only an owner or administrator of the organization can file its requests.")
            )


# --- organizations -------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        summary="Your organizations",
        tags=["organizations"],
        responses={200: serializers.OrganizationSerializer(many=True), **LIST_ERRORS},
    )
)
class OrganizationList(StrictQueryMixin, generics.ListAPIView):
    """The organizations you belong to that this token reaches, with your roles in each."""

    serializer_class = serializers.OrganizationSerializer

    def get_queryset(self):
        return selectors.organization_list_for_token(user=self.request.user, token=self.request.auth)


@extend_schema_view(
    get=extend_schema(
        summary="One of your organizations",
        tags=["organizations"],
        parameters=[SLUG],
        responses={200: serializers.OrganizationSerializer, **READ_ERRORS},
    )
)
class OrganizationDetail(StrictQueryMixin, OrgScopedMixin, generics.RetrieveAPIView):
    """One organization; 404 if you have no role in it or the token does not reach it."""

    serializer_class = serializers.OrganizationSerializer

    def get_object(self):
        return self.get_organization()


# --- rounds --------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        summary="Allocation rounds",
        tags=["rounds"],
        responses={200: serializers.RoundSerializer(many=True), **LIST_ERRORS},
    )
)
class RoundList(StrictQueryMixin, generics.ListAPIView):
    """Rounds open for requests, closed, or published (newest first)."""

    serializer_class = serializers.RoundSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = filters.RoundFilter

    def get_queryset(self):
        return selectors.round_list_for_members()


@extend_schema_view(
    get=extend_schema(
        summary="One allocation round",
        tags=["rounds"],
        responses={200: serializers.RoundSerializer, **READ_ERRORS},
    )
)
class RoundDetail(StrictQueryMixin, generics.RetrieveAPIView):
    """One round (open, closed or published)."""

    serializer_class = serializers.RoundSerializer
    lookup_url_kwarg = "round_id"

    def get_queryset(self):
        return selectors.round_list_for_members()


# --- requests ------------------------------------------------------------------------------------


def _request_fields(data: dict) -> dict:
    return {
        "demand_gpu_hours": data["demand_gpu_hours"],
        "floor_gpu_hours": data.get("floor_gpu_hours"),
        "justification": data["justification"],
        "eligible_pool_ids": [pool.pk for pool in data.get("eligible_pools") or []],
    }


def _reloaded(view, request_id: int):
    return selectors.request_list_for_org(organization=view.get_organization()).get(pk=request_id)


@extend_schema_view(
    get=extend_schema(
        summary="The organization's allocation requests",
        tags=["requests"],
        parameters=[SLUG],
        responses={200: serializers.RequestSerializer(many=True), **LIST_ERRORS},
    ),
    post=extend_schema(
        summary="File a request for one GPU class in an open round",
        tags=["requests"],
        parameters=[SLUG],
        request=serializers.RequestCreateSerializer,
        responses={201: serializers.RequestSerializer, **WRITE_ERRORS},
    ),
)
class RequestListCreate(StrictQueryMixin, OrgScopedMixin, generics.ListAPIView):
    """The organization's requests (one per GPU class and round). Owners and administrators file
    new ones with a read-write token while the round is open."""

    serializer_class = serializers.RequestSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = filters.RequestFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no organization
            return AllocationRequest.objects.none()
        return selectors.request_list_for_org(organization=self.get_organization())

    def post(self, request, slug: str):
        organization = self.get_organization()
        self.require_request_filer(organization)
        serializer = serializers.RequestCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            created = allocation_services.request_submit(
                round_id=data["round"],
                organization=organization,
                gpu_class=data["gpu_class"],
                actor=request.user,
                **_request_fields(data),
            )
        except ApplicationError as exc:
            if exc.code == "not_found":  # the round: an input error here, not a missing URL
                raise ValidationError({"round": [exc.message]}, code="unknown_round") from exc
            raise
        except IntegrityError as exc:  # a concurrent request for the same class won the race
            raise ApplicationError(
                _("This organization already has a request for %(cls)s in this round; change that one.")
                % {"cls": data["gpu_class"]},
                code="duplicate",
            ) from exc
        return Response(
            serializers.RequestSerializer(_reloaded(self, created.pk)).data, status=status.HTTP_201_CREATED
        )


@extend_schema_view(
    get=extend_schema(
        summary="One request",
        tags=["requests"],
        parameters=[SLUG],
        responses={200: serializers.RequestSerializer, **READ_ERRORS},
    ),
    put=extend_schema(
        summary="Replace a request's demand, floor, justification and pools (round open)",
        tags=["requests"],
        parameters=[SLUG],
        request=serializers.RequestUpdateSerializer,
        responses={200: serializers.RequestSerializer, **WRITE_ERRORS},
    ),
    patch=extend_schema(
        summary="Change some of a request's fields (round open)",
        tags=["requests"],
        parameters=[SLUG],
        request=serializers.RequestUpdateSerializer(partial=True),
        responses={200: serializers.RequestSerializer, **WRITE_ERRORS},
    ),
    delete=extend_schema(
        summary="Withdraw a request (round open)",
        tags=["requests"],
        parameters=[SLUG],
        responses={204: OpenApiResponse(description="Withdrawn."), **WRITE_ERRORS},
    ),
)
class RequestDetail(StrictQueryMixin, OrgScopedMixin, generics.RetrieveAPIView):
    """One request. PUT replaces the demand, floor, justification and eligible pools; PATCH changes
    the fields given; DELETE withdraws it. Only while its round is open, by an owner or administrator."""

    serializer_class = serializers.RequestSerializer
    lookup_url_kwarg = "request_id"

    def get_queryset(self):
        return selectors.request_list_for_org(organization=self.get_organization())

    def put(self, request, slug: str, request_id: int):
        return self._update(request, partial=False)

    def patch(self, request, slug: str, request_id: int):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        existing = self.get_object()
        self.require_request_filer(existing.organization)
        data = request.data
        if isinstance(data, dict):
            fixed = {"round": existing.round_id, "gpu_class": existing.gpu_class}
            changed = [name for name, value in fixed.items() if name in data and data[name] != value]
            if changed:
                message = _(
                    "The round and GPU class of a request cannot change: withdraw it and file a new one."
                )
                raise ValidationError({name: [message] for name in changed}, code="immutable")
        if partial and isinstance(data, dict):
            current = {
                "demand_gpu_hours": existing.demand_gpu_hours,
                "floor_gpu_hours": existing.floor_gpu_hours,
                "justification": existing.justification,
                "eligible_pools": [pool.code for pool in existing.eligible_pools.all()],
            }
            data = current | dict(data)
        serializer = serializers.RequestUpdateSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        allocation_services.request_update(
            request_id=existing.pk, actor=request.user, **_request_fields(serializer.validated_data)
        )
        return Response(serializers.RequestSerializer(_reloaded(self, existing.pk)).data)

    def delete(self, request, slug: str, request_id: int):
        existing = self.get_object()
        self.require_request_filer(existing.organization)
        allocation_services.request_withdraw(request_id=existing.pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- results -------------------------------------------------------------------------------------


@extend_schema(
    summary="The organization's published result of a round, with its explanation",
    tags=["results"],
    parameters=[SLUG],
    responses={200: serializers.ResultSerializer, **READ_ERRORS},
)
class ResultDetail(StrictQueryMixin, OrgScopedMixin, APIView):
    """The organization's result in a published round: its weight and how it was derived, and per
    GPU class what was requested, considered, granted on which pools, and why it stopped."""

    def get(self, request, slug: str, round_id: int):
        organization = self.get_organization()
        allocation_round = selectors.round_list_for_members().filter(pk=round_id, status="published").first()
        if allocation_round is None:
            raise NotFound(_("This round does not exist or its result is not published yet."))
        result = allocation_selectors.org_round_result(
            allocation_round=allocation_round, organization=organization
        )
        body = {
            "round": allocation_round,
            "weight": result["weight"],
            "classes": result["classes"],
            "requests": result["requests"],
            "excluded": bool(result["excluded"]),
        }
        return Response(serializers.ResultSerializer(body).data)


# --- grants and usage ----------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        summary="The organization's quota grants, with usage and sync state",
        tags=["grants"],
        parameters=[SLUG],
        responses={200: serializers.GrantSerializer(many=True), **LIST_ERRORS},
    )
)
class GrantList(StrictQueryMixin, OrgScopedMixin, generics.ListAPIView):
    """The organization's quota grants, newest first, with the GPU-hours used and how each stands
    with its provider (sync_state)."""

    serializer_class = serializers.GrantSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = filters.GrantFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no organization
            return QuotaGrant.objects.none()
        # The per-grant usage and sync subqueries run for the page's grants only (an annotated
        # OFFSET query computes them for every skipped row), unless the list is filtered by them.
        with_sync = "sync" in self.request.query_params
        return selectors.grant_list_for_org(organization=self.get_organization(), with_sync=with_sync)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else selectors.grant_rows_for_page(page)


@extend_schema_view(
    get=extend_schema(
        summary="One quota grant",
        tags=["grants"],
        parameters=[
            SLUG,
            OpenApiParameter(
                "grant_id",
                {"type": "string", "format": "uuid"},
                OpenApiParameter.PATH,
                description="The grant's id (a UUID).",
            ),
        ],
        responses={200: serializers.GrantSerializer, **READ_ERRORS},
    )
)
class GrantDetail(StrictQueryMixin, OrgScopedMixin, generics.RetrieveAPIView):
    """One quota grant, by its id (a UUID)."""

    serializer_class = serializers.GrantSerializer

    def get_object(self):
        organization = self.get_organization()
        try:
            public_id = uuid.UUID(self.kwargs["grant_id"])
        except ValueError as exc:
            raise NotFound(_("No grant with this id.")) from exc
        grant = selectors.grant_list_for_org(organization=organization).filter(public_id=public_id).first()
        if grant is None:
            raise NotFound(_("No grant with this id."))
        return grant


@extend_schema_view(
    get=extend_schema(
        summary="Usage records of the organization's grants",
        tags=["usage"],
        parameters=[SLUG],
        responses={200: serializers.UsageRecordSerializer(many=True), **LIST_ERRORS},
    )
)
class UsageList(StrictQueryMixin, OrgScopedMixin, generics.ListAPIView):
    """Usage records reported by the providers for the organization's grants, newest first."""

    serializer_class = serializers.UsageRecordSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = filters.UsageFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no organization
            return UsageRecord.objects.none()
        return selectors.usage_list_for_org(organization=self.get_organization())


@extend_schema(
    summary="GPU-hours used per pool in a month",
    tags=["usage"],
    parameters=[
        SLUG,
        OpenApiParameter(
            "month",
            {"type": "string", "pattern": OPTIONAL_MONTH_PATTERN},
            description="YYYY-MM (years 2000 to 2999), in Japan time; the current month when left out.",
        ),
    ],
    responses={
        200: serializers.UsageSummarySerializer,
        400: OpenApiResponse(ValidationErrorSerializer, description="The month is not valid."),
        **READ_ERRORS,
    },
)
class UsageSummary(StrictQueryMixin, OrgScopedMixin, APIView):
    """GPU-hours used per pool in a month (by the start of each record, Japan time)."""

    query_params = ("month",)

    def get(self, request, slug: str):
        organization = self.get_organization()
        raw = request.query_params.get("month")
        if raw:
            try:
                month = parse_month(raw)
            except DjangoValidationError as exc:
                raise ValidationError({"month": exc.messages}, code="invalid_month") from exc
        else:
            month = timezone.localdate().replace(day=1)
        pools = selectors.usage_summary_for_org(organization=organization, month=month)
        body = {
            "month": f"{month:%Y-%m}",
            "gpu_hours": sum((p["gpu_hours"] for p in pools), start=0),
            "pools": pools,
        }
        return Response(serializers.UsageSummarySerializer(body).data)


# --- statements ------------------------------------------------------------------------------------


@extend_schema(
    summary="Statement: GPU-hours granted and used per pool, for a month or a fiscal year",
    tags=["usage"],
    parameters=[
        SLUG,
        OpenApiParameter(
            "period",
            {"type": "string", "pattern": PERIOD_PATTERN},
            description="FY2026 (a Japanese fiscal year, April to March) or 2026-05 (a month); "
            "the current fiscal year when left out.",
        ),
    ],
    responses={
        200: serializers.StatementSerializer,
        400: OpenApiResponse(ValidationErrorSerializer, description="The period is not valid."),
        **READ_ERRORS,
    },
)
class Statement(StrictQueryMixin, OrgScopedMixin, APIView):
    """Granted GPU-hours (pro-rated to the period) and used GPU-hours per pool, program awards
    apart, and month by month: the statement page's figures."""

    query_params = ("period",)

    def get(self, request, slug: str):
        from apps.reports.selectors import Window, fiscal_year_of, parse_window, statement

        organization = self.get_organization()
        raw = request.query_params.get("period")
        if raw:
            window = parse_window(raw) if re.fullmatch(PERIOD_PATTERN, raw) else None
            if window is None:
                raise ValidationError(
                    {"period": [_("Give a fiscal year as FY2026 or a month as 2026-05.")]},
                    code="invalid_period",
                )
        else:
            window = Window.fiscal_year(fiscal_year_of(timezone.localdate()))
        result = statement(organization=organization, window=window)
        body = {
            "period": window.key,
            "starts_on": window.start,
            "ends_on": window.end,
            "lines": result.lines,
            "months": [
                {"month": f"{m:%Y-%m}", "granted_gpu_hours": g, "used_gpu_hours": u}
                for m, g, u in result.by_month
            ],
        }
        return Response(serializers.StatementSerializer(body).data)
