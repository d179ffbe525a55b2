"""The call cards API: the company's batches with their usage, cards, a card's PIN on request and its
calls, read-only but for the PIN's showing, which is recorded.

Like the portal, it answers only users holding callcards.callcard_admin, and 404 to everyone else
(never 403: whether a company sells cards is no business of its other users). Another company's
card is a 404 too.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsCompanyMember
from callcards import pins, selectors
from callcards.api import serializers as s
from callcards.services import holders
from config.openapi import ApiAutoSchema, error

NOT_A_CALLCARD_ADMIN = error("No such object in your company, or you do not hold the call cards permission.")


class CallcardsSchema(ApiAutoSchema):
    """Every operation, lists included, may answer 404: to a user without the permission."""

    def _error_responses(self):
        return {**super()._error_responses(), "404": NOT_A_CALLCARD_ADMIN}


class KeyMismatch(exceptions.APIException):
    status_code = 409
    default_code = "pin_key_mismatch"
    default_detail = "This PIN was sealed under another CALLCARDS_PIN_KEY than the platform's."


class IsCallcardAdmin(IsCompanyMember):
    message = "Not found."

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if not request.user.has_perm("callcards.callcard_admin"):
            raise exceptions.NotFound()
        return True


def query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class CallcardsApiMixin:
    permission_classes = [IsCallcardAdmin]
    schema = CallcardsSchema()

    @property
    def company(self):
        return self.request.user.company

    def batch_of(self, pk):
        batch = selectors.batches_for_company(company=self.company).filter(pk=pk).first()
        if batch is None:
            raise exceptions.ValidationError({"batch": ["No such batch."]})
        return batch


class BatchList(CallcardsApiMixin, generics.ListAPIView):
    """The company's batches, newest first, with their usage (the usage report)."""

    serializer_class = s.BatchUsageSerializer

    def get_queryset(self):
        return selectors.batches_for_company(company=self.company)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        on_page = self.get_queryset().filter(pk__in=[batch.pk for batch in page])
        rows = selectors.batches_with_usage(company=self.company, batches=on_page)
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


class CardList(CallcardsApiMixin, generics.ListAPIView):
    """The company's cards by batch and place in it; never their PINs."""

    serializer_class = s.CardSerializer

    @extend_schema(parameters=[s.CardFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query(s.CardFilterSerializer, self.request)
        if "batch" in filters:
            filters["batch"] = self.batch_of(filters["batch"])
        return selectors.cards_for_company(company=self.company, **filters)


class CardDetail(CallcardsApiMixin, generics.RetrieveAPIView):
    """A card with the history of its status (who, when)."""

    serializer_class = s.CardDetailSerializer

    def get_queryset(self):
        return selectors.cards_for_company(company=self.company).prefetch_related("events")


@extend_schema(
    request=None,
    responses={
        200: s.CardPinSerializer,
        404: NOT_A_CALLCARD_ADMIN,
        409: error("`pin_key_mismatch`: the PIN was sealed under another key; nothing is shown."),
    },
)
class CardPin(CallcardsApiMixin, APIView):
    """The card's PIN, on a POST (never cached, never in a list); each showing is recorded on the card."""

    def post(self, request, pk):
        card = selectors.card_for_company(company=self.company, pk=pk)
        if card is None:
            raise exceptions.NotFound()
        try:
            pin = holders.card_pin_reveal(card=card, user=request.user.get_username())
        except pins.PinKeyMismatch:
            raise KeyMismatch() from None
        response = Response({"card_id": card.card_id, "pin": pin})
        response["Cache-Control"] = "no-store"
        return response


class CallList(CallcardsApiMixin, generics.ListAPIView):
    """Calls on the company's cards (the seed's callcard_log), newest first."""

    serializer_class = s.CardCallSerializer

    @extend_schema(parameters=[s.CallFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query(s.CallFilterSerializer, self.request)
        if "batch" in filters:
            filters["batch"] = self.batch_of(filters["batch"])
        return selectors.card_calls_for_company(company=self.company, **filters)
