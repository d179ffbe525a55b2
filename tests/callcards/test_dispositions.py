"""A card call's disposition: the agent sets it on the queues' agent page after the call, queues
announces it (queues.signals.queue_call_disposed) and callcards records it on the CardCall whose id
the dial-in gave the queue as the caller's source_ref."""

import datetime as dt

import pytest
from django.utils import timezone

from callcards.models import CardCall
from queues.models import Member, Offer
from queues.services.dispositions import offer_disposition_set
from queues.signals import queue_call_disposed
from tests.callcards.factories import CardCallFactory
from tests.factories import UserFactory
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory

pytestmark = pytest.mark.django_db


def answered(company, *, source_app="callcards", source_ref=""):
    """An agent's answered call that has ended, for a caller sent by `source_app`."""
    agent = AgentFactory(company=company, name="1000", user=UserFactory(company=company))
    caller = MemberFactory(
        queue=QueueFactory(company=company),
        state=Member.State.ANSWERED,
        source_app=source_app,
        source_ref=source_ref,
    )
    now = timezone.now()
    return Offer.objects.create(
        queue=caller.queue, member=caller, agent=agent, channel_id=f"agent-{caller.pk}",
        offered_at=now - dt.timedelta(minutes=3), answered_at=now - dt.timedelta(minutes=3),
        ended_at=now, result=Offer.Result.ANSWERED, talk_time=180,
    )  # fmt: skip


def dispose(offer, disposition, capture):
    with capture(execute=True):
        return offer_disposition_set(offer=offer, disposition=disposition, user=offer.agent.user)


def test_the_agents_disposition_lands_on_the_card_call(django_capture_on_commit_callbacks):
    call = CardCallFactory()
    offer = answered(call.company, source_ref=str(call.pk))

    offer = dispose(offer, "SALE", django_capture_on_commit_callbacks)

    call.refresh_from_db()
    assert (call.agent_dispo, call.dispo_time) == ("SALE", offer.disposition_at)
    assert call.agent == f"1000@{call.company.slug}"  # the dial-in had not written it


def test_a_correction_replaces_it_and_the_agent_the_dialin_wrote_stays(django_capture_on_commit_callbacks):
    call = CardCallFactory(agent="1001@elsewhere", agent_talk_sec=61)
    offer = answered(call.company, source_ref=str(call.pk))

    dispose(offer, "SALE", django_capture_on_commit_callbacks)
    offer = dispose(offer, "Call back", django_capture_on_commit_callbacks)

    call.refresh_from_db()
    assert (call.agent_dispo, call.dispo_time, call.agent) == (
        "Call back",
        offer.disposition_at,
        "1001@elsewhere",
    )
    assert (call.balance_minutes_end, call.agent_talk_min) == (8, 2)  # the billing is not touched


@pytest.mark.parametrize("source_app", ["", "tickets", "Callcards"])
def test_another_apps_call_changes_no_card_call(source_app, django_capture_on_commit_callbacks):
    call = CardCallFactory()
    dispose(
        answered(call.company, source_app=source_app, source_ref=str(call.pk)),
        "SALE",
        django_capture_on_commit_callbacks,
    )
    call.refresh_from_db()
    assert call.agent_dispo == "" and call.dispo_time is None


@pytest.mark.parametrize("source_ref", ["", "12abc", "١٢", "-1", "1.0", " 1", "9" * 30])
def test_a_reference_that_is_no_call_id_is_ignored_with_a_log_line(
    source_ref, caplog, django_capture_on_commit_callbacks
):
    call = CardCallFactory()
    dispose(answered(call.company, source_ref=source_ref), "SALE", django_capture_on_commit_callbacks)
    call.refresh_from_db()
    assert call.agent_dispo == ""
    assert "card call" in caplog.text  # said, never raised


def test_another_companys_card_call_is_never_touched(django_capture_on_commit_callbacks, caplog):
    theirs = CardCallFactory()
    ours = answered(CardCallFactory().company, source_ref=str(theirs.pk))

    dispose(ours, "SALE", django_capture_on_commit_callbacks)

    theirs.refresh_from_db()
    assert theirs.agent_dispo == "" and theirs.dispo_time is None
    assert (
        f"a disposition for card call {theirs.pk}, no call of company {ours.queue.company_id}" in caplog.text
    )


def test_the_receiver_alone_records_by_source_ref():
    """The signal as any sender would send it, without the queues' service."""
    call = CardCallFactory()
    at = timezone.now()
    queue_call_disposed.send(
        sender=Offer, source_app="callcards", source_ref=str(call.pk), agent="2000@acme",
        disposition="Rückruf", at=at, company_id=call.company_id, offer_id=0,
    )  # fmt: skip
    call.refresh_from_db()
    assert (call.agent_dispo, call.dispo_time, call.agent) == ("Rückruf", at, "2000@acme")
    assert CardCall.objects.exclude(pk=call.pk).filter(agent_dispo="Rückruf").count() == 0
