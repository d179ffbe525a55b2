"""Ticket lines as spreadsheets: the hop log (a row per ticket, the seed's log line with `_END` on each
call's last hop) and the calls, to CSV or XLSX through config.exports' formula escaping (a caller ID
is whatever the caller's carrier sends). The fields are listed one by one: never a technician's SMS
credentials nor the SMS settings' secret."""

from import_export import fields

from config.exports import ExportResource
from tickets.models import TicketCall, TicketHop
from tickets.services.messages import hop_log_line

HOP_COLUMNS = [
    "company",
    "line",
    "ticket",
    "sequence",
    "caller",
    "called",
    "technician_name",
    "started_at",
    "ended_at",
    "dial_status",
    "answered",
    "last",
    "log_line",
]

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


class TicketHopResource(ExportResource):
    """The log: one row per hop, the seed's line in the company's time zone."""

    company = fields.Field(attribute="line__company__name", column_name="company")
    line = fields.Field(attribute="line__number", column_name="line")
    caller = fields.Field(attribute="call__caller", column_name="caller")
    log_line = fields.Field(column_name="log_line", dehydrate_method="dehydrate_log_line")

    class Meta:
        model = TicketHop
        fields = HOP_COLUMNS
        export_order = HOP_COLUMNS

    def dehydrate_log_line(self, hop):
        return hop_log_line(hop=hop, caller=hop.call.caller, tz=hop.line.company.tzinfo)

    def get_queryset(self):
        return super().get_queryset().select_related("call", "line__company")

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("call", "line__company")


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
