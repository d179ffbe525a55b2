import ipaddress
import re
import secrets
import string

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


def validate_dial_template(value):
    """A dial-string template names {number} and nothing else, with no format spec or conversion:
    `{number:>999999999}` would build a gigabyte string on every call."""
    validate_header_value(value)
    try:
        parts = [
            (name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None
        ]
    except ValueError as exc:
        raise ValidationError(f"Not a valid template: {exc}.") from None
    if [name for name, _, _ in parts] != ["number"]:
        raise ValidationError("Use exactly one placeholder, {number}, e.g. PJSIP/{number}@carrier.")
    if any(spec or conv for _, spec, conv in parts):
        raise ValidationError("Write the placeholder as plain {number}, with no format spec or conversion.")


def has_control_character(value) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in str(value))


def validate_header_value(value):
    """Goes into an AMI header: a line break would start another header, or another action."""
    if has_control_character(value):
        raise ValidationError("Control characters (line breaks, tabs, NUL) are not allowed here.")


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def validate_host(value):
    """An IP address or a DNS host name, nothing that could smuggle more into a connection string."""
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if not value or len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValidationError(f"{value!r} is neither an IP address nor a host name.")


PORT_VALIDATORS = [MinValueValidator(1), MaxValueValidator(65535)]


class PbxServer(models.Model):
    """An Asterisk the platform drives over AMI and serves FastAGI to."""

    class State(models.TextChoices):
        UNKNOWN = "unknown", "never connected"
        CONNECTING = "connecting", "connecting"
        CONNECTED = "connected", "connected"
        DOWN = "down", "down"

    name = models.SlugField(max_length=60, unique=True)
    ami_host = models.CharField("AMI host", max_length=253, default="127.0.0.1", validators=[validate_host])
    ami_port = models.PositiveIntegerField("AMI port", default=5038, validators=PORT_VALIDATORS)
    ami_username = models.CharField("AMI user", max_length=80, validators=[validate_header_value])
    ami_secret = models.CharField("AMI secret", max_length=128, validators=[validate_header_value])
    agi_bind_host = models.CharField(
        "FastAGI bind address", max_length=253, default="127.0.0.1", validators=[validate_host]
    )
    agi_bind_port = models.PositiveIntegerField("FastAGI port", default=4573, validators=PORT_VALIDATORS)
    outbound_caller_id = models.CharField(
        max_length=80, blank=True, validators=[validate_header_value], help_text='e.g. "Support" <5550000>'
    )
    enabled = models.BooleanField(default=True)

    state = models.CharField(max_length=12, choices=State.choices, default=State.UNKNOWN, editable=False)
    state_changed_at = models.DateTimeField(null=True, editable=False)
    last_event_at = models.DateTimeField(null=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    # One pbx process owns a server at a time; a standby takes over when the lease lapses.
    lease_owner = models.CharField("owned by", max_length=120, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, editable=False)
    # The fencing token: one more at each take-over. Every write the pbx process makes for the server
    # (folds, reconciles, health reports, the apps' ctx.db) checks owner and epoch in its own
    # transaction, so an owner that lost the lease (frozen, starved) writes nothing once another
    # process took the server over.
    lease_epoch = models.PositiveBigIntegerField("lease epoch", default=0, editable=False)
    # What the owning process measured: events waiting to be folded, and whether they carry the PBX clock.
    event_lag = models.PositiveIntegerField("events waiting to be folded", default=0, editable=False)
    events_timestamped = models.BooleanField(null=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "PBX server"
        constraints = [
            models.CheckConstraint(condition=Q(ami_port__gte=1, ami_port__lte=65535), name="ami_port_range"),
            models.CheckConstraint(
                condition=Q(agi_bind_port__gte=1, agi_bind_port__lte=65535), name="agi_port_range"
            ),
        ]

    def __str__(self):
        return self.name

    def __repr__(self):
        # Never the secret, whatever ends up in a log line.
        return f"<PbxServer {self.name} {self.ami_host}:{self.ami_port}>"


class DialRoute(models.Model):
    """A server's way to numbers: `PJSIP/{number}@carrier` in production, `Local/{number}@phones` in tests."""

    server = models.ForeignKey(PbxServer, on_delete=models.CASCADE, related_name="routes")
    name = models.SlugField(max_length=40, default="default")
    template = models.CharField(max_length=200, validators=[validate_dial_template])

    class Meta:
        ordering = ["server", "name"]
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="one_route_name_per_server")]

    def __str__(self):
        return f"{self.server.name}/{self.name}: {self.template}"

    def dial_string(self, number: str) -> str:
        return self.template.format(number=number)


