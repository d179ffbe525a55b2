"""Call cards in the pbx process: the dial-in script and the billing of each card's call.

A DID routed to [platform-agi] with PLATFORM_SCRIPT=callcard runs the FastAGI script `callcard`:
the caller keys card id and PIN (three tries), callcards.services.dialin checks them and opens the
card's CardCall, and the script sets the queues app's hand-off variables (queues.services.handoff:
the card's queue, the talk limit the PBX enforces, the warning and the timeout sounds), so the
caller goes on into [platform-queue] carrying the card. The caller's leg, adopted with
app="callcards" and app_ref=<CardCall id>, tells the rest: bridged (the agent answered: the talk
starts) and ended (billed). A process that was away bills on `started` what ended meanwhile.
"""

import logging

from callcards import pins
from callcards.services import dialin
from callcards.services.dialin import DialIn, Refusal, Verified
from queues.services import handoff
from telephony.agi import AgiCall
from telephony.events import CallBridged, CallEnded
from telephony.platform import AppContext, PbxApp, register

log = logging.getLogger(__name__)

TRIES = 3
DIGIT_TIMEOUT_MS = 5000
# `#` ends an entry; so does its timeout after the last key (a caller who keys no `#` waits that
# long). Not the exact length: an entry ended by its last digit leaves the caller's `#` to end the
# next one empty.
CARD_MAX_DIGITS = 20
PIN_MAX_DIGITS = 12
PIN_MIN_DIGITS = 4

# Asterisk core sounds (asterisk-core-sounds-<lang>), in the channel's language where they exist.
ASK_CARD = "beep"  # then the card id, `#` or its last digit ends it
ASK_PIN = "agent-pass"  # "Please enter your password followed by the pound key."
INVALID = "invalid"  # "I'm sorry, that's not valid. Please try again." (keys that are no card id or PIN)
INCORRECT = "vm-incorrect"  # "Login incorrect." (unknown card, wrong PIN)
NOT_IN_SERVICE = "ss-noservice"  # a card not ACTIVE/USED, or with no queue
EMPTY = ("vm-youhave", "vm-no", "queue-minutes")  # "You have no minutes."
IN_USE = "all-circuits-busy-now"  # the card is on another call
GOODBYE = "vm-goodbye"
# Played by the PBX itself, through the queues' hand-off (Bridge's L()): the card's warning minutes
# before the end, and at the end before the hang-up (the seed's minuteswarning and timeout_hangup).
WARNING_SOUND = "beep"
TIMEOUT_SOUND = "vm-goodbye"

REFUSAL_SOUNDS = {
    Refusal.NOT_DIALABLE: (NOT_IN_SERVICE,),
    Refusal.NO_QUEUE: (NOT_IN_SERVICE,),
    Refusal.EMPTY: EMPTY,
    Refusal.IN_USE: (IN_USE,),
    Refusal.LOCKED: (INCORRECT,),
}


def _card_call_id(app_ref: str) -> int | None:
    return int(app_ref) if app_ref.isdigit() else None


def _caller_number(call: AgiCall) -> str:
    number = call.headers.get("agi_callerid", "")
    return "".join(c for c in number if c.isdigit() or c == "+")[:40]


