"""The banner API, called cross-site by the widget (with the public key) or by the company's
servers (with the secret key). Every refusal is `{"code": ..., "detail": ...}` (see
banner_exception_handler); CORS headers go only to the campaign's own origins."""

import dataclasses
import re

from django.db.models import Prefetch
from django.http import HttpResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, generics, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from click2call import selectors
from click2call.api.authentication import (
    BannerError,
    CampaignKeyAuthentication,
    origin_allowed,
    request_origin,
)
from click2call.api.progress import request_progress
from click2call.api.serializers import (
    BannerErrorSerializer,
    CallDetailSerializer,
    CallFilterSerializer,
    CallRequestInSerializer,
    CallRequestOutSerializer,
    CallSerializer,
    CallTotalsSerializer,
    RequestProgressSerializer,
)
from click2call.api.throttles import PerAddressThrottle, PerNumberThrottle, window_counts
from click2call.models import CallAttempt, CallRequest, Campaign
from click2call.services.rating import NumberRefused
from click2call.services.requests import call_request_create
from config.exceptions import api_exception_handler
from config.openapi import BAD_REQUEST, ApiAutoSchema
from config.pagination import ApiPagination

STATUS_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
PREFLIGHT_MAX_AGE = 600


def banner_exception_handler(exc, context):
    """The API's answer (config.exceptions), but a refused body keeps the banner's own code and
    sentence, `invalid_field`, which sites' widgets already read."""
    response = api_exception_handler(exc, context)
    if response is not None and "fields" in response.data:
        response.data = {
            "code": "invalid_field",
            "detail": "Missing or malformed field(s).",
            "fields": response.data["fields"],
        }
    return response


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(BannerErrorSerializer, description=description)


class BannerSchema(ApiAutoSchema):
    # The banner's views document each refusal themselves, codes included.
    def _error_responses(self):
        return {}


class BannerView(APIView):
    schema = BannerSchema()
    permission_classes = [AllowAny]
    # The campaign the answer is about, once known: its origins may read the answer.
    campaign = None

    def get_exception_handler(self):
        return banner_exception_handler

    def cors_origin(self, request) -> str | None:
        """The Origin to let read the answer, or None."""
        origin = request_origin(request)
        return origin if self.campaign is not None and origin_allowed(self.campaign, origin) else None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_vary_headers(response, ["Origin"])
        origin = self.cors_origin(request)
        if origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = "Retry-After"
        return response


class CallRequestCreate(BannerView):
    """A visitor asks to be called back: the banner's one write."""

    authentication_classes = [CampaignKeyAuthentication]
    throttle_classes = [PerAddressThrottle, PerNumberThrottle]

    def cors_origin(self, request):
        origin = request_origin(request)
        if request.method == "OPTIONS":
            # A preflight carries no key: the origin of any active campaign may go on to POST,
            # where the key's own campaign decides.
            candidates = Campaign.objects.filter(
                active=True, company__active=True, allowed_origins__icontains=origin
            ).only("allowed_origins")
            return origin if origin and any(origin_allowed(c, origin) for c in candidates) else None
        return super().cors_origin(request)

    def perform_authentication(self, request):
        super().perform_authentication(request)
        # Known before the throttles run, so a 429 still reaches the campaign's site.
        self.campaign = request.auth

    def check_throttles(self, request):
        # Both throttles' windows counted together: on Redis, one round trip instead of one per throttle.
        windows = [window for throttle in self.get_throttles() if (window := throttle.window(request))]
        counts = window_counts(windows)
        waits = [window.wait for window, count in zip(windows, counts, strict=True) if count > window.limit]
        if waits:
            self.throttled(request, max(waits))

    def options(self, request, *args, **kwargs):
        response = HttpResponse(status=status.HTTP_204_NO_CONTENT)
        if self.cors_origin(request):
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type, X-Campaign-Key"
            response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        return response

    @extend_schema(
        summary="A visitor asks to be called back",
        request=CallRequestInSerializer,
        responses={
            201: OpenApiResponse(
                CallRequestOutSerializer, description="A new request, its first try queued."
            ),
            200: OpenApiResponse(
                CallRequestOutSerializer,
                description="The request already open for that number.",
            ),
            400: error(
                "`invalid_number`: not a phone number; `consent_required`: consent missing or false; "
                "`invalid_field` (with `fields`): a malformed body; `parse_error`: not JSON."
            ),
            403: error(
                "`campaign_key_invalid`: no key, a wrong one, or an inactive campaign; "
                "`origin_not_allowed`: the public key from a site not among the campaign's origins."
            ),
            413: error("`request_too_large`: the body is larger than the server takes."),
            415: error("`unsupported_media_type`: the body is not `application/json`."),
            422: error(
                "`unsupported_destination`: the tariff has no rate for the number; "
                "`blocked_prefix`: the company never calls such numbers."
            ),
            429: error("`throttled`: too many requests from this address or for this number (Retry-After)."),
        },
        examples=[
            OpenApiExample(
                "A visitor",
                value={"number": "06 12 34 56 78", "name": "Ana", "note": "about my order", "consent": True},
                request_only=True,
            )
        ],
    )
    def post(self, request):
        serializer = CallRequestInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            call_request, created = call_request_create(
                campaign=request.auth,
                origin=request_origin(request),
                client_address=request.META.get("REMOTE_ADDR") or None,
                **serializer.validated_data,
            )
        except NumberRefused as exc:
            raise BannerError(exc.code, exc.detail, exc.status) from None
        status_url = request.build_absolute_uri(
            reverse("click2call-api:status", args=[call_request.status_token])
        )
        body = {"id": call_request.pk, "status": call_request.status, "status_url": status_url}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CallRequestStatus(BannerView):
    """A request's progress, for the widget to poll: no credentials, the URL is the secret."""

    authentication_classes = []
    throttle_classes = []

    @extend_schema(
        summary="How a call request goes",
        parameters=[
            OpenApiParameter(
                "token",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                pattern=STATUS_TOKEN.pattern.join("^$"),
                description="the request's status token, from its status_url",
            )
        ],
        responses={
            200: RequestProgressSerializer,
            404: error("`not_found`: no request has this status token."),
        },
    )
    def get(self, request, token):
        attempts = Prefetch("attempts", queryset=CallAttempt.objects.order_by("seq"))
        call_request = (
            STATUS_TOKEN.fullmatch(token)
            and (
                CallRequest.objects.select_related("campaign")
                .prefetch_related(attempts)
                .filter(status_token=token)
            ).first()
        )
        if not call_request:
            raise exceptions.NotFound("No call request has this status URL.")
        self.campaign = call_request.campaign
        progress = request_progress(request=call_request)
        return Response(RequestProgressSerializer(progress).data)


