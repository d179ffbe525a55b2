"""A card's call end to end on pbxsim through the real pbx process: the holder keys card and PIN,
waits in the card's queue (queues.services.handoff), talks to an agent until someone hangs up or the
PBX ends the talk at the card's limit, and the call is billed once (pbxsim stamps its events with
its own clock, on the time scale: a phone's "talks 30 s" is 30 s of billed talk)."""

import threading

import pytest

from callcards import pbx as card_pbx
from callcards.lifecycle import Status
from callcards.models import CardCall, DialInFailure
from queues.models import Member, Queue
from telephony.facade import PbxFacade
from telephony.models import CallRecord
from telephony.testing import wait_for
from tests.callcards.conftest import (
    HOLDER_HANGS_UP,
    HOLDER_HANGS_UP_SOON,
    HOLDER_STAYS,
    running,
)
from tests.queues.conftest import AGENT_STAYS, AGENT_TALKS_LONG
from tests.queues.factories import AgentFactory, TierFactory

pytestmark = pytest.mark.django_db(transaction=True)


def agent_for(queue, contact):
    agent = AgentFactory(company=queue.company, contact=contact, wrap_up_time=0)
    TierFactory(queue=queue, agent=agent)
    return agent


def billed(uniqueid, timeout=30):
    return wait_for(
        lambda: CardCall.objects.filter(uniqueid=uniqueid, state=CardCall.State.BILLED).first(),
        timeout=timeout,
        what=f"the billing of {uniqueid}",
    )


def test_a_good_card_waits_talks_until_the_agent_hangs_up_and_is_billed(
    card, queue, pbx, dial_in, agi_commands
):
    agent = agent_for(queue, AGENT_TALKS_LONG)  # answers after 1 s, talks 30 s, hangs up first
    uniqueid = dial_in(HOLDER_STAYS)
    member = wait_for(lambda: Member.objects.filter(session_uuid=uniqueid).first(), what="the queue")
    call = CardCall.objects.get(uniqueid=uniqueid)
    assert (member.source_app, member.source_ref) == ("callcards", str(call.pk))
    assert (member.talk_limit, member.talk_warning) == (600, 60)
    assert (member.limit_warning_file, member.limit_timeout_file) == (
        card_pbx.WARNING_SOUND,
        card_pbx.TIMEOUT_SOUND,
    )
    talking = wait_for(
        lambda: CardCall.objects.filter(pk=call.pk, state=CardCall.State.TALKING).first(), what="the talk"
    )
    assert talking.agent == agent.full_name
    call = billed(uniqueid)
    record = CallRecord.objects.get(uniqueid=uniqueid)
    assert (record.app, record.app_ref) == ("callcards", str(call.pk))
    assert call.agent_time == record.bridged_at
    assert 25 <= call.agent_talk_sec <= 30  # the agent talks 30 s after answering
    assert (call.agent_talk_min, call.balance_minutes_start, call.balance_minutes_end) == (1, 10, 9)
    assert (call.agent, call.end_reason, call.phone_number, call.inbound_did) == (
        agent.full_name,
        "hung up",
        HOLDER_STAYS,
        "5559000",
    )
    card.refresh_from_db()
    assert (card.balance_minutes, card.status) == (9, Status.USED)
    assert agi_commands.sounds(uniqueid) == [card_pbx.ASK_CARD, card_pbx.ASK_PIN]


def test_the_limit_ends_the_call_and_empties_the_card(card, queue, pbx, dial_in, sim):
    card.balance_minutes = 1  # 60 s of talk; the phones would stay 600 s
    card.save()
    agent_for(queue, AGENT_STAYS)
    uniqueid = dial_in(HOLDER_STAYS)
    call = billed(uniqueid, timeout=25)
    assert (call.agent_talk_sec, call.agent_talk_min, call.balance_minutes_end) == (60, 1, 0)
    assert call.end_reason == "time limit"
    card.refresh_from_db()
    assert (card.balance_minutes, card.status) == (0, Status.EMPTY)
    member = Member.objects.get(session_uuid=uniqueid)
    assert member.talk_limit == 60 and member.talk_warning is None
    assert f"hears the timeout file {card_pbx.TIMEOUT_SOUND}" in sim.log_text()


def test_the_caller_hanging_up_mid_call_is_billed_its_talk(card, queue, pbx, dial_in):
    agent_for(queue, AGENT_STAYS)
    uniqueid = dial_in(HOLDER_HANGS_UP)
    call = billed(uniqueid)
    # the holder hangs up 50 s after answering; it keyed 5 s and waited for the agent's answer
    assert 30 <= call.agent_talk_sec <= 45
    assert (call.agent_talk_min, call.balance_minutes_end, call.end_reason) == (1, 9, "hung up")