class CallCards(PbxApp):
    name = dialin.APP
    agi_scripts = {"callcard": "dial_in"}

    # -- the dial-in -----------------------------------------------------------------------------

    async def dial_in(self, ctx: AppContext, call: AgiCall):
        """[platform-agi] with PLATFORM_SCRIPT=callcard: card id and PIN, three tries, then the queue."""
        did = call.headers.get("agi_extension", "").lstrip("+")[:40]
        phone = _caller_number(call)
        await call.answer()
        language = await ctx.read(dialin.did_language, did=did)
        if language:
            await call.set_variable("CHANNEL(language)", language)
        for attempt in range(1, TRIES + 1):
            card_id = await call.get_data(ASK_CARD, DIGIT_TIMEOUT_MS, CARD_MAX_DIGITS)
            if not pins.card_id_valid(card_id):
                what = _what(card_id, "card id")
                log.info("callcards: try %d from %s on %s: %s", attempt, phone or "?", did, what)
                await call.stream_file(INVALID)
                continue
            pin = await call.get_data(ASK_PIN, DIGIT_TIMEOUT_MS, PIN_MAX_DIGITS)
            if not (pin.isdigit() and PIN_MIN_DIGITS <= len(pin) <= PIN_MAX_DIGITS):
                log.info("callcards: try %d from %s on %s: %s", attempt, phone or "?", did, _what(pin, "PIN"))
                await call.stream_file(INVALID)
                continue
            result = await ctx.read(dialin.dial_in_verify, card_id=card_id, pin=pin, phone_number=phone)
            if isinstance(result, Verified):
                result = await ctx.db(
                    dialin.dial_in_open,
                    server_id=ctx.server.pk,
                    uniqueid=call.uniqueid,
                    card_pk=result.card_pk,
                    phone_number=phone,
                    did=did,
                )
            else:
                await ctx.db(
                    dialin.dial_in_refused, card_id=card_id, reason=result.reason, phone_number=phone, did=did
                )
            if isinstance(result, DialIn):
                await self._hand_off(ctx, call, result)
                return
            if result.reason in (Refusal.UNKNOWN_CARD, Refusal.WRONG_PIN):
                await call.stream_file(INCORRECT)
                continue
            if result.language:
                await call.set_variable("CHANNEL(language)", result.language)
            for sound in REFUSAL_SOUNDS[result.reason]:
                await call.stream_file(sound)
            break
        await call.stream_file(GOODBYE)

    async def _hand_off(self, ctx: AppContext, call: AgiCall, card: DialIn):
        warning = card.warning_minutes * 60 if 0 < card.warning_minutes < card.balance_minutes else None
        try:
            variables = handoff.queue_variables(
                queue=card.queue,
                source_app=self.name,
                source_ref=str(card.card_call_id),
                talk_limit_seconds=card.balance_minutes * 60,
                warning_seconds=warning,
                warning_sound=WARNING_SOUND if warning else "",
                timeout_sound=TIMEOUT_SOUND,
            )
            await call.set_variable("CHANNEL(language)", card.language)
            for name, value in variables.items():
                await call.set_variable(name, value)
        except Exception:
            # The caller left (or the connection) before reaching the queue, or the queue's name
            # could not be carried: the card's call is over (its CallEnded may even have been
            # folded before the leg was adopted), and must not keep the card busy.
            await ctx.db(
                dialin.card_call_bill,
                card_call_id=card.card_call_id,
                end_reason="ended before the queue",
            )
            raise

    # -- the card's call -------------------------------------------------------------------------

    async def on_call_event(self, ctx: AppContext, event):
        card_call_id = _card_call_id(event.record.app_ref)
        if card_call_id is None or event.record.parent_id is not None:
            return
        if isinstance(event, CallBridged) and event.record.bridged_at is not None:
            await ctx.db(
                dialin.card_call_talking,
                card_call_id=card_call_id,
                agent_time=event.record.bridged_at,
                agent_uniqueid=event.other.uniqueid if event.other is not None else "",
            )
        elif isinstance(event, CallEnded):
            await ctx.db(dialin.card_call_bill, card_call_id=card_call_id)

    async def started(self, ctx: AppContext):
        """Bill the calls whose caller's leg ended while no process of this server was there."""
        for card_call_id in await ctx.read(dialin.card_calls_orphaned, server_id=ctx.server.pk):
            await ctx.db(dialin.card_call_bill, card_call_id=card_call_id)


def _what(keyed: str, what: str) -> str:
    """What was wrong with the keys, for the log, without the keys (a PIN's digits are never logged)."""
    if not keyed:
        return f"no {what} keyed before the timeout"
    if any(c not in "0123456789" for c in keyed):
        return f"{what} with keys other than digits ({len(keyed)} keys)"
    return f"a {what} of {len(keyed)} digits that is none"


register(CallCards())
