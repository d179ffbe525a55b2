"""Call cards: prepaid talk time (VICIdial's call card feature, its CALLCARD.txt).

A company sells cards of minutes for a paid support, advice or chat line. Cards are made in
batches (CardBatch: the seed's run and batch, with what every card of it starts with), printed,
shipped and activated (callcards.lifecycle). A caller dials the line's DID, keys card id and PIN,
waits in the card's queue and talks to an agent until the minutes run out; each such call is a
CardCall (the seed's callcard_log), billed when it ends.

The seed's callcard_accounts and callcard_accounts_details are one row here (Card): status and
balance once; what is the same for a whole batch (initial minutes and value, purchase order,
printer) on the batch.
"""

import math

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from callcards.lifecycle import LIVE, Status
from config.models import OutboxMessage
from config.validators import validate_plain_lines, validate_plain_text

digits = RegexValidator(r"^[0-9]{1,18}$", "Digits only, at most 18.")
short_code = RegexValidator(r"^[A-Za-z0-9_-]{1,5}$", "Letters, digits, _ and -, at most 5.")
run_code = RegexValidator(r"^[A-Za-z0-9_-]{1,4}$", "Letters, digits, _ and -, at most 4.")

MAX_MINUTES = 32767  # the seed's SMALLINT balance


class Language(models.TextChoices):
    """The prompts a card's caller hears; Asterisk's sound directories by language code."""

    ENGLISH = "en", "English"
    FRENCH = "fr", "French"
    GERMAN = "de", "German"
    SPANISH = "es", "Spanish"
    ITALIAN = "it", "Italian"


class CardBatch(models.Model):
    """Cards made together (the seed's run and batch): what each starts with, and the job making them."""

    class Job(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Generating"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    company = models.ForeignKey("accounts.Company", on_delete=models.PROTECT, related_name="card_batches")
    run = models.CharField(max_length=4, validators=[run_code], help_text="the seed's run, e.g. R1")
    batch = models.CharField(max_length=5, validators=[short_code], help_text="the batch within the run")
    count = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(1_000_000)])
    pack_size = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)], help_text="cards per pack (shrink-wrapped together)"
    )
    initial_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_MINUTES)]
    )
    initial_value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="the sale price",
    )
    warning_minutes = models.PositiveIntegerField(
        default=1,
        validators=[MaxValueValidator(60)],
        help_text="the caller hears a warning this many minutes before the end (0: none)",
    )
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    did = models.CharField(
        "DID", max_length=18, blank=True, validators=[digits], help_text="printed on the card"
    )
    queue = models.ForeignKey(
        "queues.Queue",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="card_batches",
        help_text="the inbound queue its callers wait in",
    )
    purchase_order = models.CharField(max_length=20, blank=True, validators=[validate_plain_text])
    printer = models.CharField(max_length=20, blank=True, validators=[validate_plain_text])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    job = models.CharField(max_length=8, choices=Job.choices, default=Job.PENDING)
    generated = models.PositiveIntegerField(default=0, help_text="cards made so far")
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["company", "run", "batch"], name="card_batch_unique")]
        verbose_name_plural = "card batches"

    def __str__(self):
        return f"{self.run}/{self.batch} ({self.count} cards of {self.initial_minutes} min)"

    @property
    def progress(self) -> int:
        """Percent made."""
        return 100 if not self.count else min(100, self.generated * 100 // self.count)


class Card(models.Model):
    """One prepaid card: the seed's callcard_accounts and callcard_accounts_details."""

    company = models.ForeignKey("accounts.Company", on_delete=models.PROTECT, related_name="cards")
    batch = models.ForeignKey(CardBatch, on_delete=models.PROTECT, related_name="cards")
    card_id = models.CharField(
        max_length=20, unique=True, help_text="what the caller keys; ends in a Luhn digit"
    )
    pin_sealed = models.CharField(max_length=200, editable=False, help_text="the PIN, encrypted")
    pin_digest = models.CharField(max_length=64, editable=False, help_text="a keyed digest of the PIN")
    pack = models.PositiveIntegerField()
    sequence = models.PositiveIntegerField(help_text="the card's place in its batch, from 1")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.GENERATE)
    held_from = models.CharField(
        max_length=8, choices=Status.choices, blank=True, help_text="the status a card on HOLD goes back to"
    )
    balance_minutes = models.PositiveIntegerField(validators=[MaxValueValidator(MAX_MINUTES)])
    warning_minutes = models.PositiveIntegerField(default=1, validators=[MaxValueValidator(60)])
    queue = models.ForeignKey(
        "queues.Queue", null=True, blank=True, on_delete=models.PROTECT, related_name="cards"
    )
    did = models.CharField("DID", max_length=18, blank=True, validators=[digits])
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    name = models.CharField(
        max_length=60, blank=True, validators=[validate_plain_text], help_text="the holder"
    )
    email = models.EmailField(blank=True, help_text="the holder's, for low-balance alerts")
    comments = models.CharField(max_length=255, blank=True, validators=[validate_plain_lines])
    create_user = models.CharField(max_length=150, blank=True)
    create_time = models.DateTimeField()
    activate_user = models.CharField(max_length=150, blank=True)
    activate_time = models.DateTimeField(null=True, blank=True)
    used_user = models.CharField(max_length=150, blank=True)
    used_time = models.DateTimeField(null=True, blank=True)
    void_user = models.CharField(max_length=150, blank=True)
    void_time = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["batch_id", "sequence"]
        constraints = [
            # A PIN opens one live card only; a dead card's PIN may come round again.
            models.UniqueConstraint(
                fields=["pin_digest"], condition=Q(status__in=sorted(LIVE)), name="card_live_pin_unique"
            ),
            models.UniqueConstraint(fields=["batch", "sequence"], name="card_sequence_unique"),
        ]
        indexes = [models.Index(fields=["company", "status"], name="card_company_status")]
        permissions = [("callcard_admin", "Can see and manage call cards, their PINs and reports")]

    def __str__(self):
        return self.card_id


