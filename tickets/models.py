"""Tickets: emergency lines that reach a technician out of hours (the seed's innovaphone ticketing).

A caller dials a company's TicketLine, hears its announcement and confirms with a digit; the call
is recorded from the confirmation on and hunts the line's Technicians in order, from the one in
charge, each one's internal phone and mobile rung together. Each hop opens its own ticket number
(TicketHop, the seed's log line); the last hop is the `_END` one. A TicketCall is the whole call.
After the release the technician who answered, or the last one rung when the caller gave up, gets
the ticket by SMS and by IM on the internal phone (TicketMessage).
"""

from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models

from accounts.models import validate_webhook_url
from config.models import OutboxMessage
from config.validators import validate_plain_text
from telephony.models import PbxServer, validate_header_value
from tickets.validators import validate_message_template

did_digits = RegexValidator(r"^[0-9]{1,20}$", "Digits only, at most 20 (a +E.164 DID without its +).")
phone_number = RegexValidator(r"^\+?[0-9]{2,20}$", "A phone number: digits, an optional leading +.")
sound_name = RegexValidator(
    r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
    "A sound name as Asterisk plays it (hello-world, custom/emergency): letters, digits, _ and -, "
    "folders joined by /; no leading /, no .. and no extension.",
)
confirm_key = RegexValidator(r"^[0-9*#]$", "One key: 0 to 9, * or #.")

# The seed's IM/SMS string: 12.10.2012_14.00_12.10.2012_14.05_Ticket_1234_Caller_03472619287_Called_732
DEFAULT_TEMPLATE = (
    "{start_date}_{start_time}_{end_date}_{end_time}_Ticket_{ticket}_Caller_{caller}_Called_{called}"
)
MAX_TICKET = 10**12


