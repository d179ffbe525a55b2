"""The ticket lines API: a company's lines (the settings it may change, the technician in charge),
its technicians and their hunt order, the hop log and the calls with their hops and messages.

Scoped to the signed-in user's company like the other apps' APIs: another company's line,
technician, hop or call is a 404. Views check the input, call one service (tickets.services.lines)
and answer the row; a refusal of the service is a 400 naming the field.
"""

import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, generics
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import BAD_REQUEST
from tickets.api import serializers as s
from tickets.models import Technician, TicketCall, TicketHop, TicketLine
from tickets.services import lines as line_services


class service_errors:
    """A service's refusal (Django's ValidationError) as the API's 400, field by field."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if isinstance(exc, DjangoValidationError):
            detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            raise exceptions.ValidationError(detail) from None
        return False


def query(serializer_class, request) -> dict:
    # A plain dict: DRF reads a boolean missing from a QueryDict as false (an unticked checkbox).
    serializer = serializer_class(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def period(rows, filters: dict, company, field: str):
    """Rows whose `field` falls on the filter's days, in the company's time zone."""
    tz = company.tzinfo
    if "start" in filters:
        rows = rows.filter(**{f"{field}__gte": dt.datetime.combine(filters["start"], dt.time(), tz)})
    if "end" in filters:
        after = filters["end"] + dt.timedelta(days=1)
        rows = rows.filter(**{f"{field}__lt": dt.datetime.combine(after, dt.time(), tz)})
    return rows


class TicketsApiMixin:
    @property
    def company(self):
        return self.request.user.company

    def lines(self):
        return TicketLine.objects.filter(company=self.company)


# -- lines -----------------------------------------------------------------------------------------


class LineList(TicketsApiMixin, generics.ListAPIView):
    """The company's ticket lines with their settings."""

    serializer_class = s.TicketLineSerializer

    def get_queryset(self):
        return self.lines().select_related("server").order_by("name", "id")


@extend_schema_view(patch=extend_schema(responses={200: s.TicketLineSerializer, 400: BAD_REQUEST}))
class LineDetail(TicketsApiMixin, generics.RetrieveUpdateAPIView):
    """A line's settings; a PATCH changes those a company may (ring time, wrap and rounds, the confirm
    digit and its wait, recording, the next ticket, the message template, the retention) and sets or
    clears the technician in charge (`in_charge`: one of the line's technicians, or null)."""

    serializer_class = s.TicketLineSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return self.lines().select_related("server")

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        line = serializer.instance
        with service_errors(), transaction.atomic():
            if "in_charge_id" in changes:
                line = line_services.ticket_line_in_charge_set(
                    line_id=line.pk, technician_id=changes.pop("in_charge_id")
                )
            if changes:
                line = line_services.ticket_line_update(line_id=line.pk, changes=changes)
        serializer.instance = self.get_queryset().get(pk=line.pk)


class HuntOrder(TicketsApiMixin, APIView):
    """The hunt order in one go: every technician of the line, first rung first."""

    serializer_class = s.TechnicianSerializer

    @extend_schema(request=s.HuntOrderSerializer, responses={200: s.TechnicianSerializer(many=True)})
    def post(self, request, pk):
        line = get_object_or_404(self.lines(), pk=pk)
        body = s.HuntOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors():
            ordered = line_services.technicians_order(
                line_id=line.pk, technician_ids=body.validated_data["technicians"]
            )
        for technician in ordered:
            technician.line = line
        return Response(s.TechnicianSerializer(ordered, many=True).data)


# -- technicians -----------------------------------------------------------------------------------


class TechniciansMixin(TicketsApiMixin):
    def technicians(self):
        return Technician.objects.filter(line__company=self.company).select_related("line")


