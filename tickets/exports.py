"""The ticket log as a spreadsheet: one row per hop, first the seed's log line (`_END` on a call's
last hop), then its parts and what was sent, through config.exports' formula escaping (a caller ID
is whatever the caller's carrier sends). Times are the company's (the portal's active time zone).
"""

from import_export import fields, widgets

from config.exports import ExportResource
from tickets.models import TicketHop, TicketMessage
from tickets.services.messages import hop_log_line

HOP_COLUMNS = [
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


def _message(hop: TicketHop, channel: str) -> str:
    """The state of the call's message on this channel, on the hop it was sent for; empty elsewhere."""
    for message in hop.call.messages.all():  # prefetched by the selector
        if message.channel == channel and message.hop_id == hop.pk:
            text = f"{message.state} to {message.to}"
            if message.state == TicketMessage.State.FAILED and message.last_error:
                text += f": {message.last_error}"
            if message.delivery_status:
                text += f" ({message.delivery_status})"
            return text
    return ""


class HopLogResource(ExportResource):
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

    def __init__(self, *, tz, **kwargs):
        super().__init__(**kwargs)
        self.tz = tz

    def dehydrate_log(self, hop):
        return hop_log_line(hop=hop, caller=hop.call.caller, tz=self.tz)

    def dehydrate_sms(self, hop):
        return _message(hop, TicketMessage.Channel.SMS)

    def dehydrate_im(self, hop):
        return _message(hop, TicketMessage.Channel.IM)