# -- the company's API: its requests ---------------------------------------------------------------
# Under calls/, as the portal's pages: requests/ is the banner's create endpoint, on the campaign's key.


MONEY_SCHEMA = {"type": "string", "format": "decimal", "pattern": r"^-?\d{0,12}(?:\.\d{0,2})?$"}
TOTALS_SCHEMA = {
    "type": "object",
    "description": "the whole filtered list's total row",
    "properties": {
        "count": {"type": "integer", "description": "requests matching the filters"},
        "completed": {"type": "integer", "description": "of those, COMPLETED"},
        "amount": {**MONEY_SCHEMA, "description": "what the COMPLETED ones cost"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    },
    "required": ["count", "completed", "amount", "currency"],
}


class CallPagination(ApiPagination):
    """The API's pages, with the total row of the whole filtered list (not only of the page): its
    count, how many COMPLETED and what they cost. One aggregate query, which also counts the list."""

    def get_count(self, queryset):
        self.totals = selectors.call_requests_totals(requests=queryset)
        return self.totals.count

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        totals = dataclasses.asdict(self.totals) | {"currency": self.request.user.company.currency}
        response.data["totals"] = CallTotalsSerializer(totals).data
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["totals"] = TOTALS_SCHEMA
        paginated["required"] = [*paginated.get("required", []), "totals"]
        return paginated


class CompanyCallsMixin:
    """The signed-in user's company's requests (session, Basic or an API token: never a campaign key)."""

    @property
    def company(self):
        return self.request.user.company

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "currency": self.company.currency}


@extend_schema_view(
    get=extend_schema(
        summary="The company's call requests, newest first",
        parameters=[CallFilterSerializer],
        responses={200: CallSerializer(many=True), 400: BAD_REQUEST},
    )
)
class CallList(CompanyCallsMixin, generics.ListAPIView):
    """The company's call requests with the portal's filters, each with what it cost; `totals` sums
    the whole filtered list."""

    serializer_class = CallSerializer
    pagination_class = CallPagination

    def get_queryset(self):
        query = CallFilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        # A campaign id that is none of the company's lists nothing, as the queues API's filters do:
        # the requests are the company's whatever the filter says.
        return selectors.call_requests_for_company(company=self.company, **query.validated_data)


class CallDetail(CompanyCallsMixin, generics.RetrieveAPIView):
    """A call request with each attempt's legs (the telephony call records, with what each cost at
    its rate) and its comments."""

    serializer_class = CallDetailSerializer

    def get_queryset(self):
        return CallRequest.objects.filter(company=self.company).select_related("campaign")

    def get_object(self):
        call = super().get_object()
        call.attempt_legs = selectors.call_request_attempts(request=call)
        call.comment_rows = selectors.call_comments_of(request=call)
        return call