@extend_schema_view(
    get=extend_schema(parameters=[s.TechnicianFilterSerializer]),
    post=extend_schema(responses={201: s.TechnicianSerializer, 400: BAD_REQUEST}),
)
class TechnicianList(TechniciansMixin, generics.ListCreateAPIView):
    """The company's technicians in hunt order (of a line); a POST adds one to a line, last unless
    given a position. The SMS user name and password are written, never shown."""

    serializer_class = s.TechnicianSerializer

    def get_queryset(self):
        rows = self.technicians().order_by("line__name", "line_id", "position", "id")
        if self.request.method == "GET":
            filters = query(s.TechnicianFilterSerializer, self.request)
            if "line" in filters:
                rows = rows.filter(line_id=filters["line"])
        return rows

    def perform_create(self, serializer):
        fields = dict(serializer.validated_data)
        line = self.lines().filter(pk=fields.pop("line_id")).first()
        if line is None:
            raise exceptions.ValidationError({"line": ["No such ticket line in your company."]})
        with service_errors():
            serializer.instance = line_services.technician_create(line=line, fields=fields)


@extend_schema_view(
    put=extend_schema(request=s.TechnicianUpdateSerializer, responses={200: s.TechnicianSerializer}),
    patch=extend_schema(request=s.TechnicianUpdateSerializer, responses={200: s.TechnicianSerializer}),
)
class TechnicianDetail(TechniciansMixin, generics.RetrieveUpdateDestroyAPIView):
    """A technician: its phones, SMS number and credentials (write only), place in the hunt, active;
    removed with DELETE (the log keeps its name; a line it was in charge of starts at the first)."""

    def get_serializer_class(self):
        return s.TechnicianSerializer if self.request.method == "GET" else s.TechnicianUpdateSerializer

    def get_queryset(self):
        return self.technicians()

    def perform_update(self, serializer):
        with service_errors():
            serializer.instance = line_services.technician_update(
                technician=serializer.instance, changes=dict(serializer.validated_data)
            )

    def perform_destroy(self, instance):
        line_services.technician_delete(technician=instance)


# -- the log and the calls -------------------------------------------------------------------------


class HopList(TicketsApiMixin, generics.ListAPIView):
    """The hop log, newest first: a ticket per technician rung, the seed's log line with `_END` on
    each call's last hop; answered or not is visible."""

    serializer_class = s.TicketHopSerializer

    @extend_schema(parameters=[s.TicketHopFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query(s.TicketHopFilterSerializer, self.request)
        rows = TicketHop.objects.filter(line__company=self.company).select_related("call", "line__company")
        rows = period(rows, filters, self.company, "started_at")
        for name in ("line", "technician"):
            if name in filters:
                rows = rows.filter(**{f"{name}_id": filters[name]})
        for name in ("ticket", "answered", "last"):
            if name in filters:
                rows = rows.filter(**{name: filters[name]})
        if "caller" in filters:
            rows = rows.filter(call__caller__startswith=filters["caller"])
        return rows.order_by("-started_at", "-ticket")


class CallsMixin(TicketsApiMixin):
    def calls(self):
        return TicketCall.objects.filter(line__company=self.company).select_related("line", "answered_by")


class CallList(CallsMixin, generics.ListAPIView):
    """The calls to the company's lines, newest first."""

    serializer_class = s.TicketCallSerializer

    @extend_schema(parameters=[s.TicketCallFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query(s.TicketCallFilterSerializer, self.request)
        rows = period(self.calls(), filters, self.company, "started_at")
        if "line" in filters:
            rows = rows.filter(line_id=filters["line"])
        if "state" in filters:
            rows = rows.filter(state=filters["state"])
        if "caller" in filters:
            rows = rows.filter(caller__startswith=filters["caller"])
        return rows


class CallDetail(CallsMixin, generics.RetrieveAPIView):
    """A call with its hops (first rung first) and the SMS and IM sent for it."""

    serializer_class = s.TicketCallDetailSerializer

    def get_queryset(self):
        hops = TicketHop.objects.select_related("call", "line__company").order_by("sequence")
        return self.calls().prefetch_related(Prefetch("hops", queryset=hops, to_attr="hop_rows"), "messages")
