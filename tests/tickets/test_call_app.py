"""The tickets app's hooks with a stand-in context: which event ends a call, once, and what becomes
of the IM with each answer MessageSend can give (the pbxsim tests run the real thing)."""

import asyncio
import dataclasses

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from telephony.ami import AmiConnectionLost, AmiError
from telephony.events import CallEnded, CallSnapshot
from telephony.models import CallRecord
from tests.tickets.factories import TechnicianFactory, TicketLineFactory
from tickets.models import TicketCall, TicketMessage
from tickets.pbx import END_GRACE_SECONDS, Tickets
from tickets.services import calls

pytestmark = pytest.mark.django_db(transaction=True)


class FakePbx:
    def __init__(self, answer):
        self.answer = answer
        self.sent = []

    async def message_send(self, *, to, body, sender=""):
        self.sent.append((to, body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakeContext:
    def __init__(self, server, answer):
        self.server = server
        self.pbx = FakePbx(answer)
        self.timers = {}

    async def db(self, function, **kwargs):
        return await sync_to_async(function, thread_sensitive=False)(**kwargs)

    read = db

    async def call_later(self, seconds, key, payload=None):
        self.timers[key] = (seconds, payload)


SENT = {"Response": "Success", "Message": "Message successfully sent"}


@pytest.fixture
def hunting(settings, tmp_path):
    """A call on its first hop: (call, the caller leg's snapshot)."""
    settings.TICKETS_RECORDING_DIR = tmp_path
    line = TicketLineFactory()
    TechnicianFactory(line=line, internal="5552201", mobile="")
    opened = calls.ticket_call_open(
        server_id=line.server_id, uniqueid="1765000000.1", line_id=line.pk, caller="0347", called=line.number
    )
    calls.ticket_hop_next(call_id=opened.call_id, uniqueid="1765000000.1")
    record = CallRecord.objects.get(uniqueid="1765000000.1")
    CallRecord.objects.filter(pk=record.pk).update(state="ended", ended_at=timezone.now())
    record.refresh_from_db()
    return TicketCall.objects.get(pk=opened.call_id), CallSnapshot.of(record)


def ticket_end(call, **headers):
    return {
        "Event": "UserEvent",
        "UserEvent": "TicketEnd",
        "Uniqueid": call.uniqueid,
        "Call": str(call.pk),
        "Stage": "hunt",
        "DialStatus": "CANCEL",
    } | headers


def test_the_user_event_ends_the_call_and_sends_the_im_once(hunting):
    call, snapshot = hunting
    app, ctx = Tickets(), FakeContext(call.line.server, SENT)
    asyncio.run(app.on_ami_event(ctx, ticket_end(call)))
    asyncio.run(app.on_call_event(ctx, CallEnded(record=snapshot)))  # then the leg's end, twice
    asyncio.run(app.on_call_event(ctx, CallEnded(record=snapshot)))
    assert ctx.timers == {f"end:{call.pk}": (END_GRACE_SECONDS, {"call_id": call.pk})}
    asyncio.run(app.on_timer(ctx, f"end:{call.pk}", {"call_id": call.pk}))
    call.refresh_from_db()
    hop = call.hops.get()
    assert (call.state, call.note) == (
        "abandoned",
        f"the caller hung up while {hop.technician_name} was rung",
    )
    assert (hop.last, hop.dial_status) == (True, "CANCEL")
    im = TicketMessage.objects.get(call=call)
    assert ctx.pbx.sent == [("pjsip:5552201", im.body)]
    assert (im.state, im.delivery_status, im.attempts) == ("sent", "Message successfully sent", 1)


def test_the_call_ended_first_waits_for_the_user_event(hunting):
    call, snapshot = hunting
    app, ctx = Tickets(), FakeContext(call.line.server, SENT)
    asyncio.run(app.on_call_event(ctx, CallEnded(record=snapshot)))
    call.refresh_from_db()
    assert call.state == "hunting"  # not ended on the CallEnded alone
    asyncio.run(app.on_ami_event(ctx, ticket_end(call)))
    asyncio.run(app.on_timer(ctx, f"end:{call.pk}", {"call_id": call.pk}))
    call.refresh_from_db()
    assert call.state == "abandoned" and len(ctx.pbx.sent) == 1


def test_the_call_ended_alone_ends_the_call_after_the_grace(hunting):
    call, snapshot = hunting
    app, ctx = Tickets(), FakeContext(call.line.server, SENT)
    asyncio.run(app.on_call_event(ctx, CallEnded(record=snapshot)))
    asyncio.run(app.on_timer(ctx, f"end:{call.pk}", {"call_id": call.pk}))
    call.refresh_from_db()
    assert call.state == "failed" and call.ended_at == snapshot.ended_at
    assert len(ctx.pbx.sent) == 1


def test_a_technicians_leg_ending_is_not_the_calls_end(hunting):
    call, snapshot = hunting
    app, ctx = Tickets(), FakeContext(call.line.server, SENT)
    leg = dataclasses.replace(snapshot, id=snapshot.id + 1000, uniqueid="1765000000.2", parent_id=snapshot.id)
    asyncio.run(app.on_call_event(ctx, CallEnded(record=leg)))
    assert ctx.timers == {}


def test_a_user_event_of_another_channel_ends_nothing(hunting):
    call, _ = hunting
    app, ctx = Tickets(), FakeContext(call.line.server, SENT)
    asyncio.run(app.on_ami_event(ctx, ticket_end(call, Uniqueid="1765000000.9")))
    call.refresh_from_db()
    assert call.state == "hunting" and ctx.pbx.sent == []


def test_message_send_refused_keeps_asterisks_answer(hunting):
    call, _ = hunting
    refused = AmiError("MessageSend", {"Response": "Error", "Message": "Message technology not found."})
    app, ctx = Tickets(), FakeContext(call.line.server, refused)
    asyncio.run(app.on_ami_event(ctx, ticket_end(call)))
    im = TicketMessage.objects.get(call=call)
    assert (im.state, im.last_error) == ("failed", "Message technology not found.")


def test_message_send_without_the_pbx_stays_pending_for_the_next_start(hunting):
    call, _ = hunting
    app, ctx = Tickets(), FakeContext(call.line.server, AmiConnectionLost("down"))
    asyncio.run(app.on_ami_event(ctx, ticket_end(call)))
    im = TicketMessage.objects.get(call=call)
    assert (im.state, im.next_try_at, im.last_error) == ("pending", None, "down")
    ctx.pbx.answer = SENT
    asyncio.run(app.started(ctx))
    im.refresh_from_db()
    assert im.state == "sent" and im.attempts == 2 and len(ctx.pbx.sent) == 2
