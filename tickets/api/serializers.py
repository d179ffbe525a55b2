"""The ticket lines API's shapes: lines (the settings a company changes, the technician in charge),
technicians (SMS credentials write only), the hop log with the seed's line, calls with their hops
and messages, and the list filters."""

import datetime as dt
import re

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.filters import DayField, ListFilterSerializer, RowIdField
from config.periods import MAX_PERIOD_DAYS
from tickets.models import Technician, TicketCall, TicketHop, TicketLine, TicketMessage
from tickets.services.lines import LINE_SETTINGS
from tickets.services.messages import hop_log_line

# The portal's settings, as JSON (an uploaded announcement is the portal's), and the counter.
API_LINE_SETTINGS = [name for name in LINE_SETTINGS if name != "announcement_file"] + ["next_ticket"]

_ASCII_INTEGER = re.compile(r"-?[0-9]{1,40}", re.ASCII)


class AsciiIntegerField(serializers.IntegerField):
    """An integer as a JSON number or ASCII digits: int() would also take "٥" (5) and " 7"."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not _ASCII_INTEGER.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class AsciiModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.PositiveSmallIntegerField: AsciiIntegerField,
        models.PositiveBigIntegerField: AsciiIntegerField,
    }


class TicketLineSerializer(AsciiModelSerializer):
    server = serializers.CharField(source="server.name", read_only=True)
    in_charge = RowIdField(
        source="in_charge_id",
        allow_null=True,
        required=False,
        help_text="the technician rung first (the seed's follow-me/CFU); null: the first of the list",
    )

    class Meta:
        model = TicketLine
        fields = [
            "id", "name", "number", "server", "route", *API_LINE_SETTINGS, "in_charge", "active",
            "created_at",
        ]  # fmt: skip
        read_only_fields = ["name", "number", "route", "active", "created_at"]
        # (server, number) is the operator's, read only here: no uniqueness to check.
        validators = []


class TechnicianSerializer(serializers.ModelSerializer):
    line = RowIdField(source="line_id", help_text="the ticket line it is rung for; fixed once made")
    position = AsciiIntegerField(
        min_value=0, max_value=32767, read_only=True, help_text="hunt order, lowest first; a new one is last"
    )
    sms_credentials = serializers.SerializerMethodField(
        help_text="whether an SMS user name or password is kept (they are never shown)"
    )
    in_charge = serializers.SerializerMethodField(help_text="rung first on its line")

    class Meta:
        model = Technician
        fields = [
            "id", "line", "name", "position", "internal", "mobile", "sms_number", "im_address",
            "sms_username", "sms_password", "sms_credentials", "active", "in_charge",
        ]  # fmt: skip
        extra_kwargs = {
            "name": {"min_length": 1},
            "internal": {"min_length": 1},
            # The seed's SMSUser.txt and SMSPassword.txt: written, never read back.
            "sms_username": {"write_only": True},
            "sms_password": {"write_only": True, "style": {"input_type": "password"}},
        }

    def get_sms_credentials(self, technician) -> bool:
        return bool(technician.sms_username or technician.sms_password)

    def get_in_charge(self, technician) -> bool:
        return technician.line.in_charge_id == technician.pk


class TechnicianUpdateSerializer(TechnicianSerializer):
    line = RowIdField(source="line_id", read_only=True)
    position = AsciiIntegerField(
        min_value=0, max_value=32767, required=False, help_text="hunt order, lowest first"
    )


class HuntOrderSerializer(serializers.Serializer):
    technicians = serializers.ListField(
        child=RowIdField(),
        min_length=1,
        max_length=1000,
        help_text="every technician of the line, first rung first",
    )


class TicketHopSerializer(serializers.ModelSerializer):
    line_name = serializers.CharField(source="line.name", read_only=True)
    caller = serializers.CharField(source="call.caller", read_only=True)
    log_line = serializers.SerializerMethodField(
        help_text="the seed's log line: start and end, ticket, caller, called; `_END` on the call's last hop"
    )

    class Meta:
        model = TicketHop
        fields = [
            "id", "ticket", "line", "line_name", "call", "sequence", "technician", "technician_name",
            "called", "caller", "started_at", "ended_at", "dial_status", "answered", "last", "log_line",
        ]  # fmt: skip
        read_only_fields = fields

    def get_log_line(self, hop) -> str:
        return hop_log_line(hop=hop, caller=hop.call.caller, tz=self.context["tz"])


class TicketCallHopSerializer(TicketHopSerializer):
    class Meta(TicketHopSerializer.Meta):
        fields = [
            "id", "ticket", "sequence", "technician", "technician_name", "called", "started_at", "ended_at",
            "dial_status", "answered", "last", "log_line",
        ]  # fmt: skip
        read_only_fields = fields


class TicketMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = TicketMessage
        fields = [
            "id", "channel", "to", "body", "state", "hop", "technician", "created_at", "sent_at", "attempts",
            "last_error", "provider_reference", "delivery_status", "delivery_at",
        ]  # fmt: skip
        read_only_fields = fields


class TicketCallSerializer(serializers.ModelSerializer):
    line_name = serializers.CharField(source="line.name", read_only=True)
    recorded = serializers.SerializerMethodField(help_text="a recording is kept (not deleted by retention)")
    answered_by_name = serializers.CharField(source="answered_by.name", default=None, read_only=True)

    class Meta:
        model = TicketCall
        fields = [
            "id", "line", "line_name", "uniqueid", "caller", "called", "state", "started_at", "confirmed_at",
            "ended_at", "recorded", "recording_note", "recording_deleted_at", "answered_by",
            "answered_by_name", "note",
        ]  # fmt: skip
        read_only_fields = fields

    def get_recorded(self, call) -> bool:
        return bool(call.recording) and call.recording_deleted_at is None


class TicketCallDetailSerializer(TicketCallSerializer):
    hops = TicketCallHopSerializer(many=True, read_only=True, source="hop_rows")
    messages = TicketMessageSerializer(many=True, read_only=True)

    class Meta(TicketCallSerializer.Meta):
        fields = [*TicketCallSerializer.Meta.fields, "hops", "messages"]
        read_only_fields = fields


@extend_schema_field({"type": "string", "format": "date", "pattern": r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"})
class CenturyDayField(DayField):
    """A day from 2000-01-01 to 2099-12-31 (DayField's bounds), which the schema says too."""


class PeriodFilterSerializer(ListFilterSerializer):
    line = RowIdField(required=False)
    start = CenturyDayField(required=False, help_text="the first day, in the company's time zone")
    end = CenturyDayField(required=False, help_text="the last day, included")

    def validate(self, data):
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise serializers.ValidationError("The period ends before it starts.")
            if end - start >= dt.timedelta(days=MAX_PERIOD_DAYS):
                raise serializers.ValidationError(f"A period of at most {MAX_PERIOD_DAYS} days.")
        return data


class TicketHopFilterSerializer(PeriodFilterSerializer):
    ticket = AsciiIntegerField(min_value=1, max_value=2**63 - 1, required=False)
    caller = serializers.RegexField(
        r"^\+?[0-9]{1,40}$", required=False, help_text="the caller's number or its first digits"
    )
    technician = RowIdField(required=False)
    answered = serializers.BooleanField(required=False)
    last = serializers.BooleanField(required=False, help_text="true: only the calls' `_END` hops")


class TicketCallFilterSerializer(PeriodFilterSerializer):
    state = serializers.ChoiceField(choices=TicketCall.State.choices, required=False)
    caller = serializers.RegexField(
        r"^\+?[0-9]{1,40}$", required=False, help_text="the caller's number or its first digits"
    )


class TechnicianFilterSerializer(ListFilterSerializer):
    line = RowIdField(required=False)