def test_the_caller_hanging_up_while_queued_costs_nothing(card, queue, pbx, dial_in):
    uniqueid = dial_in(HOLDER_HANGS_UP_SOON)  # no agent
    call = billed(uniqueid)
    assert call.agent_time is None
    assert (call.agent_talk_sec, call.agent_talk_min, call.balance_minutes_end) == (0, 0, 10)
    assert call.end_reason.startswith(("left the queue unanswered", "ended before an agent answered"))
    card.refresh_from_db()
    assert (card.balance_minutes, card.status) == (10, Status.ACTIVE)


def test_two_dial_ins_on_one_card_within_the_same_second(card, queue, pbx, dial_in, agi_commands):
    uniqueids = []
    threads = [threading.Thread(target=lambda: uniqueids.append(dial_in(HOLDER_STAYS))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = wait_for(lambda: DialInFailure.objects.filter(reason="in_use").first(), what="the refusal")
    let_in = CardCall.objects.get()
    other = next(u for u in uniqueids if u != let_in.uniqueid)
    over = CallRecord.objects.filter(uniqueid=other, state="ended")
    wait_for(over.exists, what="the refused call's end")
    assert agi_commands.sounds(other)[-2:] == [card_pbx.IN_USE, card_pbx.GOODBYE]
    assert refused.phone_number == HOLDER_STAYS
    assert Member.objects.filter(session_uuid=let_in.uniqueid).exists()
    assert not Member.objects.filter(session_uuid=other).exists()


def test_a_restart_of_the_pbx_process_mid_call_loses_no_talk(card, queue, server, dial_in, agi_commands):
    """The process goes away while the card talks and is back before the end: the events that come
    after bill the call."""
    agent_for(queue, AGENT_STAYS)
    process = running(server, agi_commands)
    try:
        uniqueid = dial_in(HOLDER_HANGS_UP)
        wait_for(
            lambda: CardCall.objects.filter(uniqueid=uniqueid, state=CardCall.State.TALKING).exists(),
            what="the talk",
        )
    finally:
        process.__exit__(None, None, None)
    process = running(server, agi_commands)
    try:
        call = billed(uniqueid)
    finally:
        process.__exit__(None, None, None)
    record = CallRecord.objects.get(uniqueid=uniqueid)
    assert 30 <= call.agent_talk_sec <= 45 and call.agent_talk_min == 1
    assert call.end_time == record.ended_at
    card.refresh_from_db()
    assert card.balance_minutes == 9


def test_a_call_that_ended_while_the_pbx_process_was_away_is_billed_on_its_return(
    card, queue, server, dial_in, agi_commands, sim
):
    agent_for(queue, AGENT_TALKS_LONG)  # the agent hangs up 30 s after answering: 3 s here
    process = running(server, agi_commands)
    try:
        uniqueid = dial_in(HOLDER_STAYS)
        wait_for(
            lambda: CardCall.objects.filter(uniqueid=uniqueid, state=CardCall.State.TALKING).exists(),
            what="the talk",
        )
    finally:
        process.__exit__(None, None, None)
    facade = PbxFacade()
    try:
        wait_for(
            lambda: uniqueid not in {c.get("Uniqueid") for c in facade.live_channels(server=server)},
            timeout=20,
            what="the call over while the process is away",
        )
    finally:
        facade.close()
    assert CardCall.objects.get(uniqueid=uniqueid).state == CardCall.State.TALKING
    process = running(server, agi_commands)
    try:
        call = billed(uniqueid)
    finally:
        process.__exit__(None, None, None)
    # Asterisk's own end was lost with the process: the reconcile's (the time it found the call
    # gone) ends the talk, capped at the card's limit.
    assert call.agent_talk_sec <= 600 and call.balance_minutes_end == 10 - call.agent_talk_min
    card.refresh_from_db()
    assert card.balance_minutes == call.balance_minutes_end


def test_a_hand_off_that_cannot_be_made_closes_the_call_and_frees_the_card(card, queue, pbx, dial_in, caplog):
    Queue.objects.filter(pk=queue.pk).update(name="no way")  # a name the dialplan could not carry
    uniqueid = dial_in(HOLDER_STAYS)
    call = billed(uniqueid)
    assert (call.agent_talk_min, call.balance_minutes_end) == (0, 10)
    assert call.end_reason == "ended before the queue"
    over = CallRecord.objects.filter(uniqueid=uniqueid, state="ended")
    wait_for(over.exists, what="the caller's fallback (ss-noservice) and hang-up")
    assert "FastAGI script callcard failed" in caplog.text
    card.refresh_from_db()
    assert (card.balance_minutes, card.status) == (10, Status.ACTIVE)
