"""What the portal says for the codes the platform stores: one phrase per code, in one place.

The database, the API, the webhooks and the admin keep the codes (`FAILED_USER`, `NO ANSWER`,
`CHANUNAVAIL`); people read these words. Every phrase is in sentence case (a capital first letter,
the rest lower case), so a badge never shouts beside another that does not. The portal's templates
reach them through the `say`, `attempt_outcome`, `party` and `hangup` filters of
`accounts/templatetags/portal.py`.
"""

import re

# click2call: a call request's status (CallRequest.Status)
C2C_REQUEST_STATUS = {
    "PENDING": "Waiting for a try",
    "DIALING": "Calling",
    "COMPLETED": "Completed",
    "FAILED_USER": "Failed calling the visitor",
    "FAILED_COMPANY": "Failed calling the company",
}

# click2call: one try's status (CallAttempt.Status)
C2C_ATTEMPT_STATUS = {
    "claimed": "About to call",
    "dialing": "Calling",
    "COMPLETED": "Completed",
    "FAILED_USER": "Failed calling the visitor",
    "FAILED_COMPANY": "Failed calling the company",
    "NOT_DIALED": "Not dialed: the PBX was unreachable",
}

C2C_ATTEMPT_KIND = {"auto": "Automatic", "callback": "Call back from the portal"}

# telephony: a call leg's outcome (CallRecord.Disposition), as Asterisk's CDR names it
DISPOSITION = {
    "PENDING": "In progress",
    "ANSWERED": "Answered",
    "NO ANSWER": "No answer",
    "BUSY": "Busy",
    "FAILED": "Failed",
}

DIRECTION = {"inbound": "Inbound", "outbound": "Outbound"}

# The flow that placed or took a call (CallRecord.app).
FLOW = {"click2call": "Click2call", "queues": "Queue", "call": "Test call"}

# A webhook delivery (WebhookDelivery.Status).
DELIVERY_STATUS = {"pending": "Pending", "delivered": "Delivered", "failed": "Failed for good"}

# queues: mod_callcenter's names, which the API and the callcenter command keep as they are.
AGENT_STATUS = {
    "Logged Out": "Logged out",
    "Available": "Available",
    "Available (On Demand)": "Available on demand",
    "On Break": "On break",
}
AGENT_STATE = {
    "Idle": "Idle",
    "Waiting": "Waiting",
    "Receiving": "Receiving a call",
    "In a queue call": "In a queue call",
    "Reserved": "Reserved",
}
TIER_STATE = {
    "Ready": "Ready",
    "No Answer": "No answer",
    "Offering": "Offering",
    "Active Inbound": "Active inbound",
    "Standby": "Standby",
}
MEMBER_STATE = {
    "Waiting": "Waiting",
    "Trying": "Ringing an agent",
    "Answered": "Answered",
    "Abandoned": "Abandoned",
}

# mod_callcenter's events, kept under their names for the webhooks and the API.
QUEUE_EVENT = {
    "agent-status-change": "Agent's status changed",
    "agent-state-change": "Agent's state changed",
    "agent-offering": "Caller offered to an agent",
    "bridge-agent-start": "Agent put through to a caller",
    "bridge-agent-end": "Agent's call ended",
    "bridge-agent-fail": "Agent not reached",
    "members-count": "Callers waiting counted",
    "member-queue-start": "Caller joined the queue",
    "member-queue-end": "Caller left the queue",
}

# Asterisk's DIALSTATUS, as what happened to the party that was dialed.
DIAL_STATUS = {
    "ANSWER": "answered",
    "NOANSWER": "did not answer",
    "BUSY": "was busy",
    "CONGESTION": "could not be reached (network congested)",
    "CHANUNAVAIL": "could not be reached (line unavailable)",
    "CANCEL": "was ringing when the caller hung up",
    "DONTCALL": "refused the call",
    "TORTURE": "refused the call",
    "INVALIDARGS": "could not be dialed",
}

# What click2call's dialing service writes for a first party that never answered.
UNANSWERED = {"busy": "was busy", "no_answer": "did not answer", "failed": "could not be reached"}

# Q.850 hang-up causes people meet (Asterisk's Cause); others read Asterisk's own text.
HANGUP_CAUSE = {
    1: "number does not exist",
    3: "no route to the number",
    16: "hung up",
    17: "busy",
    18: "no response",
    19: "no answer",
    20: "phone unreachable",
    21: "call rejected",
    22: "number changed",
    27: "destination out of order",
    28: "invalid number",
    31: "ended",
    34: "no line available",
    38: "network out of order",
    41: "temporary failure",
    42: "network congested",
    127: "network error",
}

# The platform's dialplan contexts a leg can be a Local channel into: whom it stands for.
PLATFORM_CONTEXTS = {
    "platform-click2call-company": "your operators",
    "platform-click2call": "the visitor",
    "platform-queue-agent": "a queue agent",
    "platform-queue": "a queue",
}

_DIAL_STRING = re.compile(r"^[A-Za-z0-9_-]+/(?P<target>[^@/]+)(?:@(?P<context>[^/]+))?(?:/\w+)?$")


def say(vocabulary: dict, code) -> str:
    """The words for a code; a code that has none yet reads as itself, never as nothing."""
    if code in (None, ""):
        return "—"
    return vocabulary.get(code, str(code))


def party(callee: str) -> str:
    """A leg's callee as a person reads it: the number, or whom a platform Local channel rings,
    never a dial string such as `Local/s@platform-click2call-company/n`."""
    match = _DIAL_STRING.match(callee or "")
    if match is None:
        return callee or "—"
    context = match["context"] or ""
    if context in PLATFORM_CONTEXTS:
        return PLATFORM_CONTEXTS[context]
    return match["target"]


def hangup(cause, cause_text: str = "") -> str:
    """Why a leg ended, in words ("hung up", "busy"); empty when Asterisk gave no cause."""
    if not cause:
        return ""
    return HANGUP_CAUSE.get(int(cause)) or (cause_text or "").lower() or f"cause {cause}"


def _parties(first_party: str) -> tuple[str, str]:
    return ("the company", "the visitor") if first_party == "company" else ("the visitor", "the company")


def attempt_outcome(*, status: str, detail: str, first_party: str) -> str:
    """A click2call try's status and what [platform-click2call] reported, as one sentence:
    "Failed calling the company: the company did not answer"."""
    words = say(C2C_ATTEMPT_STATUS, status)
    first, second = _parties(first_party)
    reason = _attempt_reason(detail or "", first, second)
    return f"{words}: {reason}" if reason else words


def _attempt_reason(detail: str, first: str, second: str) -> str:
    if detail == "bridged":
        return f"{first} and {second} were put through"
    stage, sep, code = detail.partition(": ")
    if not sep:
        return detail  # the service's own words (a refusal, "ended without a report")
    if stage == "first party":
        return f"{first} {UNANSWERED.get(code, 'could not be reached')}"
    if code in ("", "hung up"):
        where = "during the message" if stage == "message" else f"while {second} rang"
        return f"{first} hung up {where}"
    if code == "CANCEL":
        return f"{first} hung up while {second} rang"
    return f"{second} {DIAL_STATUS.get(code, 'could not be reached')}"
