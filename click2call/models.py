"""Click2call: web banners that make a company call a visitor back.

A visitor leaves a number on a campaign's banner: a CallRequest. Each try at
connecting the visitor and the company is a CallAttempt: two real calls (legs),
the first party (the visitor by default) originated into the contract's
[platform-click2call], which plays the campaign's message and dials the second
party. A failed request is tried again after the campaign's pause up to its
redial count, then waits in the company's portal for a call back.
"""

import hashlib
import ipaddress
import re
import secrets
from decimal import Decimal
from urllib.parse import urlsplit

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import (
    FileExtensionValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.db.models import Q

from config.models import OutboxMessage
from config.validators import validate_plain_lines, validate_plain_text
from telephony.models import PbxServer, validate_header_value

digits_only = RegexValidator(r"^[0-9]{1,15}$", "Digits only, 1 to 15 of them (an E.164 prefix without +).")
# A name in the PBX's sounds directory, never a path of its own: no leading /, no "..".
sound_name = RegexValidator(
    r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
    "A sound name as Asterisk plays it (hello-world, custom/welcome): letters, digits, _ and -, "
    "folders joined by /; no leading /, no .. and no extension.",
)
# What a company's operator is: a number in international form, dialed through the campaign's route.
e164_number = RegexValidator(
    r"^\+[1-9][0-9]{6,14}$", "A number in international form, + and 7 to 15 digits (+33612345678)."
)
# Caller ID as Asterisk's CALLERID(all) takes it: "Name" <number>, Name <number>, or the number alone.
CALLER_ID = re.compile(
    r'(?:"(?P<quoted>[^"<>]*)"\s*|(?P<name>[^"<>]*?)\s*)<(?P<inner>\+?[0-9]+)>|(?P<bare>\+?[0-9]+)'
)
MAX_REMINDER_MINUTES = 30 * 24 * 60

# A caller ID travels in an Originate variable (C2C_CALLERID), which Asterisk splits on commas.
no_comma = RegexValidator(r",", inverse_match=True, message="No commas: write Doe John, not Doe, John.")


def caller_id_number(value: str) -> str | None:
    """The number of a caller ID, or None when it is not one of the forms Asterisk reads."""
    match = CALLER_ID.fullmatch(value.strip())
    return match and (match["inner"] or match["bare"])


def validate_caller_id(value):
    if caller_id_number(value) is None:
        raise ValidationError(
            'Write a caller ID as "Name" <number> or the number alone, the number in digits '
            '(an optional + first, no spaces): "Shop" <+33199001234>.'
        )


def validate_country(value):
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"{value!r} is not a country code: an ISO 3166 code such as FR, BE or US.")


def origin_normalize(line: str) -> str:
    """An allowed origin as a browser sends it (scheme://host[:port], lower case, no default port),
    or ValidationError saying what is wrong with the line."""
    text = line.strip()
    if text.lower() == "null":
        raise ValidationError(
            "null is the origin of sandboxed frames and local files: any site can send it, "
            "so it is never allowed."
        )
    if "*" in text:
        raise ValidationError(f"{text}: no wildcards, one site a line (https://shop.example.com).")
    parts = urlsplit(text.removesuffix("/"))
    if parts.scheme.lower() not in ("http", "https") or not text.lower().startswith(
        parts.scheme.lower() + "://"
    ):
        raise ValidationError(f"{text}: a site is https://host or http://host, nothing else.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValidationError(f"{text}: the port is a number from 1 to 65535.") from None
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc or "?" in text or "#" in text:
        raise ValidationError(f"{text}: only scheme://host[:port], no path, query or user name.")
    if not host or not text.isascii() or not _valid_host(host):
        raise ValidationError(f"{text}: not a host name (write an international name in its xn-- form).")
    scheme = parts.scheme.lower()
    shown = f"[{host}]" if ":" in host else host
    default_port = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{shown}" + (f":{port}" if port not in (None, default_port) else "")


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.split(".")
        return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def validate_origins(value):
    errors = []
    for line in value.splitlines():
        if line.strip():
            try:
                origin_normalize(line)
            except ValidationError as error:
                errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)


def _full_number(number: str, country: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, country))
    except phonenumbers.NumberParseException:
        return False


