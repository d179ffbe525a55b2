from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import BAD_REQUEST, error
from telephony import selectors, services
from telephony.api.serializers import CallRecordSerializer, PushedEventSerializer, WebhookDeliverySerializer
from telephony.models import PushToken


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


class PushTokenAuthentication(BaseAuthentication):
    """`Authorization: Token <key>` of an active push token of an active company."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"token":
            raise AuthenticationFailed("Send the company's push token as 'Authorization: Token <key>'.")
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed token header.")
        token = (
            PushToken.objects.select_related("company")
            .filter(key=parts[1].decode(errors="replace"), active=True, company__active=True)
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
        serializer.is_valid(raise_exception=True)
        try:
            record = services.push_event_ingest(
                company=request.auth.company, payload=serializer.validated_data
            )
        except services.PushEventError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(CallRecordSerializer(record).data, status=status.HTTP_202_ACCEPTED)
