"""Queues: an inbound ACD with FreeSWITCH mod_callcenter's semantics, on Asterisk.

A caller routed to the contract's [platform-queue] becomes a Member of a
Queue. The dispatcher (queues/pbx.py, in the pbx process) offers members to
Agents through their Tiers (the agent's level and position in that queue),
by the queue's strategy, rings the agent with a claimed Originate and joins
both with the Bridge action when the agent answers. Every offer is an Offer
row; what happened is kept as QueueEvents (mod_callcenter's events), which
are also pushed to the company's webhook.

The database is the record of truth: the dispatcher keeps a copy in memory to
decide fast, writes each change here first, and rebuilds from here (and from
the PBX's live channels) when it starts.
"""

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from telephony.models import PbxServer, validate_header_value

queue_name = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,59}$", "Lower-case letters, digits, . _ and -, starting with a letter or digit."
)
agent_name = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$", "Letters, digits, . _ and -, starting with a letter or digit."
)
sound_name = RegexValidator(
    r"^[A-Za-z0-9_/-]{0,80}$", "A sound or music class as Asterisk names it: letters, digits, _ - and /."
)
dtmf_keys = RegexValidator(r"^[0-9*#]{0,12}$", "Keys of a phone: 0-9, * and #.")
record_template = RegexValidator(
    r"^[A-Za-z0-9_./{}-]{0,200}$",
    "A file name: letters, digits, _ . - / and the fields {queue} {member} {date} {time}.",
)
SECONDS = [MinValueValidator(0), MaxValueValidator(86400)]


class Strategy(models.TextChoices):
    LONGEST_IDLE_AGENT = "longest-idle-agent"
    AGENT_WITH_LEAST_TALK_TIME = "agent-with-least-talk-time"
    AGENT_WITH_FEWEST_CALLS = "agent-with-fewest-calls"
    RANDOM = "random"
    SEQUENTIALLY_BY_AGENT_ORDER = "sequentially-by-agent-order"
    TOP_DOWN = "top-down"
    ROUND_ROBIN = "round-robin"
    RING_ALL = "ring-all"
    RING_PROGRESSIVELY = "ring-progressively"


class Queue(models.Model):
    """A queue of callers, named `<name>@<company slug>` as mod_callcenter names them."""

    class TimeBaseScore(models.TextChoices):
        QUEUE = "queue", "queue (from joining the queue)"
        SYSTEM = "system", "system (from the call's answer)"

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="queues")
    name = models.CharField(max_length=60, validators=[queue_name], help_text="e.g. support")
    server = models.ForeignKey(PbxServer, on_delete=models.PROTECT, related_name="queues")
    strategy = models.CharField(max_length=32, choices=Strategy.choices, default=Strategy.LONGEST_IDLE_AGENT)
    moh_sound = models.CharField(
        "hold music",
        max_length=80,
        default="default",
        validators=[sound_name],
        help_text="a MusicOnHold class",
    )
    record_template = models.CharField(
        max_length=200,
        blank=True,
        validators=[record_template],
        help_text="records bridged calls when set, e.g. queues/{queue}/{date}-{member}.wav",
    )
    time_base_score = models.CharField(
        max_length=6, choices=TimeBaseScore.choices, default=TimeBaseScore.QUEUE
    )
    tier_rules_apply = models.BooleanField(default=False)
    tier_rule_wait_second = models.PositiveIntegerField(default=300, validators=SECONDS)
    tier_rule_wait_multiply_level = models.BooleanField(default=True)
    tier_rule_no_agent_no_wait = models.BooleanField(default=False)
    discard_abandoned_after = models.PositiveIntegerField(default=60, validators=SECONDS)
    abandoned_resume_allowed = models.BooleanField(default=False)
    max_wait_time = models.PositiveIntegerField(default=0, validators=SECONDS, help_text="0: no limit")
    max_wait_time_with_no_agent = models.PositiveIntegerField(
        default=0,
        validators=SECONDS,
        help_text="seconds with no agent logged in before the caller leaves; 0: no limit",
    )
    max_wait_time_with_no_agent_time_reached = models.PositiveIntegerField(
        default=5,
        validators=SECONDS,
        help_text="once reached, new callers leave after this many seconds while still no agent is logged in",
    )
    ring_progressively_delay = models.PositiveIntegerField(default=10, validators=[MaxValueValidator(3600)])
    offer_timeout = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(5), MaxValueValidator(300)],
        help_text="seconds an agent rings",
    )
    exit_keys = models.CharField(
        max_length=12, blank=True, validators=[dtmf_keys], help_text="keys that leave the queue"
    )
    callback_key = models.CharField(
        max_length=1,
        blank=True,
        validators=[dtmf_keys],
        help_text="a key that asks to be called back instead of waiting",
    )
    announce_position_every = models.PositiveIntegerField(
        default=0, validators=SECONDS, help_text="seconds between position announcements; 0: never"
    )
    service_level_seconds = models.PositiveIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="answered within N s",
    )
    loaded = models.BooleanField(
        default=True, help_text="the dispatcher serves the queue (queue load/unload)"
    )
    # The round-robin strategy goes on after the agent offered last, across restarts.
    last_agent = models.ForeignKey(
        "Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["company", "name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="queue_name_per_company")]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.name}@{self.company.slug}"

    def clean(self):
        overlap = set(self.callback_key) & set(self.exit_keys)
        if overlap:
            raise ValidationError({"callback_key": "The call back key cannot also be an exit key."})