def generate_public_key():
    return "c2c_pk_" + secrets.token_urlsafe(18)


def generate_status_token():
    return secrets.token_urlsafe(24)


def hash_secret_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Operator(models.Model):
    """A person or device of the company that answers: a number (E.164) dialed through the
    campaign's dial route, checked like a visitor's (blocked prefixes, a rate in the campaign's
    tariff), or a dial string of its own (`PJSIP/reception`), which only staff set, in the admin."""

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="c2c_operators")
    name = models.CharField(max_length=100, validators=[validate_plain_text])
    number = models.CharField(max_length=20, blank=True, validators=[e164_number])
    dial_string = models.CharField(
        max_length=120,
        blank=True,
        validators=[validate_header_value],
        help_text="staff only, instead of a number, e.g. PJSIP/reception (no commas: Dial would split them)",
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["company", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(number="") & ~Q(dial_string="")) | (~Q(number="") & Q(dial_string="")),
                name="operator_number_or_dial_string",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.number or self.dial_string})"

    def clean(self):
        if bool(self.number) == bool(self.dial_string):
            raise ValidationError("Give either a number or a dial string.")
        if "," in self.dial_string or "&" in self.dial_string:
            raise ValidationError({"dial_string": "One channel, without commas or &."})


class Tariff(models.Model):
    """The prices of the destinations a company's campaigns may call; unrated numbers are never dialed."""

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="c2c_tariffs")
    name = models.CharField(max_length=100, validators=[validate_plain_text])

    class Meta:
        ordering = ["company", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="one_tariff_name_per_company")
        ]

    def __str__(self):
        return f"{self.company}: {self.name}"


class Rate(models.Model):
    """The price of a call to numbers starting with `prefix`; the longest matching prefix wins."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="rates")
    prefix = models.CharField(max_length=15, validators=[digits_only])
    destination = models.CharField(
        max_length=120, validators=[validate_plain_text], help_text="e.g. France - Mobile - Orange"
    )
    price = models.DecimalField(
        max_digits=10, decimal_places=5, validators=[MinValueValidator(Decimal("0"))], help_text="per minute"
    )

    class Meta:
        ordering = ["tariff", "prefix"]
        constraints = [models.UniqueConstraint(fields=["tariff", "prefix"], name="one_rate_per_prefix")]

    def __str__(self):
        return f"{self.prefix} {self.destination}"


class RateImport(models.Model):
    """A carrier's table on its way into a tariff, run by a Celery job (click2call.services.rate_imports):
    every row is checked first, then the rates are written in batches, each its own transaction, so
    the database is never held for the whole table. The row says how far it got and how it ended."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        CHECKING = "checking", "Checking the rows"
        WRITING = "writing", "Writing the rates"
        DONE = "done", "Imported"
        REFUSED = "refused", "Refused, nothing changed"
        FAILED = "failed", "Stopped before the end"

    ACTIVE_STATUSES = (Status.QUEUED, Status.CHECKING, Status.WRITING)

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="imports")
    requested_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL)
    file_name = models.CharField(max_length=200)
    # The file itself until the job has read it (at most forms.MAX_IMPORT_BYTES).
    content = models.BinaryField(editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveIntegerField(default=0, help_text="rates in the file")
    to_write = models.PositiveIntegerField(default=0, help_text="new or changed rates")
    written = models.PositiveIntegerField(default=0, help_text="of to_write, committed")
    created_count = models.PositiveIntegerField(default=0)
    changed_count = models.PositiveIntegerField(default=0)
    problems = models.JSONField(default=list, blank=True, help_text="what is wrong, first ones, in row order")
    problem_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two tables written into one tariff at once would interleave their batches.
            models.UniqueConstraint(
                fields=["tariff"],
                condition=Q(status__in=["queued", "checking", "writing"]),
                name="one_active_rate_import_per_tariff",
                violation_error_message="An import into this tariff is under way.",
            )
        ]

    def __str__(self):
        return f"{self.file_name} into {self.tariff}"

    @property
    def active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class BlockedPrefix(models.Model):
    """Numbers a company never calls (premium-rate ranges), refused before rating."""

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="c2c_blocked")
    prefix = models.CharField(max_length=15, validators=[digits_only])
    reason = models.CharField(max_length=120, blank=True, validators=[validate_plain_text])

    class Meta:
        ordering = ["company", "prefix"]
        verbose_name_plural = "blocked prefixes"
        constraints = [models.UniqueConstraint(fields=["company", "prefix"], name="one_block_per_prefix")]

    def __str__(self):
        return self.prefix


