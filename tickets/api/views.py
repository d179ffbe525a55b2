"""The ticket lines API: a company's lines (the settings it may change, the technician in charge),
its technicians and their hunt order, the hop log and the calls with their hops and messages.

Scoped to the signed-in user's company like the other apps' APIs: another company's line,
technician, hop or call is a 404. Views check the input, call the portal's services
(tickets.services.lines) and selectors (tickets.selectors), so both keep one set of rules, and
answer the row; a refusal of a service is a 400 naming the field.
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
from tickets import selectors
from tickets.api import serializers as s
from tickets.models import Technician, TicketCall, TicketHop
from tickets.services import lines as line_services


class service_errors:
    """A service's refusal (Django's ValidationError) as the API's 400, field by field."""

    def __enter__(self):
        return self

    def __init__(self, field: str = "non_field_errors"):
        self.field = field  # where a refusal that names no field goes

    def __exit__(self, kind, exc, traceback):
        if isinstance(exc, DjangoValidationError):
            detail = exc.message_dict if hasattr(exc, "error_dict") else {self.field: exc.messages}
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


MISSING = object()


class TicketsApiMixin:
    @property
    def company(self):
        return self.request.user.company

    def lines(self):
        return selectors.lines_for_company(company=self.company).select_related("server")

    def get_serializer_context(self):
        # The log lines are in the company's time zone, as the portal shows them.
        return {**super().get_serializer_context(), "tz": self.company.tzinfo}


# -- lines -----------------------------------------------------------------------------------------


class LineList(TicketsApiMixin, generics.ListAPIView):
    """The company's ticket lines with their settings."""

    serializer_class = s.TicketLineSerializer

    def get_queryset(self):
        return self.lines()


@extend_schema_view(patch=extend_schema(responses={200: s.TicketLineSerializer, 400: BAD_REQUEST}))
class LineDetail(TicketsApiMixin, generics.RetrieveUpdateAPIView):
    """A line's settings; a PATCH changes those a company may (ring time, wrap and rounds, the confirm
    digit and its wait, recording, the next ticket, the message template, the retention) and sets or
    clears the technician in charge (`in_charge`: one of the line's technicians, or null)."""

    serializer_class = s.TicketLineSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return self.lines()

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        line = serializer.instance
        in_charge = changes.pop("in_charge_id", MISSING)
        next_ticket = changes.pop("next_ticket", None)
        with transaction.atomic():
            if in_charge is not MISSING:
                technician = None
                if in_charge is not None:
                    technician = Technician.objects.filter(line=line, pk=in_charge).first()
                    if technician is None:
                        raise exceptions.ValidationError({"in_charge": ["Not a technician of this line."]})
                with service_errors("in_charge"):
                    line_services.ticket_line_in_charge_set(line=line, technician=technician)
            if changes or next_ticket is not None:
                for name, value in changes.items():
                    setattr(line, name, value)
                with service_errors():
                    line_services.ticket_line_update(line=line, next_ticket=next_ticket)
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
        return Response(s.TechnicianSerializer(ordered, many=True, context={"tz": self.company.tzinfo}).data)


# -- technicians -----------------------------------------------------------------------------------


class TechniciansMixin(TicketsApiMixin):
    def technicians(self):
        return Technician.objects.filter(line__company=self.company).select_related("line")


@extend_schema_view(
    get=extend_schema(parameters=[s.TechnicianFilterSerializer]),
    post=extend_schema(responses={201: s.TechnicianSerializer, 400: BAD_REQUEST}),
)
class TechnicianList(TechniciansMixin, generics.ListCreateAPIView):
    """The company's technicians in hunt order (of a line); a POST adds one at the end of its line's
    hunt. The SMS user name and password are written, never shown."""

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
        line = selectors.line_for_company(company=self.company, pk=fields.pop("line_id"))
        if line is None:
            raise exceptions.ValidationError({"line": ["No such ticket line in your company."]})
        password = fields.pop("sms_password", None)
        with service_errors():
            serializer.instance = line_services.technician_save(
                technician=Technician(line=line, **fields), sms_password=password or None
            )


@extend_schema_view(
    put=extend_schema(request=s.TechnicianUpdateSerializer, responses={200: s.TechnicianSerializer}),
    patch=extend_schema(request=s.TechnicianUpdateSerializer, responses={200: s.TechnicianSerializer}),
)
class TechnicianDetail(TechniciansMixin, generics.RetrieveUpdateDestroyAPIView):
    """A technician: its phones, SMS number and credentials (write only; an empty password forgets
    it), place in the hunt, active; DELETE takes it out of the hunt (inactive, kept in the log and
    the list, as the portal does)."""

    def get_serializer_class(self):
        return s.TechnicianSerializer if self.request.method == "GET" else s.TechnicianUpdateSerializer

    def get_queryset(self):
        return self.technicians()

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        technician = serializer.instance
        # An empty password given is a request to forget it; one not given keeps it (the portal's rule).
        password = changes.pop("sms_password", None)
        for name, value in changes.items():
            setattr(technician, name, value)
        with service_errors():
            serializer.instance = line_services.technician_save(
                technician=technician, sms_password=password or None, clear_sms_password=password == ""
            )

    def perform_destroy(self, instance):
        # As in the portal: out of the hunt, kept in the log and the list.
        line_services.technician_deactivate(technician=instance)


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
        line = technician = None
        if "line" in filters:
            line = selectors.line_for_company(company=self.company, pk=filters["line"])
            if line is None:  # another company's line, or none: lists nothing, as the queues API does
                return TicketHop.objects.none()
        if "technician" in filters:
            technician = selectors.technician_of_company(company=self.company, pk=filters["technician"])
            if technician is None:
                return TicketHop.objects.none()
        rows = selectors.hops_for_company(
            company=self.company,
            line=line,
            start=filters.get("start"),
            end=filters.get("end"),
            technician=technician,
            answered=filters.get("answered"),
            caller=filters.get("caller", ""),
        )
        for name in ("ticket", "last"):
            if name in filters:
                rows = rows.filter(**{name: filters[name]})
        return rows


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
        hops = TicketHop.objects.select_related("call").order_by("sequence", "id")
        return self.calls().prefetch_related(Prefetch("hops", queryset=hops, to_attr="hop_rows"), "messages")
