"""Ticket lines as spreadsheets: the hop log (a row per ticket, the seed's log line with `_END` on each
call's last hop) and the calls, to CSV or XLSX through config.exports' formula escaping (a caller ID
is whatever the caller's carrier sends). The fields are listed one by one: never a technician's SMS
credentials nor the SMS settings' secret."""

from import_export import fields, widgets

from config.exports import ExportResource
from tickets.models import TicketCall, TicketHop, TicketMessage
from tickets.services.messages import hop_log_line

HOP_COLUMNS = [
    "company",
    "log",
    "ticket",
    "line",
    "sequence",
    "started_at",
    "ended_at",
    "caller",
    "called",
    "technician_name",
    "dial_status",
    "answered",
    "last",
    "call_state",
    "sms",
    "im",
]
BOOLEAN = widgets.BooleanWidget()

CALL_COLUMNS = [
    "company",
    "line",
    "uniqueid",
    "caller",
    "called",
    "state",
    "started_at",
    "confirmed_at",
    "ended_at",
    "answered_by",
    "recording",
    "recording_note",
    "recording_deleted_at",
    "note",
]


def _message(hop: TicketHop, channel: str) -> str:
    """The state of the call's message on this channel, on the hop it was sent for; empty elsewhere."""
    for message in hop.call.messages.all():  # prefetched
        if message.channel == channel and message.hop_id == hop.pk:
            text = f"{message.state} to {message.to}"
            if message.state == TicketMessage.State.FAILED and message.last_error:
                text += f": {message.last_error}"
            if message.delivery_status:
                text += f" ({message.delivery_status})"
            return text
    return ""


class TicketHopResource(ExportResource):
    """The log, in the portal and the admin: one row per hop, first the seed's line in its company's
    time zone, then its parts and what was sent."""

    company = fields.Field(attribute="line__company__name", column_name="company")
    log = fields.Field(column_name="log", dehydrate_method="dehydrate_log")
    line = fields.Field(attribute="line__name", column_name="line")
    caller = fields.Field(attribute="call__caller", column_name="caller")
    technician_name = fields.Field(attribute="technician_name", column_name="technician")
    answered = fields.Field(attribute="answered", column_name="answered", widget=BOOLEAN)
    last = fields.Field(attribute="last", column_name="last", widget=BOOLEAN)
    call_state = fields.Field(attribute="call__state", column_name="call_state")
    sms = fields.Field(column_name="sms", dehydrate_method="dehydrate_sms")
    im = fields.Field(column_name="im", dehydrate_method="dehydrate_im")

    class Meta:
        model = TicketHop
        fields = HOP_COLUMNS
        export_order = HOP_COLUMNS

    def dehydrate_log(self, hop):
        return hop_log_line(hop=hop, caller=hop.call.caller, tz=hop.line.company.tzinfo)

    def dehydrate_sms(self, hop):
        return _message(hop, TicketMessage.Channel.SMS)

    def dehydrate_im(self, hop):
        return _message(hop, TicketMessage.Channel.IM)

    def get_queryset(self):
        return self.filter_export(super().get_queryset())

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("call", "line__company").prefetch_related("call__messages")


class TicketCallResource(ExportResource):
    company = fields.Field(attribute="line__company__name", column_name="company")
    line = fields.Field(attribute="line__number", column_name="line")
    answered_by = fields.Field(attribute="answered_by__name", column_name="answered_by")

    class Meta:
        model = TicketCall
        fields = CALL_COLUMNS
        export_order = CALL_COLUMNS

    def get_queryset(self):
        return super().get_queryset().select_related("line__company", "answered_by")

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("line__company", "answered_by")
