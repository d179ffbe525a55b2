"""The example app of telephony/asterisk/WRITING_APPS.md: wake-up calls.

A caller reaches `[platform-agi]` with PLATFORM_SCRIPT=wakeup and keys in how
many seconds from now to be called back; the app keeps that as a timer (so a
restart of the pbx process keeps it), rings the caller back when it is due,
and notes each call's outcome. The tests run it against pbxsim.
"""

from telephony.agi import AgiCall
from telephony.events import CallEnded, CallEvent, OriginateResult
from telephony.platform import AppContext, PbxApp


class WakeupCalls(PbxApp):
    name = "wakeup"
    agi_scripts = {"wakeup": "book"}

    def __init__(self):
        self.outcomes: dict[str, str] = {}  # app_ref -> Originate outcome
        self.ended: list[CallEvent] = []
        self.starts = 0

    async def started(self, ctx: AppContext):
        self.starts += 1

    async def book(self, ctx: AppContext, call: AgiCall):
        """FastAGI: answer, read the delay in seconds, keep it as a timer."""
        await call.answer()
        digits = await call.get_data("beep", 5000, 4)
        if not digits.isdigit():
            await call.stream_file("invalid")
            return
        number = call.headers.get("agi_callerid", "")
        await ctx.call_later(int(digits), f"wake:{call.uniqueid}", {"number": number})
        await call.stream_file("auth-thankyou")

    async def on_timer(self, ctx: AppContext, key: str, payload: dict):
        await ctx.pbx.originate(
            # One ChannelId per booking: a timer delivered twice still rings once.
            channel_id="wake-" + "".join(c if c.isalnum() else "-" for c in key.removeprefix("wake:")),
            number=payload["number"],
            context="platform-hold",
            variables={"PLATFORM_HOLD_MAX": "2"},
            app=self.name,
            app_ref=key,
        )

    async def on_call_event(self, ctx: AppContext, event: CallEvent):
        if isinstance(event, OriginateResult):
            self.outcomes[event.record.app_ref] = event.outcome
        elif isinstance(event, CallEnded):
            self.ended.append(event)
