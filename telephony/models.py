import secrets
import string

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def validate_dial_template(value):
    """A dial-string template must name {number} and nothing else."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise ValidationError(f"Not a valid template: {exc}.") from None
    if fields != {"number"}:
        raise ValidationError("Use exactly one placeholder, {number}, e.g. PJSIP/{number}@carrier.")


class PbxServer(models.Model):
    """An Asterisk the platform drives over AMI and serves FastAGI to."""

    class State(models.TextChoices):
        UNKNOWN = "unknown", "never connected"
        CONNECTING = "connecting", "connecting"
        CONNECTED = "connected", "connected"
        DOWN = "down", "down"

    name = models.SlugField(max_length=60, unique=True)
    ami_host = models.CharField("AMI host", max_length=255, default="127.0.0.1")
    ami_port = models.PositiveIntegerField("AMI port", default=5038)
    ami_username = models.CharField("AMI user", max_length=80)
    ami_secret = models.CharField("AMI secret", max_length=128)
    agi_bind_host = models.CharField("FastAGI bind address", max_length=255, default="127.0.0.1")
    agi_bind_port = models.PositiveIntegerField("FastAGI port", default=4573)
    outbound_caller_id = models.CharField(max_length=80, blank=True, help_text='e.g. "Support" <5550000>')
    enabled = models.BooleanField(default=True)

    state = models.CharField(max_length=12, choices=State.choices, default=State.UNKNOWN, editable=False)
    state_changed_at = models.DateTimeField(null=True, editable=False)
    last_event_at = models.DateTimeField(null=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "PBX server"

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
    forked Cdr events Asterisk sometimes sends, never change the result.
    """

    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"

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
    disposition = models.CharField(max_length=10, choices=Disposition.choices, default=Disposition.PENDING)
    hangup_cause = models.PositiveSmallIntegerField(null=True)
    hangup_cause_text = models.CharField(max_length=80, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["source", "uniqueid"], name="one_record_per_leg")]
        indexes = [models.Index(fields=["company", "-started_at"])]

    def __str__(self):
        return f"{self.caller or '?'} -> {self.callee or '?'} ({self.disposition})"


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
