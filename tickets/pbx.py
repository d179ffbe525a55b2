"""Ticket lines in the pbx process: the caller's entry, each hop of the hunt, the end and the IM.

A DID routed to [platform-agi] with PLATFORM_SCRIPT=ticket runs the FastAGI script `ticket`: it
finds the line, answers, opens the TicketCall, adopts the caller's leg (app="tickets",
app_ref=<TicketCall id>) and sends the caller on to [platform-ticket] (announcement, confirm digit).
Before each hop that context runs `ticket-hop`, which closes the previous hop and gives the next
technician's dial string and ticket number (tickets.services.calls). The end is the context's
TicketEnd UserEvent, with the caller leg's CallEnded as a backstop (either may come first, and
CallEnded twice): the call is ended once, and the IM written then is sent with MessageSend.
"""

import logging

from telephony.agi import AgiCall
from telephony.ami import AmiConnectionLost, AmiError
from telephony.events import CallEnded
from telephony.platform import AppContext, PbxApp, register
from tickets.services import calls

log = logging.getLogger(__name__)

NO_SERVICE = "ss-noservice"
# The caller leg's CallEnded ends the call only if the dialplan's TicketEnd has not come this
# long after it (the UserEvent says more: the stage, the last DIALSTATUS).
END_GRACE_SECONDS = 3


def _caller_number(call: AgiCall) -> str:
    number = call.headers.get("agi_callerid", "")
    return "".join(c for c in number if c.isdigit() or c == "+")[:40]


def _call_id(text: str) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


class Tickets(PbxApp):
    name = calls.APP
    user_events = frozenset({"TicketEnd"})
    agi_scripts = {"ticket": "enter", "ticket-hop": "hop"}

    # -- FastAGI ---------------------------------------------------------------------------------

    async def enter(self, ctx: AppContext, call: AgiCall):
        """[platform-agi] with PLATFORM_SCRIPT=ticket: open the call, then [platform-ticket]."""
        did = call.headers.get("agi_extension", "").lstrip("+")[:20]
        caller = _caller_number(call)
        line_id = await ctx.read(calls.ticket_line_for, server_id=ctx.server.pk, did=did)
        if line_id is None:
            log.warning(
                "tickets: no active ticket line for %s on server %s (caller %s)", did, ctx.server, caller
            )
            await call.answer()
            await call.stream_file(NO_SERVICE)
            await call.hangup()
            return
        await call.answer()
        opened = await ctx.db(
            calls.ticket_call_open,
            server_id=ctx.server.pk,
            uniqueid=call.uniqueid,
            line_id=line_id,
            caller=caller,
            called=did,
        )
        try:
            for name, value in (
                ("TICKET_CALL", opened.call_id),
                ("TICKET_ANNOUNCEMENT", opened.announcement),
                ("TICKET_CONFIRM", opened.confirm_digit),
                ("TICKET_CONFIRM_WAIT", opened.confirm_seconds),
                ("PLATFORM_AGI_NEXT", "platform-ticket"),
            ):
                await call.set_variable(name, value)
        except Exception:
            # The caller left (or the connection) before [platform-ticket], whose hangup handler
            # would have reported the end; the leg's CallEnded may even have been folded before
            # the adoption. End the call now.
            await ctx.db(calls.ticket_call_end, call_id=opened.call_id, stage=calls.STAGE_ANNOUNCE)
            raise

    async def hop(self, ctx: AppContext, call: AgiCall):
        """[platform-ticket] before each hop: the previous one closed, the next one to ring."""
        call_id = _call_id(await call.get_variable("TICKET_CALL"))
        if call_id is None:
            raise ValueError(f"ticket-hop on {call.channel} without TICKET_CALL")
        dial_status = await call.get_variable("DIALSTATUS") or ""
        nxt = await ctx.db(
            calls.ticket_hop_next, call_id=call_id, uniqueid=call.uniqueid, dial_status=dial_status
        )
        if nxt.dial:
            await call.set_variable("TICKET", nxt.ticket)
            await call.set_variable("TICKET_RING", nxt.ring_seconds)
            if nxt.recording:
                await call.set_variable("TICKET_RECORDING", nxt.recording)
        await call.set_variable("TICKET_DIAL", nxt.dial)
        # Last: the dialplan takes a script cut short before this (TICKET_HOP still empty) for an
        # unreachable pbx process, never for "nobody left" and never as a reason to dial again.
        await call.set_variable("TICKET_HOP", nxt.sequence or "over")

    # -- the end ---------------------------------------------------------------------------------

    async def on_ami_event(self, ctx: AppContext, event: dict):
        call_id = _call_id(event.get("Call", ""))
        if event.get("UserEvent") != "TicketEnd" or call_id is None:
            return
        written = await ctx.db(
            calls.ticket_call_end,
            call_id=call_id,
            uniqueid=event.get("Uniqueid", "").strip(),
            stage=event.get("Stage", "").strip(),
            dial_status=event.get("DialStatus", "").strip(),
            ticket=event.get("Ticket", "").strip(),
        )
        await self._send_im(ctx, written.get("im"))

    async def on_call_event(self, ctx: AppContext, event):
        call_id = _call_id(event.record.app_ref)
        # The technicians' legs a Dial of the caller creates carry the call too: only the caller's counts.
        if call_id is None or event.record.parent_id is not None or not isinstance(event, CallEnded):
            return
        await ctx.call_later(END_GRACE_SECONDS, f"end:{call_id}", {"call_id": call_id})

    async def on_timer(self, ctx: AppContext, key: str, payload: dict):
        if key.startswith("end:"):
            written = await ctx.db(calls.ticket_call_end, call_id=payload["call_id"])
            await self._send_im(ctx, written.get("im"))

    async def started(self, ctx: AppContext):
        """End the calls whose caller left while no process of this server was there, and send the
        IMs a process left pending."""
        for call_id in await ctx.read(calls.ticket_calls_orphaned, server_id=ctx.server.pk):
            await ctx.db(calls.ticket_call_end, call_id=call_id)
        for message_id in await ctx.read(calls.ticket_ims_pending, server_id=ctx.server.pk):
            await self._send_im(ctx, message_id)

    async def _send_im(self, ctx: AppContext, message_id: int | None):
        if message_id is None:
            return
        im = await ctx.db(calls.ticket_im_claim, message_id=message_id)
        if im is None:
            return
        try:
            response = await ctx.pbx.message_send(to=im.to, body=im.body)
        except AmiError as exc:
            answer = exc.response.get("Message", "") or str(exc)
            log.warning("tickets: IM %s to %s refused: %s", im.message_id, im.to, answer)
            await ctx.db(calls.ticket_im_result, message_id=im.message_id, error=answer)
            return
        except AmiConnectionLost as exc:
            # Maybe sent, maybe not: tried again when the server is back (the claim lapses).
            log.warning("tickets: IM %s to %s not sent now: %s", im.message_id, im.to, exc)
            await ctx.db(calls.ticket_im_result, message_id=im.message_id, error=str(exc), retry=True)
            return
        first = response[0] if isinstance(response, list) else response
        await ctx.db(calls.ticket_im_result, message_id=im.message_id, answer=first.get("Message", ""))


register(Tickets())