class TicketLine(models.Model):
    """A number callers dial in an emergency, and how its calls are handled."""

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="ticket_lines")
    server = models.ForeignKey(PbxServer, on_delete=models.PROTECT, related_name="ticket_lines")
    name = models.CharField(max_length=100, validators=[validate_plain_text])
    number = models.CharField(
        max_length=20, validators=[did_digits], help_text="the DID callers dial, routed to the ticket script"
    )
    route = models.SlugField(
        max_length=40, default="default", help_text="the server's dial route for technicians' numbers"
    )
    announcement_sound = models.CharField(
        max_length=80, default="hello-world", validators=[sound_name], help_text="what the caller hears first"
    )
    announcement_file = models.FileField(
        upload_to="tickets/announcements/",
        blank=True,
        validators=[FileExtensionValidator(["wav"])],
        help_text="played instead of the sound when given",
    )
    confirm_digit = models.CharField(max_length=1, default="1", validators=[confirm_key])
    confirm_seconds = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text="how long to wait for it",
    )
    record = models.BooleanField(default=True, help_text="record from the confirmation to the release")
    ring_seconds = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(5), MaxValueValidator(300)],
        help_text="how long each technician rings (the CFNR timeout)",
    )
    wrap = models.BooleanField(
        default=True,
        help_text="after the last technician, go on with the first ones (the seed's round robin)",
    )
    rounds = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="how many times the list is gone through when it wraps",
    )
    next_ticket = models.PositiveBigIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_TICKET)],
        help_text="the number the next hop gets; set it to restart the numbering (e.g. at 100)",
    )
    message_template = models.CharField(
        max_length=300,
        default=DEFAULT_TEMPLATE,
        validators=[validate_plain_text, validate_message_template],
        help_text=(
            "the SMS and IM text: {start_date} {start_time} {end_date} {end_time} {ticket} {caller} {called}"
        ),
    )
    retention_days = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="recordings older than this are deleted",
    )
    in_charge = models.ForeignKey(
        "Technician",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="rung first (the seed's follow-me/CFU); empty: the first of the list",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["company", "name"]
        constraints = [
            models.UniqueConstraint(fields=["server", "number"], name="one_ticket_line_per_server_number"),
        ]

    def __str__(self):
        return f"{self.name} ({self.number})"


class Technician(models.Model):
    """Someone a line hunts, in `position` order: the internal phone and the mobile ring together."""

    line = models.ForeignKey(TicketLine, on_delete=models.CASCADE, related_name="technicians")
    name = models.CharField(max_length=100, validators=[validate_plain_text])
    position = models.PositiveSmallIntegerField(default=0, help_text="hunt order, lowest first")
    internal = models.CharField(
        max_length=120,
        validators=[validate_header_value],
        help_text="the internal phone: a number dialed through the line's route, or a dial string: PJSIP/732",
    )
    mobile = models.CharField(
        max_length=21,
        blank=True,
        validators=[phone_number],
        help_text="rung together with the internal phone",
    )
    sms_number = models.CharField(
        max_length=21,
        blank=True,
        validators=[phone_number],
        help_text="gets the ticket by SMS; empty: the mobile",
    )
    im_address = models.CharField(
        max_length=120,
        blank=True,
        validators=[validate_header_value],
        help_text="MessageSend's To for the IM (pjsip:732); empty: made from the internal phone",
    )
    # The seed's SMSUser.txt and SMSPassword.txt: this technician's own credentials at the SMS provider,
    # when the provider bills per sender. Write only: never shown again once saved.
    sms_username = models.CharField(max_length=100, blank=True, validators=[validate_header_value])
    sms_password = models.CharField(max_length=200, blank=True, validators=[validate_header_value])
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["line", "position", "id"]

    def __str__(self):
        return f"{self.name} ({self.internal})"


class SmsSettings(models.Model):
    """How a company's tickets are sent by SMS: one HTTP gateway (URL, method, auth, parameters)."""

    class Provider(models.TextChoices):
        NONE = "none", "No SMS"
        CONSOLE = "console", "Console (written to the worker's log, for trying it out)"
        HTTP = "http", "HTTP gateway"

    class Method(models.TextChoices):
        GET = "GET"
        POST_FORM = "POST", "POST (form)"
        POST_JSON = "POST_JSON", "POST (JSON)"

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BASIC = "basic", "Basic (user name and password)"
        BEARER = "bearer", "Bearer token"

    company = models.OneToOneField("accounts.Company", on_delete=models.CASCADE, related_name="sms_settings")
    provider = models.CharField(max_length=10, choices=Provider.choices, default=Provider.CONSOLE)
    url = models.URLField(blank=True, validators=[validate_webhook_url], help_text="the gateway's send URL")
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.POST_FORM)
    auth = models.CharField(max_length=10, choices=Auth.choices, default=Auth.NONE)
    username = models.CharField(max_length=100, blank=True, validators=[validate_header_value])
    # Write only, as the technicians' credentials: never shown again once saved.
    secret = models.CharField(max_length=200, blank=True, validators=[validate_header_value])
    parameters = models.TextField(
        blank=True,
        default="to={to}\ntext={text}",
        help_text="one name=value a line; {to} {text} {sender} {username} {password} are filled in",
    )
    sender = models.CharField(max_length=20, blank=True, validators=[validate_plain_text])
    country_prefix = models.CharField(
        max_length=4,
        blank=True,
        validators=[RegexValidator(r"^[0-9]{1,4}$", "Digits only, e.g. 39.")],
        help_text="put before national numbers (the seed's SMSprefix.txt), without + or 00",
    )
    timeout_seconds = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(60)]
    )

    class Meta:
        verbose_name = "SMS settings"
        verbose_name_plural = "SMS settings"

    def __str__(self):
        return f"SMS for {self.company}"