class Agent(models.Model):
    """Someone who answers a queue's callers, reached at a contact (callback) or already waiting on a
    channel of its own (uuid-standby)."""

    class Type(models.TextChoices):
        CALLBACK = "callback", "Callback"
        UUID_STANDBY = "uuid-standby", "uuid-standby"

    class Status(models.TextChoices):
        LOGGED_OUT = "Logged Out"
        AVAILABLE = "Available"
        AVAILABLE_ON_DEMAND = "Available (On Demand)"
        ON_BREAK = "On Break"

    class State(models.TextChoices):
        IDLE = "Idle"
        WAITING = "Waiting"
        RECEIVING = "Receiving"
        IN_A_QUEUE_CALL = "In a queue call"
        RESERVED = "Reserved"

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="queue_agents")
    name = models.CharField(max_length=60, validators=[agent_name], help_text="e.g. 1000")
    user = models.OneToOneField(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="queue_agent"
    )
    type = models.CharField(max_length=12, choices=Type.choices, default=Type.CALLBACK)
    contact = models.CharField(
        max_length=120,
        blank=True,
        validators=[validate_header_value],
        help_text="a number dialed through the queue server's dial route, or a dial string (PJSIP/1000)",
    )
    route = models.CharField(max_length=40, default="default", help_text="the dial route for a number")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.LOGGED_OUT)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    max_no_answer = models.PositiveIntegerField(default=3, validators=[MaxValueValidator(1000)])
    wrap_up_time = models.PositiveIntegerField(default=10, validators=SECONDS)
    reject_delay_time = models.PositiveIntegerField(default=10, validators=SECONDS)
    busy_delay_time = models.PositiveIntegerField(default=60, validators=SECONDS)
    no_answer_delay_time = models.PositiveIntegerField(default=60, validators=SECONDS)
    reserve_agents = models.BooleanField(default=False)
    # uuid-standby: the channel the agent waits on, set when the agent calls in.
    standby_channel = models.CharField(max_length=120, blank=True, editable=False)
    calls_answered = models.PositiveIntegerField(default=0)
    talk_time = models.PositiveIntegerField(default=0, help_text="seconds")
    no_answer_count = models.PositiveIntegerField(default=0)
    last_bridge_start = models.DateTimeField(null=True, blank=True)
    last_bridge_end = models.DateTimeField(null=True, blank=True)
    last_offered_call = models.DateTimeField(null=True, blank=True)
    last_status_change = models.DateTimeField(null=True, blank=True)
    ready_time = models.DateTimeField(null=True, blank=True, help_text="not offered before this time")
    changed_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["company", "name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="agent_name_per_company")]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.name}@{self.company.slug}"

    @property
    def contact_is_number(self) -> bool:
        return bool(self.contact) and "/" not in self.contact

    def clean(self):
        if self.type == self.Type.CALLBACK and not self.contact:
            raise ValidationError({"contact": "A callback agent needs a contact to be rung at."})
        if "," in self.contact or "&" in self.contact:
            raise ValidationError({"contact": "One channel, without commas or &."})
        if (
            self.contact
            and "/" not in self.contact
            and not RegexValidator(r"^\+?[0-9*#]{1,40}$").regex.match(self.contact)
        ):
            raise ValidationError({"contact": "A number (digits, * #) or a dial string such as PJSIP/1000."})


class Tier(models.Model):
    """An agent's place in a queue: lower levels are offered first; position orders within a level."""

    class State(models.TextChoices):
        READY = "Ready"
        NO_ANSWER = "No Answer"
        OFFERING = "Offering"
        ACTIVE_INBOUND = "Active Inbound"
        STANDBY = "Standby"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="tiers")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tiers")
    level = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)])
    position = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(100000)]
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.READY)
    changed_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["queue", "level", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "agent"], name="one_tier_per_queue_and_agent")
        ]

    def __str__(self):
        return f"{self.agent} in {self.queue} (level {self.level}, position {self.position})"

    def clean(self):
        if self.queue_id and self.agent_id and self.queue.company_id != self.agent.company_id:
            raise ValidationError("The agent and the queue belong to different companies.")


