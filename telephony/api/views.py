import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import BAD_REQUEST, error
from telephony import selectors
from telephony.api.serializers import (
    CallRecordSerializer,
    PushedEventSerializer,
    PushTokenCreatedSerializer,
    PushTokenSerializer,
    WebhookDeliverySerializer,
    WebhookSecretRotatedSerializer,
    WebhookSecretSerializer,
)
from telephony.models import PushToken
from telephony.services import push, webhooks


class CallRecordList(generics.ListAPIView):
    serializer_class = CallRecordSerializer

    def get_queryset(self):
        return selectors.call_records_for_company(company=self.request.user.company)


class CallRecordDetail(generics.RetrieveAPIView):
    serializer_class = CallRecordSerializer

    def get_queryset(self):
        return selectors.call_records_for_company(company=self.request.user.company)


class WebhookDeliveryList(generics.ListAPIView):
    serializer_class = WebhookDeliverySerializer

    def get_queryset(self):
        return selectors.webhook_deliveries_for_company(company=self.request.user.company)


PUSH_KEY = re.compile(rb"[A-Za-z0-9_-]{1,64}")


class PushTokenAuthentication(BaseAuthentication):
    """`Authorization: Token <key>` of an active push token of an active company."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"token":
            raise AuthenticationFailed("Send the company's push token as 'Authorization: Token <key>'.")
        # Keys are URL-safe base64: anything else (a NUL byte PostgreSQL refuses) is no key at all.
        if len(parts) != 2 or not PUSH_KEY.fullmatch(parts[1]):
            raise AuthenticationFailed("Malformed token header.")
        token = (
            PushToken.objects.select_related("company")
            .filter(key=parts[1].decode(), active=True, company__active=True)
            .first()
        )
        if token is None:
            raise AuthenticationFailed("Unknown or revoked push token.")
        return (None, token)

    def authenticate_header(self, request):
        return "Token"


class PushTokenScheme(OpenApiAuthenticationExtension):
    target_class = PushTokenAuthentication
    name = "pushToken"
    refuses_anonymous = True

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`, the key of one of the company's active push tokens.",
        }


class PushedEventView(APIView):
    """Takes asterCC-style call events pushed by a company's own PBX."""

    authentication_classes = [PushTokenAuthentication]
    # The authentication refuses a request without a token (see PushTokenScheme).
    permission_classes = [AllowAny]

    @extend_schema(
        request=PushedEventSerializer,
        responses={
            202: OpenApiResponse(CallRecordSerializer, description="The call record, event folded in."),
            400: BAD_REQUEST,
            401: error("No push token, or an unknown or revoked one."),
        },
    )
    def post(self, request):
        serializer = PushedEventSerializer(data=request.data)
        if not serializer.is_valid():
            # The one shape of every refused event: a stable code and a sentence, here with the fields.
            code, detail = "invalid_field", "missing or malformed field(s)"
            for field, field_code in (("event", "unknown_event"), ("calltype", "unknown_calltype")):
                choice = [e for e in serializer.errors.get(field, []) if e.code == "invalid_choice"]
                if choice:
                    code, detail = field_code, str(choice[0])
                    break
            return Response(
                {"code": code, "detail": detail, "fields": serializer.errors},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            record = push.push_event_ingest(company=request.auth.company, payload=serializer.validated_data)
        except push.PushEventError as exc:
            return Response({"code": exc.code, "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(CallRecordSerializer(record).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(post=extend_schema(request=None, responses={201: PushTokenCreatedSerializer}))
class PushTokenListCreate(generics.ListCreateAPIView):
    """The company's push tokens; a POST makes one and answers its key, this once."""

    serializer_class = PushTokenSerializer

    def get_queryset(self):
        return selectors.push_tokens_for_company(company=self.request.user.company)

    def create(self, request, *args, **kwargs):
        token = push.push_token_create(company=request.user.company)
        return Response(PushTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class PushTokenRevoke(APIView):
    """Revoke a push token: pushes with it get 401 from then on."""

    serializer_class = PushTokenSerializer

    @extend_schema(request=None)
    def post(self, request, pk):
        try:
            token = push.push_token_revoke(company=request.user.company, token_id=pk)
        except PushToken.DoesNotExist:
            raise NotFound("No such push token.") from None
        return Response(PushTokenSerializer(token).data)


class WebhookSecretView(APIView):
    """The webhook signing secret, masked."""

    serializer_class = WebhookSecretSerializer

    def get(self, request):
        return Response({"secret_hint": selectors.webhook_secret_hint(company=request.user.company)})


class WebhookSecretRotate(APIView):
    """A new webhook signing secret, answered whole this once."""

    serializer_class = WebhookSecretRotatedSerializer

    @extend_schema(request=None)
    def post(self, request):
        company = request.user.company
        secret = webhooks.webhook_secret_rotate(company=company)
        return Response({"secret_hint": selectors.webhook_secret_hint(company=company), "secret": secret})
