"""Click2call in the pbx process: an attempt's outcome, decided from its legs.

The first leg is originated by a Celery task (click2call.services.dialing) into
[platform-click2call]. A first party that does not answer is known from the
OriginateResult, or from the leg's end when that response was lost (the AMI
dropped and reconcile closed the leg); once it answered, the context's hangup
handler reports how far the call got with UserEvent C2CEnd (attempt, stage,
DIALSTATUS). A first leg that ends without that report still ends its attempt.
"""

from click2call.services import dialing
from telephony.events import CallEnded, OriginateResult
from telephony.platform import AppContext, PbxApp, register

REF_PREFIX = "attempt:"


def _attempt_id(app_ref: str) -> int | None:
    text = app_ref.removeprefix(REF_PREFIX)
    return int(text) if app_ref.startswith(REF_PREFIX) and text.isdigit() else None


class ClickToCall(PbxApp):
    name = "click2call"
    user_events = frozenset({"C2CEnd"})

    async def on_call_event(self, ctx: AppContext, event):
        attempt_id = _attempt_id(event.record.app_ref)
        # Only the originated leg (its Uniqueid is the attempt's ChannelId) speaks for the attempt;
        # the second party's legs inherit app and app_ref but have no parent-less record.
        if attempt_id is None or event.record.parent_id is not None:
            return
        if isinstance(event, OriginateResult) and event.outcome != "answered":
            await ctx.db(dialing.attempt_unanswered, attempt_id=attempt_id, outcome=event.outcome)
        elif isinstance(event, CallEnded):
            # The OriginateResult or the C2CEnd came before this (a raw event is not folded
            # first): this only ends an attempt whose response or report was lost.
            await ctx.db(
                dialing.attempt_first_leg_ended,
                attempt_id=attempt_id,
                answered=event.record.answered_at is not None,
                disposition=event.record.disposition,
            )

    async def on_ami_event(self, ctx: AppContext, event: dict):
        attempt = event.get("Attempt", "").strip()
        if not attempt.isdigit():
            return
        await ctx.db(
            dialing.attempt_reported,
            attempt_id=int(attempt),
            stage=event.get("Stage", "").strip(),
            dial_status=event.get("DialStatus", "").strip(),
        )


register(ClickToCall())
