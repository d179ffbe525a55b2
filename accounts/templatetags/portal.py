"""The portal's one way to show a time: `{{ call.started_at|when }}` gives "2026-12-02 14:05:09 CET".

Always in the active time zone (the company's, see CompanyTimezoneMiddleware),
always naming it, so a time read off a screen or a screenshot is never ambiguous.
"""

from django import template
from django.utils.dateformat import format as format_date

from config import words

register = template.Library()

PORTAL_DATETIME_FORMAT = "Y-m-d H:i:s T"
PORTAL_CLOCK_FORMAT = "H:i:s T"  # a clock beside portal times: the same zone, 24-hour, named


@register.filter(expects_localtime=True)
def when(value):
    if not value:
        return "—"
    return format_date(value, PORTAL_DATETIME_FORMAT)


@register.filter(expects_localtime=True)
def clock(value):
    """The time of day of `value` as the portal's times give it: "14:05:09 CET"."""
    if not value:
        return "—"
    return format_date(value, PORTAL_CLOCK_FORMAT)


# Codes in words (config.words): `{{ call.status|say:"c2c_request" }}`.
VOCABULARIES = {
    "c2c_request": words.C2C_REQUEST_STATUS,
    "c2c_attempt": words.C2C_ATTEMPT_STATUS,
    "c2c_attempt_kind": words.C2C_ATTEMPT_KIND,
    "disposition": words.DISPOSITION,
    "direction": words.DIRECTION,
    "flow": words.FLOW,
    "delivery": words.DELIVERY_STATUS,
    "agent_status": words.AGENT_STATUS,
    "agent_state": words.AGENT_STATE,
    "tier_state": words.TIER_STATE,
    "member_state": words.MEMBER_STATE,
    "queue_event": words.QUEUE_EVENT,
    "dial_status": words.DIAL_STATUS,
}


@register.filter
def say(code, vocabulary):
    return words.say(VOCABULARIES[vocabulary], code)


@register.filter
def attempt_outcome(attempt):
    return words.attempt_outcome(
        status=attempt.status, detail=attempt.detail, first_party=attempt.first_party
    )


@register.filter
def party(callee):
    return words.party(callee)


@register.filter
def hangup(record):
    return words.hangup(record.hangup_cause, record.hangup_cause_text)


@register.filter
def money(amount, currency):
    """`{{ call.cost|money:company.currency }}`: "1.50 EUR", "0.024 EUR" (a rate's fractions of a cent
    kept, never fewer than two places); "—" for no amount (not rated)."""
    if amount is None:
        return "—"
    places = max(2, -amount.normalize().as_tuple().exponent)
    return f"{amount:.{places}f} {currency}"