class TicketCall(models.Model):
    """One caller's call to a ticket line, from the answer to the release."""

    class State(models.TextChoices):
        ANNOUNCING = "announcing", "Hearing the announcement"
        HUNTING = "hunting", "Ringing technicians"
        ANSWERED = "answered", "Answered"
        UNCONFIRMED = "unconfirmed", "Not confirmed"
        ABANDONED = "abandoned", "Caller gave up"
        NOBODY = "nobody", "Nobody answered"
        FAILED = "failed", "Failed"

    ENDED = (State.ANSWERED, State.UNCONFIRMED, State.ABANDONED, State.NOBODY, State.FAILED)

    line = models.ForeignKey(TicketLine, on_delete=models.CASCADE, related_name="calls")
    server = models.ForeignKey(PbxServer, on_delete=models.PROTECT, related_name="+")
    uniqueid = models.CharField(max_length=150, help_text="the caller's channel")
    caller = models.CharField(max_length=40, blank=True)
    called = models.CharField(max_length=20, help_text="the line's number as dialed")
    state = models.CharField(max_length=12, choices=State.choices, default=State.ANNOUNCING, db_index=True)
    started_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Relative to TICKETS_RECORDING_DIR; empty: not recorded (see recording_note).
    recording = models.CharField(max_length=200, blank=True)
    recording_note = models.CharField(max_length=200, blank=True, help_text="why there is no recording")
    recording_deleted_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        Technician, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True, help_text="what happened, in words")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["server", "uniqueid"], name="one_ticket_call_per_channel"),
        ]
        indexes = [models.Index(fields=["line", "-started_at"])]

    def __str__(self):
        return f"{self.line} {self.caller} {self.started_at:%Y-%m-%d %H:%M}"


class TicketHop(models.Model):
    """One technician rung for a call: a ticket number of its own (the seed's log line)."""

    call = models.ForeignKey(TicketCall, on_delete=models.CASCADE, related_name="hops")
    line = models.ForeignKey(TicketLine, on_delete=models.CASCADE, related_name="hops")
    ticket = models.PositiveBigIntegerField()
    sequence = models.PositiveSmallIntegerField(help_text="1 for the call's first hop")
    technician = models.ForeignKey(
        Technician, on_delete=models.SET_NULL, null=True, blank=True, related_name="hops"
    )
    technician_name = models.CharField(max_length=100)
    called = models.CharField(max_length=120, help_text="the internal phone, as the log shows it")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    dial_status = models.CharField(max_length=20, blank=True, help_text="Asterisk's DIALSTATUS")
    answered = models.BooleanField(default=False)
    last = models.BooleanField(default=False, help_text="the call's last hop: _END in the log")

    class Meta:
        ordering = ["-started_at", "-ticket"]
        constraints = [
            models.UniqueConstraint(fields=["line", "ticket"], name="one_hop_per_line_ticket"),
            models.UniqueConstraint(fields=["call", "sequence"], name="one_hop_per_call_sequence"),
        ]

    def __str__(self):
        return f"Ticket {self.ticket}"


class TicketMessage(OutboxMessage):
    """The ticket sent to one technician after the release: an SMS (by a Celery worker, retried) or an
    IM (AMI MessageSend from the pbx process). Written before it is sent: never lost, never twice."""

    class Channel(models.TextChoices):
        SMS = "sms", "SMS"
        IM = "im", "IM"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed for good"

    call = models.ForeignKey(TicketCall, on_delete=models.CASCADE, related_name="messages")
    hop = models.ForeignKey(TicketHop, on_delete=models.CASCADE, related_name="messages")
    technician = models.ForeignKey(Technician, on_delete=models.SET_NULL, null=True, related_name="+")
    channel = models.CharField(max_length=3, choices=Channel.choices)
    to = models.CharField(max_length=120)
    body = models.CharField(max_length=500)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING, db_index=True)
    provider_reference = models.CharField(max_length=100, blank=True, help_text="the gateway's message id")
    delivery_status = models.CharField(max_length=40, blank=True, help_text="the gateway's last word on it")
    delivery_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["call", "channel"], name="one_ticket_message_per_call_channel"),
        ]
        indexes = [models.Index(fields=["state", "next_try_at"])]

    def __str__(self):
        return f"{self.get_channel_display()} to {self.to}"