class CardEvent(models.Model):
    """Who changed a card's status, or its balance by hand, and when."""

    card = models.ForeignKey(Card, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    user = models.CharField(max_length=150, blank=True, help_text="empty: the platform (a call's billing)")
    old_status = models.CharField(max_length=8, choices=Status.choices)
    new_status = models.CharField(max_length=8, choices=Status.choices)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.card_id}: {self.old_status} -> {self.new_status} by {self.user or 'the platform'}"


class CardCall(models.Model):
    """A call on a card (the seed's callcard_log): from the dial-in to its billing."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for an agent"
        TALKING = "talking", "Talking to an agent"
        BILLED = "billed", "Billed"

    company = models.ForeignKey("accounts.Company", on_delete=models.PROTECT, related_name="card_calls")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="calls")
    uniqueid = models.CharField(max_length=150, help_text="the caller's channel")
    server = models.ForeignKey("telephony.PbxServer", null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    balance_minutes_start = models.PositiveIntegerField()
    balance_minutes_end = models.PositiveIntegerField(null=True, blank=True)
    call_time = models.DateTimeField(db_index=True, help_text="when the caller was let in")
    agent_time = models.DateTimeField(null=True, blank=True, help_text="when the agent answered")
    end_time = models.DateTimeField(null=True, blank=True)
    dispo_time = models.DateTimeField(null=True, blank=True)
    agent = models.CharField(max_length=130, blank=True)
    agent_uniqueid = models.CharField(
        max_length=150, blank=True, help_text="the agent's leg bridged with the caller: its end ends the talk"
    )
    agent_dispo = models.CharField(max_length=40, blank=True)
    agent_talk_sec = models.PositiveIntegerField(default=0)
    agent_talk_min = models.PositiveIntegerField(default=0)
    phone_number = models.CharField(max_length=40, blank=True)
    inbound_did = models.CharField(max_length=40, blank=True)
    queue = models.CharField(max_length=130, blank=True)
    end_reason = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["-call_time", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["server", "uniqueid"], name="card_call_unique"),
            # One call at a time on a card: a second dial-in on it is refused by the database.
            models.UniqueConstraint(
                fields=["card"], condition=~Q(state="billed"), name="card_call_one_open_per_card"
            ),
        ]
        indexes = [models.Index(fields=["card", "call_time"], name="card_call_card_time")]

    def __str__(self):
        return f"{self.card_id} call {self.uniqueid}"


def talk_minutes(seconds: int) -> int:
    """Minutes billed for a talk: every started minute."""
    return math.ceil(seconds / 60) if seconds > 0 else 0


class DialInFailure(models.Model):
    """A wrong card id or PIN keyed: counted per caller number and per card to lock PIN guessing out."""

    at = models.DateTimeField(db_index=True)
    phone_number = models.CharField(max_length=40, blank=True, db_index=True)
    card_id = models.CharField(max_length=20, blank=True, db_index=True, help_text="the card id keyed")
    inbound_did = models.CharField(max_length=40, blank=True)
    reason = models.CharField(max_length=40)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.reason} from {self.phone_number or 'an unknown number'}"


class Lockout(models.Model):
    """A caller number, or a card id, refused at dial-in until `until` (or lifted by hand)."""

    class Kind(models.TextChoices):
        CALLER = "caller", "Caller number"
        CARD = "card", "Card"

    kind = models.CharField(max_length=6, choices=Kind.choices)
    value = models.CharField(max_length=40)
    company = models.ForeignKey(
        "accounts.Company", null=True, blank=True, on_delete=models.CASCADE, related_name="card_lockouts",
        help_text="the card's company (a caller's lockout belongs to none)",
    )  # fmt: skip
    failures = models.PositiveIntegerField()
    locked_at = models.DateTimeField()
    until = models.DateTimeField(db_index=True)
    lifted_by = models.CharField(max_length=150, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-locked_at", "-id"]
        indexes = [models.Index(fields=["kind", "value", "until"], name="lockout_lookup")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.value} locked until {self.until:%Y-%m-%d %H:%M}"


class CallcardSettings(models.Model):
    """A company's call card preferences."""

    company = models.OneToOneField(
        "accounts.Company", on_delete=models.CASCADE, related_name="callcard_settings"
    )
    low_balance_minutes = models.PositiveIntegerField(
        default=5, help_text="a card at or below this many minutes is running low (0: never alert)"
    )
    alert_email = models.EmailField(blank=True, help_text="the daily digest of low cards goes here")

    class Meta:
        verbose_name = verbose_name_plural = "call card settings"

    def __str__(self):
        return f"call card settings of {self.company}"


class LowBalanceAlert(OutboxMessage):
    """An alert mail: to a card's holder once when it runs low, or a company's daily digest."""

    class Kind(models.TextChoices):
        HOLDER = "holder", "To the holder"
        DIGEST = "digest", "Daily digest"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"

    kind = models.CharField(max_length=6, choices=Kind.choices)
    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="card_alerts")
    card = models.ForeignKey(Card, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    day = models.DateField(null=True, blank=True, help_text="a digest's day, in the company's time zone")
    to = models.EmailField()
    balance_minutes = models.PositiveIntegerField(null=True, blank=True)
    cards = models.PositiveIntegerField(default=0, help_text="a digest's count of low cards")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A holder is told once that the card runs low.
            models.UniqueConstraint(fields=["card"], condition=Q(kind="holder"), name="alert_once_per_card"),
            models.UniqueConstraint(
                fields=["company", "day"], condition=Q(kind="digest"), name="alert_one_digest_per_day"
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.to} ({self.get_state_display()})"