class Member(models.Model):
    """A caller in a queue: waiting, being offered (Trying), served (Answered) or gone (Abandoned)."""

    class State(models.TextChoices):
        WAITING = "Waiting"
        TRYING = "Trying"
        ANSWERED = "Answered"
        ABANDONED = "Abandoned"

    class CancelReason(models.TextChoices):
        NONE = "", "-"
        TIMEOUT = "TIMEOUT"
        NO_AGENT_TIMEOUT = "NO_AGENT_TIMEOUT"
        BREAK_OUT = "BREAK_OUT"
        EXIT_WITH_KEY = "EXIT_WITH_KEY"

    WAITING_STATES = (State.WAITING, State.TRYING)

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="members")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session_uuid = models.CharField("channel uniqueid", max_length=150, blank=True)
    channel = models.CharField(max_length=150, blank=True)
    cid_name = models.CharField("caller name", max_length=80, blank=True)
    cid_number = models.CharField("caller number", max_length=40, blank=True)
    joined_at = models.DateTimeField(db_index=True)
    # Where the score's seconds count from: joining (time-base-score queue) or the call's answer (system).
    score_from = models.DateTimeField()
    base_score = models.IntegerField(
        default=0, validators=[MinValueValidator(-86400 * 365), MaxValueValidator(86400 * 365)]
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    bridged_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True)
    hangup_cause = models.CharField(max_length=40, blank=True)
    # The caller pressed the call back key: no channel waits, the place in the queue is kept.
    callback_number = models.CharField(max_length=40, blank=True)
    # Set when an abandoned caller came back and took up this member's place.
    resumed = models.BooleanField(default=False)
    source_app = models.CharField(max_length=40, blank=True, help_text="the app that sent the caller here")
    source_ref = models.CharField(max_length=120, blank=True, help_text="its card or ticket")
    # Sent by the source app (queues.services.handoff): Asterisk itself ends the bridge this many
    # seconds after it began (Bridge() with L()), the caller warned talk_warning seconds before.
    talk_limit = models.PositiveIntegerField(null=True, blank=True, help_text="seconds of talk time at most")
    talk_warning = models.PositiveIntegerField(null=True, blank=True, help_text="seconds before the end")
    limit_warning_file = models.CharField(max_length=200, blank=True)
    limit_timeout_file = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["queue", "joined_at", "id"]
        indexes = [
            models.Index(fields=["queue", "state"]),
            models.Index(fields=["cid_number", "ended_at"]),
            models.Index(fields=["source_app", "source_ref"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "session_uuid"],
                condition=Q(state__in=["Waiting", "Trying"]) & ~Q(session_uuid=""),
                name="one_waiting_member_per_channel",
            ),
        ]

    def __str__(self):
        return f"{self.cid_number or self.cid_name or self.uuid} in {self.queue_id} ({self.state})"

    @property
    def waiting(self) -> bool:
        return self.state in self.WAITING_STATES


class Offer(models.Model):
    """One try at reaching an agent for a member: the agent's leg, how it ended."""

    class Result(models.TextChoices):
        RINGING = "ringing"
        ANSWERED = "answered", "answered and bridged"
        NO_ANSWER = "no_answer", "no answer"
        BUSY = "busy"
        REJECTED = "rejected"
        FAILED = "failed"
        CANCELED = "canceled", "canceled (the caller was served or left)"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="offers")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="offers")
    # An agent deleted later leaves its offers (the queue's history) with no agent.
    agent = models.ForeignKey(Agent, null=True, on_delete=models.SET_NULL, related_name="offers")
    channel_id = models.CharField(max_length=100, unique=True)
    offered_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=10, choices=Result.choices, default=Result.RINGING)
    hangup_cause = models.CharField(max_length=40, blank=True)
    talk_time = models.PositiveIntegerField(default=0, help_text="seconds bridged")

    class Meta:
        ordering = ["-offered_at", "-id"]
        indexes = [models.Index(fields=["agent", "offered_at"]), models.Index(fields=["queue", "offered_at"])]
        constraints = [
            # The database's word that no agent is offered two callers at once ...
            models.UniqueConstraint(
                fields=["agent"], condition=Q(result="ringing"), name="one_ringing_offer_per_agent"
            ),
            # ... and that no caller is bridged twice.
            models.UniqueConstraint(
                fields=["member"], condition=Q(result="answered"), name="one_answered_offer_per_member"
            ),
        ]

    def __str__(self):
        return f"{self.agent} for {self.member_id}: {self.result}"


class QueueEvent(models.Model):
    """One of mod_callcenter's events (agent-status-change, member-queue-start ...), with its fields."""

    class Action(models.TextChoices):
        AGENT_STATUS_CHANGE = "agent-status-change"
        AGENT_STATE_CHANGE = "agent-state-change"
        AGENT_OFFERING = "agent-offering"
        BRIDGE_AGENT_START = "bridge-agent-start"
        BRIDGE_AGENT_END = "bridge-agent-end"
        BRIDGE_AGENT_FAIL = "bridge-agent-fail"
        MEMBERS_COUNT = "members-count"
        MEMBER_QUEUE_START = "member-queue-start"
        MEMBER_QUEUE_END = "member-queue-end"

    company = models.ForeignKey("accounts.Company", on_delete=models.CASCADE, related_name="queue_events")
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    agent = models.ForeignKey(Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    action = models.CharField(max_length=24, choices=Action.choices)
    fields = models.JSONField(default=dict, help_text="the event's CC-* headers")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["company", "created_at"])]

    def __str__(self):
        return f"{self.action} at {self.created_at:%Y-%m-%d %H:%M:%S}"