class CallRecord(models.Model):
    """One call leg, folded from AMI events (or pushed asterCC-style events).

    Every field is derived monotonically (earliest start and answer, latest end,
    the strongest disposition), so duplicated and reordered events, and the
    forked Cdr events Asterisk sometimes sends, never change the result. An end
    the reconcile guessed is the exception: Asterisk's own end replaces it.
    """

    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"

    class State(models.TextChoices):
        CLAIMED = "claimed", "claimed, not sent"
        SENT = "sent", "sent to the PBX"
        RINGING = "ringing"
        ANSWERED = "answered"
        ENDED = "ended"

    class Disposition(models.TextChoices):
        PENDING = "PENDING", "in progress"
        ANSWERED = "ANSWERED"
        NO_ANSWER = "NO ANSWER"
        BUSY = "BUSY"
        FAILED = "FAILED"

    source = models.CharField(max_length=80, help_text="ami:<server> or push:<company id>")
    uniqueid = models.CharField(max_length=150)
    linkedid = models.CharField(max_length=150, blank=True, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="legs")
    server = models.ForeignKey(PbxServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    company = models.ForeignKey(
        "accounts.Company", null=True, blank=True, on_delete=models.PROTECT, related_name="call_records"
    )
    app = models.CharField(max_length=40, blank=True, help_text="the flow that placed or took the call")
    app_ref = models.CharField(max_length=120, blank=True, help_text="the flow's own reference")
    channel = models.CharField(max_length=200, blank=True)
    caller = models.CharField(max_length=80, blank=True)
    callee = models.CharField(max_length=80, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.OUTBOUND)
    started_at = models.DateTimeField(null=True, db_index=True)
    answered_at = models.DateTimeField(null=True)
    ended_at = models.DateTimeField(null=True)
    duration = models.PositiveIntegerField(default=0, help_text="seconds from start to end")
    billsec = models.PositiveIntegerField(default=0, help_text="seconds from answer to end")
    state = models.CharField(max_length=8, choices=State.choices, default=State.SENT)
    disposition = models.CharField(max_length=10, choices=Disposition.choices, default=Disposition.PENDING)
    bridge_id = models.CharField(
        max_length=150, blank=True, help_text="the bridge the leg is in, or was last"
    )
    bridged_at = models.DateTimeField(null=True)
    originate_reason = models.PositiveSmallIntegerField(
        null=True, help_text="the Reason of the OriginateResponse, for an originated leg"
    )
    hangup_cause = models.PositiveSmallIntegerField(null=True)
    hangup_cause_text = models.CharField(max_length=80, blank=True)
    # The disposition is what a guessed end (the reconcile's) derived, not the PBX's word: the
    # real end, when it comes, derives it again.
    outcome_guessed = models.BooleanField(default=False, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["source", "uniqueid"], name="one_record_per_leg")]
        indexes = [
            models.Index(fields=["company", "-started_at"]),
            # An app's legs by its own reference (click2call's statistics join attempts to legs so).
            models.Index(fields=["app", "app_ref"], name="record_app_ref"),
            models.Index(fields=["source", "state"], name="open_records", condition=~Q(state="ended")),
        ]

    def __str__(self):
        return f"{self.caller or '?'} -> {self.callee or '?'} ({self.disposition})"


# What a company sees of a call record, in this order: in the API, the portal's CSV and the admin's exports.
CALL_RECORD_PUBLIC_FIELDS = [
    "uniqueid",
    "linkedid",
    "app",
    "app_ref",
    "caller",
    "callee",
    "direction",
    "state",
    "started_at",
    "answered_at",
    "bridged_at",
    "ended_at",
    "duration",
    "billsec",
    "disposition",
    "hangup_cause",
    "hangup_cause_text",
]


class WebhookDelivery(models.Model):
    """One call event POSTed to a company's webhook, with its delivery history."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed", "failed for good"

    company = models.ForeignKey(
        "accounts.Company", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    url = models.URLField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True)
    last_attempt_at = models.DateTimeField(null=True)
    # Held while an attempt is in flight, so no delivery is POSTed twice at once.
    leased_until = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False), name="delivered_has_time"
            )
        ]

    def __str__(self):
        return f"{self.event} to {self.url} ({self.status})"


def generate_push_key():
    return secrets.token_urlsafe(32)


class PushToken(models.Model):
    """Lets a company's own PBX push asterCC-style call events to /api/telephony/events/."""

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="push_tokens")
    key = models.CharField(max_length=64, unique=True, default=generate_push_key, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"push token of {self.company} ({self.key_hint})"

    @property
    def key_hint(self) -> str:
        """The key is shown whole once, when created; after that only this much of it."""
        return f"{self.key[:6]}…"


class AppTimer(models.Model):
    """A timer an app of the pbx process set (`call_later`): kept here, so a restart rebuilds it."""

    app = models.CharField(max_length=40)
    server = models.ForeignKey(PbxServer, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=120)
    due_at = models.DateTimeField(db_index=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["due_at"]
        constraints = [models.UniqueConstraint(fields=["app", "server", "key"], name="one_timer_per_key")]

    def __str__(self):
        return f"{self.app} {self.key} at {self.due_at:%Y-%m-%d %H:%M:%S}"
