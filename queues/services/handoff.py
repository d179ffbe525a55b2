"""The one way another app sends a caller to a queue and learns how the call went there.

Sending. The source app's FastAGI script runs on the caller's channel in [platform-agi] (the
caller's DID routed there with PLATFORM_SCRIPT=<its script>). Before it returns it sets, with
SET VARIABLE, every pair `queue_variables()` gives. [platform-agi] then sends the caller on to
[platform-queue] at the same extension (PLATFORM_AGI_NEXT), where the caller joins the queue as a
Member carrying `source_app` and `source_ref`, and waits. The script must not hang the caller up
nor EXEC anything after setting them; it only returns.

    for name, value in queue_variables(queue="support@acme", source_app="callcards",
                                       source_ref=card_call_ref, talk_limit_seconds=600,
                                       warning_seconds=60, warning_sound="beep",
                                       timeout_sound="vm-goodbye").items():
        await call.set_variable(name, value)

The talk limit. With `talk_limit_seconds`, the agent who answers joins the caller with Asterisk's
Bridge() application and `L(limit:warning)` (in [platform-queue-limited]), not with the AMI Bridge
action: Asterisk itself ends the bridge `talk_limit_seconds` after it began, whether the pbx process
is there or not. The caller (not the agent) hears `warning_sound` `warning_seconds` before the end
(Asterisk says the time left when no sound is given) and `timeout_sound` at the end, then goes on
in [platform-queue-wait] `after` (PLATFORM_QUEUE_AFTER at the DID, or a hang-up); the agent leaves
the bridge at once. Talk time is counted from the bridge (the agent's answer), so the limit is
the caller's whole talk time.

Learning. The source app keeps its own call record of the caller's leg: its script adopts the leg
(`telephony.services.calls.call_record_adopt(..., app=<source app>, app_ref=...)`) before
handing it over, and the queue then leaves that record to it. The app's `on_call_event` receives the
leg's typed events: `CallBridged` when the agent is put through (the record's `bridged_at`) and
`CallEnded` when the caller hangs up. On either it calls `queue_call(source_app=, source_ref=)`
(through `ctx.read`) for what the queue knows: which agent, when the caller joined, was answered,
left, why it left unanswered. The queue's own timestamps are those of its Member row, taken by the
dispatcher: `answered_at` when the agent was ready (a moment before Asterisk bridged), `ended_at`
when it learnt the bridge ended (or, until it has, the caller's leg's end). The leg's record has
the PBX's own times (`bridged_at`, `ended_at`, from the events' timestamps): bill from those.
When the pbx process is away at the end, Asterisk still ends the call at the limit; the queue
ends the member when the process is back (its `ended_at` is then that moment), and the leg's
record is settled by the telephony reconcile.

Other variables of [platform-queue] may be set alongside (README.md of the contract):
PLATFORM_QUEUE_EXIT (where a caller who leaves unanswered goes on, at the DID),
PLATFORM_QUEUE_AFTER (where the caller goes on after the agent), cc_base_score, ...
"""

import dataclasses
import datetime as dt
import re

from queues.models import Member
from telephony.models import CallRecord
from telephony.services.servers import ami_source

# The channel variables of the hand-over ([platform-queue] and [platform-queue-limited] read them).
QUEUE = "PLATFORM_QUEUE"
SOURCE_APP = "CC_SOURCE_APP"
SOURCE_REF = "CC_SOURCE_REF"
TALK_LIMIT = "CC_TALK_LIMIT"  # whole seconds of talk time
TALK_WARNING = "CC_TALK_WARNING"  # whole seconds before the end
WARNING_FILE = "CC_LIMIT_WARNING_FILE"
TIMEOUT_FILE = "CC_LIMIT_TIMEOUT_FILE"
AGI_NEXT = "PLATFORM_AGI_NEXT"
NEXT_CONTEXT = "platform-queue"

# A sound as Playback names it: no path tricks, no dialplan syntax (& joins sounds for Playback,
# not for Bridge()'s limit sounds, which are one file each).
SOUND = re.compile(r"[A-Za-z0-9_/-]{1,200}")
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}@[A-Za-z0-9_-]{1,80}")
SOURCE_APP_MAX, SOURCE_REF_MAX = 40, 120
# A day: a longer call is no talk limit anyone means, and Asterisk's L() counts milliseconds.
TALK_LIMIT_MAX = 86400