class Campaign(models.Model):
    class FirstParty(models.TextChoices):
        VISITOR = "visitor", "the visitor"
        COMPANY = "company", "the company"

    class Ringing(models.TextChoices):
        IN_ORDER = "in_order", "one after the other"
        TOGETHER = "together", "all together"

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="c2c_campaigns")
    name = models.CharField(max_length=100, validators=[validate_plain_text])
    server = models.ForeignKey(PbxServer, on_delete=models.PROTECT, related_name="+")
    route = models.SlugField(max_length=40, default="default", help_text="the server's dial route to numbers")
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="campaigns")
    operators = models.ManyToManyField(Operator, through="CampaignOperator", related_name="campaigns")
    ringing = models.CharField(max_length=10, choices=Ringing.choices, default=Ringing.IN_ORDER)
    first_party = models.CharField(max_length=10, choices=FirstParty.choices, default=FirstParty.VISITOR)
    message_sound = models.CharField(
        max_length=80, default="hello-world", validators=[sound_name], help_text="what the first party hears"
    )
    message_file = models.FileField(
        upload_to="click2call/messages/",
        blank=True,
        validators=[FileExtensionValidator(["wav"])],
        help_text="played instead of the sound when given",
    )
    ring_timeout = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(120)], help_text="seconds, per leg"
    )
    redial_count = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(10)], help_text="X: tries after the first"
    )
    redial_pause = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(10), MaxValueValidator(86400)],
        help_text="Y: seconds between",
    )
    visitor_caller_id = models.CharField(
        max_length=80,
        blank=True,
        validators=[validate_plain_text, no_comma, validate_caller_id],
        help_text='what the visitor\'s phone shows: "Name" <number>, a full number (no 112, no short code)',
    )
    company_caller_id = models.CharField(
        max_length=80,
        blank=True,
        validators=[validate_plain_text, no_comma, validate_caller_id],
        help_text='what the operators\' phones show: "Name" <number>, the number a full one',
    )
    allowed_origins = models.TextField(
        blank=True,
        validators=[validate_origins],
        help_text="one origin a line, scheme://host[:port] (https://shop.example.com): the sites the banner "
        "may post from with the public key; none, and it works from no site",
    )
    public_key = models.CharField(max_length=64, unique=True, default=generate_public_key, editable=False)
    secret_key_hash = models.CharField(max_length=64, blank=True, editable=False)
    secret_key_hint = models.CharField(max_length=12, blank=True, editable=False)
    default_country = models.CharField(
        max_length=2, default="FR", validators=[validate_country], help_text="ISO 3166 code"
    )
    reminder_minutes = models.PositiveIntegerField(
        default=60,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_REMINDER_MINUTES)],
        help_text="e-mail the company about a failed request waiting this long for a call back, in minutes "
        "(at most 30 days); empty or 0: no reminder",
    )
    reminder_email = models.EmailField(
        blank=True, help_text="where reminders go; empty: the company's billing e-mail"
    )
    price_per_completed = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0"))]
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["company", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="one_campaign_name_per_company")
        ]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        for field in ("visitor_caller_id", "company_caller_id"):
            number = caller_id_number(getattr(self, field))
            if number and not _full_number(number, self.default_country):
                errors[field] = (
                    f"{number} is not a full phone number in {self.default_country} or in international "
                    "form: a caller ID shows a number one can call back, never an emergency or short number."
                )
        if errors:
            raise ValidationError(errors)
        self.allowed_origins = "\n".join(self.origins())

    def origins(self) -> list[str]:
        """The allowed origins as browsers send them; a line that is not one is never honoured."""
        origins = []
        for line in self.allowed_origins.splitlines():
            try:
                origin = origin_normalize(line) if line.strip() else None
            except ValidationError:
                continue
            if origin and origin not in origins:
                origins.append(origin)
        return origins

    def secret_key_matches(self, key: str) -> bool:
        return bool(self.secret_key_hash) and secrets.compare_digest(
            self.secret_key_hash, hash_secret_key(key)
        )