def queue_variables(
    *,
    queue: str,
    source_app: str,
    source_ref: str,
    talk_limit_seconds: int | None = None,
    warning_seconds: int | None = None,
    warning_sound: str = "",
    timeout_sound: str = "",
) -> dict[str, str]:
    """The channel variables a source app's FastAGI script sets on the caller's channel so that,
    after the script, the caller joins `queue` (`<queue>@<company slug>`) tagged with the source
    app and its reference, its talk time limited to `talk_limit_seconds` when given. Raises
    ValueError on a value the dialplan could not carry safely."""
    if not QUEUE_NAME.fullmatch(queue):
        raise ValueError(f"not a queue's full name: {queue!r}")
    if not source_app or len(source_app) > SOURCE_APP_MAX or not source_app.isidentifier():
        raise ValueError(f"not an app name: {source_app!r}")
    if not source_ref or len(source_ref) > SOURCE_REF_MAX or not re.fullmatch(r"[\w:.@-]+", source_ref):
        raise ValueError(f"not a reference: {source_ref!r}")
    variables = {QUEUE: queue, SOURCE_APP: source_app, SOURCE_REF: source_ref, AGI_NEXT: NEXT_CONTEXT}
    if talk_limit_seconds is None:
        if warning_seconds is not None or warning_sound or timeout_sound:
            raise ValueError("a warning or a timeout sound needs a talk limit")
        return variables
    if not 1 <= talk_limit_seconds <= TALK_LIMIT_MAX:
        raise ValueError(f"talk limit out of range: {talk_limit_seconds}")
    variables[TALK_LIMIT] = str(int(talk_limit_seconds))
    if warning_seconds is not None:
        if not 1 <= warning_seconds < talk_limit_seconds:
            raise ValueError(f"warning out of range: {warning_seconds} (limit {talk_limit_seconds})")
        variables[TALK_WARNING] = str(int(warning_seconds))
    for name, sound in ((WARNING_FILE, warning_sound), (TIMEOUT_FILE, timeout_sound)):
        if sound:
            if not SOUND.fullmatch(sound) or ".." in sound:
                raise ValueError(f"not a sound name: {sound!r}")
            variables[name] = sound
    if warning_sound and warning_seconds is None:
        raise ValueError("a warning sound needs warning_seconds")
    return variables


def limit_fields(*, talk_limit: str, talk_warning: str, warning_file: str, timeout_file: str) -> dict:
    """The member's talk limit from the caller's channel variables as [platform-queue] finds them
    (set by a source app's script, or by anyone able to route a call there): what is not a valid
    limit is no limit, what is not a valid sound is no sound."""
    limit, warning = talk_limit.strip(), talk_warning.strip()
    if not limit.isdigit() or not 1 <= int(limit) <= TALK_LIMIT_MAX:
        return {}
    fields: dict = {"talk_limit": int(limit)}
    if warning.isdigit() and 1 <= int(warning) < int(limit):
        fields["talk_warning"] = int(warning)
    for name, sound in (("limit_warning_file", warning_file), ("limit_timeout_file", timeout_file)):
        sound = sound.strip()
        if SOUND.fullmatch(sound) and ".." not in sound:
            fields[name] = sound
    return fields


def bridge_limit(*, talk_limit: int, talk_warning: int | None) -> str:
    """Bridge()'s L() argument: the limit and the warning, in milliseconds."""
    return f"{talk_limit * 1000}:{talk_warning * 1000}" if talk_warning else f"{talk_limit * 1000}"


@dataclasses.dataclass(frozen=True)
class QueueCall:
    """What the queue knows of a caller a source app sent it (its latest stay in a queue)."""

    queue: str  # <queue>@<company slug>
    member_uuid: str
    state: str  # Member.State: Waiting, Trying, Answered, Abandoned
    agent: str  # <agent>@<company slug>, "" until answered
    joined_at: dt.datetime
    answered_at: dt.datetime | None  # the bridge with the agent: talk time counts from here
    ended_at: dt.datetime | None  # left the queue unanswered, or the bridge ended
    cancel_reason: str  # Member.CancelReason when it left unanswered (TIMEOUT, BREAK_OUT, ...)
    talk_limit: int | None  # seconds, as sent

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def over(self) -> bool:
        return self.ended_at is not None


def queue_call(*, source_app: str, source_ref: str) -> QueueCall | None:
    """The queue's side of the caller `source_app` sent with `source_ref`: its latest member row,
    or None when no caller with that reference ever joined a queue."""
    member = (
        Member.objects.select_related("queue__company", "agent__company")
        .filter(source_app=source_app, source_ref=source_ref)
        .order_by("-joined_at", "-id")
        .first()
    )
    if member is None:
        return None
    ended_at = member.ended_at
    if ended_at is None and member.state == Member.State.ANSWERED:
        # The caller's leg ended and the dispatcher, in its own lane, has not recorded it yet: the
        # source app hears of the end (CallEnded) as early as the queue does, or earlier.
        ended_at = (
            CallRecord.objects.filter(
                source=ami_source(member.queue.server_id),
                uniqueid=member.session_uuid,
                state=CallRecord.State.ENDED,
            )
            .values_list("ended_at", flat=True)
            .first()
        )
    return QueueCall(
        queue=member.queue.full_name,
        member_uuid=str(member.uuid),
        state=member.state,
        agent=member.agent.full_name if member.agent else "",
        joined_at=member.joined_at,
        answered_at=member.bridged_at,
        ended_at=ended_at,
        cancel_reason=member.cancel_reason,
        talk_limit=member.talk_limit,
    )