class CampaignOperator(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE)
    operator = models.ForeignKey(Operator, on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["campaign", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "operator"], name="operator_once_per_campaign")
        ]

    def __str__(self):
        return f"{self.position}. {self.operator}"


class CallRequest(models.Model):
    """A visitor's request to be called: tried up to 1 + redial_count times, then called back by hand."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "waiting for a try"
        DIALING = "DIALING", "calling"
        COMPLETED = "COMPLETED"
        FAILED_USER = "FAILED_USER", "FAILED CALLING TO USER"
        FAILED_COMPANY = "FAILED_COMPANY", "FAILED CALLING TO COMPANY"

    OPEN = (Status.PENDING, Status.DIALING)

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="requests")
    company = models.ForeignKey("accounts.Company", on_delete=models.PROTECT, related_name="c2c_requests")
    number = models.CharField(max_length=16, help_text="E.164")
    name = models.CharField(max_length=100, blank=True, validators=[validate_plain_text])
    note = models.CharField(max_length=500, blank=True, validators=[validate_plain_text])
    consent = models.BooleanField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_token = models.CharField(max_length=40, unique=True, default=generate_status_token, editable=False)
    # The direction of the number: from the matched rate, completed by libphonenumber.
    destination = models.CharField(max_length=120, blank=True)
    country = models.CharField(max_length=2, blank=True)
    region = models.CharField(max_length=120, blank=True)
    carrier = models.CharField(max_length=120, blank=True)
    rate_prefix = models.CharField(max_length=15, blank=True)
    rate_price = models.DecimalField(max_digits=10, decimal_places=5, null=True)
    # The campaign's price_per_completed when the request completed, frozen there: a price changed
    # later is for the requests completed after it (click2call.services.dialing.attempt_finish).
    price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="what the request cost: its campaign's price when it completed, in the company's currency",
    )
    tries = models.PositiveSmallIntegerField(default=0, help_text="automatic tries made")
    next_try_at = models.DateTimeField(null=True, db_index=True)
    origin = models.CharField(max_length=200, blank=True)
    client_address = models.GenericIPAddressField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True)
    # When its reminder was written (click2call.services.reminders): claimed by a conditional update,
    # so a request is reminded of once, whichever worker gets there first.
    reminded_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-created_at"]),
            # The reminders' check every minute reads the failed requests not reminded yet, only.
            models.Index(
                fields=["finished_at"],
                condition=Q(reminded_at__isnull=True, status__in=["FAILED_USER", "FAILED_COMPANY"]),
                name="c2c_request_awaiting_reminder",
            ),
            # The statistics' aggregates over a period read this index alone (click2call.stats).
            models.Index(fields=["company", "created_at", "campaign", "status"], name="c2c_request_stats"),
            # The live figures: the company's open and failed requests.
            models.Index(fields=["company", "status"], name="c2c_request_company_status"),
        ]
        constraints = [
            # A second request for a number already in progress is the same request.
            models.UniqueConstraint(
                fields=["campaign", "number"],
                condition=Q(status__in=["PENDING", "DIALING"]),
                name="one_open_request_per_number",
            )
        ]

    def __str__(self):
        return f"{self.number} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def cost(self) -> Decimal:
        """What the request cost the company: its frozen price once COMPLETED, nothing otherwise."""
        if self.status == self.Status.COMPLETED and self.price is not None:
            return self.price
        return Decimal("0.00")


class CallAttempt(models.Model):
    """One try: the first party originated into [platform-click2call], which dials the second."""

    class Kind(models.TextChoices):
        AUTO = "auto", "automatic"
        CALLBACK = "callback", "call back from the portal"

    class Status(models.TextChoices):
        CLAIMED = "claimed", "about to dial"
        DIALING = "dialing"
        COMPLETED = "COMPLETED"
        FAILED_USER = "FAILED_USER", "FAILED CALLING TO USER"
        FAILED_COMPANY = "FAILED_COMPANY", "FAILED CALLING TO COMPANY"
        # Never sent to the PBX within C2C_CLAIM_GIVE_UP_SECONDS: nobody was rung.
        NOT_DIALED = "NOT_DIALED", "NOT DIALED (PBX unreachable)"

    request = models.ForeignKey(CallRequest, on_delete=models.CASCADE, related_name="attempts")
    seq = models.PositiveSmallIntegerField(help_text="1 for the first try")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.AUTO)
    first_party = models.CharField(max_length=10, choices=Campaign.FirstParty.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CLAIMED)
    channel_id = models.CharField(max_length=100, unique=True, help_text="the ChannelId of the first leg")
    detail = models.CharField(max_length=200, blank=True, help_text="what decided the outcome")
    requested_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["request", "seq"]
        constraints = [models.UniqueConstraint(fields=["request", "seq"], name="one_attempt_per_seq")]

    def __str__(self):
        return f"try {self.seq} of {self.request}"

    @property
    def app_ref(self) -> str:
        return f"attempt:{self.pk}"


class CallReminder(OutboxMessage):
    """The e-mail telling a company that a failed request has waited for its call back longer than
    the campaign's reminder_minutes: one per request, written PENDING, then SENT (config.outbox), or
    DROPPED, not sent, saying why (no address; called back or completed before it went)."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        DROPPED = "dropped", "Not sent"

    request = models.OneToOneField(CallRequest, on_delete=models.CASCADE, related_name="reminder")
    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="c2c_reminders")
    to = models.EmailField(blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"reminder of {self.request_id} to {self.to or '(nobody)'} ({self.get_state_display()})"


class CommentType(models.Model):
    """A kind of comment a company puts on its calls, with fields of its own."""

    company = models.ForeignKey(
        "accounts.Company", on_delete=models.CASCADE, related_name="c2c_comment_types"
    )
    name = models.CharField(max_length=80, validators=[validate_plain_text])
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["company", "name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="one_comment_type_name")]

    def __str__(self):
        return self.name


class CommentField(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text"
        NUMBER = "number"
        CHOICE = "choice"
        DATE = "date"

    comment_type = models.ForeignKey(CommentType, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=60, validators=[validate_plain_text])
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    choices = models.TextField(
        blank=True, validators=[validate_plain_lines], help_text="one choice a line, for a choice field"
    )
    required = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["comment_type", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["comment_type", "name"], name="one_field_name_per_type")
        ]

    def __str__(self):
        return self.name

    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]


class CallComment(models.Model):
    request = models.ForeignKey(CallRequest, on_delete=models.CASCADE, related_name="comments")
    comment_type = models.ForeignKey(CommentType, on_delete=models.PROTECT, related_name="comments")
    values = models.JSONField(default=dict, help_text="field name -> value, as the type's fields say")
    author = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request", "created_at", "id"]

    def __str__(self):
        return f"{self.comment_type} on {self.request}"


# Invoices (click2call.services.invoices)


class Issuer(models.Model):
    """Who invoices the companies: the platform's operator (one legal entity, or several). Each issuer
    numbers its invoices and credit notes without gaps, per year."""

    name = models.CharField(max_length=200, validators=[validate_plain_text])
    address = models.TextField(help_text="as printed on invoices, several lines")
    vat_id = models.CharField("VAT id", max_length=30, blank=True)
    email = models.EmailField(
        blank=True, help_text="the invoices' sender and reply-to; DEFAULT_FROM_EMAIL when empty"
    )
    number_prefix = models.CharField(
        max_length=10,
        validators=[RegexValidator(r"^[A-Z0-9-]{1,10}$", "Capitals, digits and -, e.g. INV or OP2-.")],
        help_text="an invoice is numbered <prefix><year>-<sequence>, e.g. INV2026-00001",
    )
    default = models.BooleanField(default=False, help_text="issues the invoices of the monthly schedule")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["number_prefix"], name="one_issuer_per_prefix"),
            models.UniqueConstraint(fields=["default"], condition=Q(default=True), name="one_default_issuer"),
        ]

    def __str__(self):
        return self.name


class InvoiceCounter(models.Model):
    """The last number an issuer gave in a year: the row locked while a number is taken, so two
    invoices issued at once never share one or skip one (never max() + 1)."""

    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="counters")
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "year"], name="one_counter_per_issuer_year")]

    def __str__(self):
        return f"{self.issuer} {self.year}: {self.last}"


class ImmutableQuerySet(models.QuerySet):
    def delete(self):
        raise ValidationError("An issued invoice is never deleted: issue a credit note.")


class Invoice(models.Model):
    """An invoice of a company's COMPLETED click2calls in a month (its own time zone), or a credit
    note correcting one. Issued once and never changed: the company's and the issuer's details, the
    amounts and the PDF are copied in at issue. Only its e-mail delivery moves on afterwards."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "invoice"
        CREDIT_NOTE = "credit_note", "credit note"

    class Mail(models.TextChoices):
        PENDING = "pending", "to be sent"
        SENT = "sent", "sent"
        NO_ADDRESS = "no_address", "not sent: the company has no billing e-mail"

    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    issuer = models.ForeignKey(Issuer, on_delete=models.PROTECT, related_name="invoices")
    company = models.ForeignKey("accounts.Company", on_delete=models.PROTECT, related_name="c2c_invoices")
    year = models.PositiveSmallIntegerField()
    sequence = models.PositiveIntegerField()
    number = models.CharField(max_length=30, unique=True)
    period_start = models.DateField(help_text="the first day of the month billed")
    period_end = models.DateField(help_text="its last day")
    credited = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    reason = models.CharField(max_length=200, blank=True, validators=[validate_plain_text])
    currency = models.CharField(max_length=3)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2)
    calls = models.PositiveIntegerField(default=0)
    net = models.DecimalField(max_digits=14, decimal_places=2)
    tax = models.DecimalField(max_digits=14, decimal_places=2)
    gross = models.DecimalField(max_digits=14, decimal_places=2)
    company_name = models.CharField(max_length=200)
    company_address = models.TextField(blank=True)
    company_vat_id = models.CharField(max_length=30, blank=True)
    issuer_name = models.CharField(max_length=200)
    issuer_address = models.TextField()
    issuer_vat_id = models.CharField(max_length=30, blank=True)
    pdf = models.BinaryField(editable=False)
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL)
    # Delivery: the PDF mailed to the company's billing e-mail; a mail server down retries later.
    mail_to = models.EmailField(blank=True)
    mail_state = models.CharField(max_length=12, choices=Mail.choices, default=Mail.PENDING)
    mail_attempts = models.PositiveSmallIntegerField(default=0)
    mail_next_try_at = models.DateTimeField(null=True, blank=True)
    mail_error = models.CharField(max_length=300, blank=True)
    mailed_at = models.DateTimeField(null=True, blank=True)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "year", "sequence"], name="invoice_number_once"),
            models.UniqueConstraint(
                fields=["company", "period_start"],
                condition=Q(kind="invoice"),
                name="one_invoice_per_company_period",
            ),
            models.CheckConstraint(
                condition=Q(kind="invoice", credited__isnull=True)
                | Q(kind="credit_note", credited__isnull=False),
                name="credit_note_credits_an_invoice",
            ),
        ]
        indexes = [models.Index(fields=["company", "-issued_at"])]

    def __str__(self):
        return f"{self.get_kind_display().capitalize()} {self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(f"{self} is issued: it is never changed (a correction is a credit note).")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(f"{self} is issued: it is never deleted (a correction is a credit note).")

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"


class InvoiceLine(models.Model):
    """One campaign's COMPLETED calls on an invoice (or a credit note's correction), at its price."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    description = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "id"]

    def __str__(self):
        return self.description

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError("An issued invoice's lines are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("An issued invoice's lines are never deleted.")


class InvoiceRun(models.Model):
    """Staff's request for one company's invoice of a month, issued by a Celery job whose progress
    the row shows (the admin's invoice runs)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        COUNTING = "counting", "Counting the calls"
        PRINTING = "printing", "Numbering and printing"
        DONE = "done", "Issued"
        REFUSED = "refused", "Refused, nothing issued"
        FAILED = "failed", "Stopped by an error"

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="c2c_invoice_runs")
    period_start = models.DateField(help_text="any day of the month to invoice: the month is billed")
    requested_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    calls = models.PositiveIntegerField(default=0, help_text="COMPLETED calls found")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.company} {self.period_start:%Y-%m}"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.COUNTING, self.Status.PRINTING)
