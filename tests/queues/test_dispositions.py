"""An answered call's disposition: set after the call through offer_disposition_set, announced once
committed with queues.signals.queue_call_disposed; on the agent's page, with its access rules and
hostile input."""

import datetime as dt
import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from queues.models import Member, Offer
from queues.services.dispositions import DispositionRefused, offer_disposition_set
from queues.signals import queue_call_disposed
from tests.factories import UserFactory
from tests.hostile import HIDDEN_CHARACTERS, HOSTILE_STRINGS
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory

pytestmark = pytest.mark.django_db


def offer_of(agent, *, ended=True, result=Offer.Result.ANSWERED, **member):
    now = timezone.now()
    caller = MemberFactory(queue=QueueFactory(company=agent.company), state=Member.State.ANSWERED, **member)
    return Offer.objects.create(
        queue=caller.queue,
        member=caller,
        agent=agent,
        channel_id=f"agent-leg-{caller.pk}",
        offered_at=now - dt.timedelta(minutes=5),
        answered_at=now - dt.timedelta(minutes=5) if result == Offer.Result.ANSWERED else None,
        ended_at=now - dt.timedelta(minutes=1) if ended else None,
        result=result,
        talk_time=240 if ended else 0,
    )


@pytest.fixture
def agent(company):
    return AgentFactory(company=company, name="1000", user=UserFactory(company=company))


@pytest.fixture
def heard():
    """What receivers of queue_call_disposed were told."""
    calls = []

    def receiver(sender, **kwargs):
        calls.append({"sender": sender, **{k: v for k, v in kwargs.items() if k != "signal"}})

    queue_call_disposed.connect(receiver, dispatch_uid="test-heard")
    yield calls
    queue_call_disposed.disconnect(dispatch_uid="test-heard")


# The service and its signal


def test_the_disposition_is_saved_and_announced_once_committed(
    agent, heard, django_capture_on_commit_callbacks
):
    offer = offer_of(agent, source_app="callcards", source_ref="42")

    with django_capture_on_commit_callbacks() as callbacks:
        offer_disposition_set(offer=offer, disposition="  SALE ", user=agent.user)
        assert heard == []  # nothing said before the commit
    for callback in callbacks:
        callback()

    offer.refresh_from_db()
    assert offer.disposition == "SALE" and offer.disposition_by == agent.user.username
    assert abs((timezone.now() - offer.disposition_at).total_seconds()) < 60
    assert heard == [
        {
            "sender": Offer,
            "source_app": "callcards",
            "source_ref": "42",
            "agent": f"1000@{agent.company.slug}",
            "disposition": "SALE",
            "at": offer.disposition_at,
            "company_id": agent.company_id,
            "offer_id": offer.pk,
        }
    ]


def test_a_rolled_back_disposition_is_never_announced(agent, heard, django_capture_on_commit_callbacks):
    offer = offer_of(agent)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        offer_disposition_set(offer=offer, disposition="SALE", user=agent.user)
        raise RuntimeError("the request failed after")
    assert heard == []
    offer.refresh_from_db()
    assert offer.disposition == ""


def test_a_correction_replaces_the_disposition_and_is_announced_again(
    agent, heard, django_capture_on_commit_callbacks
):
    offer = offer_of(agent)
    supervisor = UserFactory(company=agent.company)
    with django_capture_on_commit_callbacks(execute=True):
        offer_disposition_set(offer=offer, disposition="SALE", user=agent.user)
    with django_capture_on_commit_callbacks(execute=True):
        offer_disposition_set(offer=offer, disposition="Call back", user=supervisor)
    offer.refresh_from_db()
    assert (offer.disposition, offer.disposition_by) == ("Call back", supervisor.username)
    assert [h["disposition"] for h in heard] == ["SALE", "Call back"]
    assert heard[0]["source_app"] == "" and heard[0]["source_ref"] == ""  # a caller of the queue's own


@pytest.mark.parametrize(
    "ended, result, reason",
    [
        (False, Offer.Result.ANSWERED, "after the call"),
        (False, Offer.Result.RINGING, "answered"),
        (True, Offer.Result.NO_ANSWER, "answered"),
        (True, Offer.Result.CANCELED, "answered"),
    ],
)
def test_only_an_answered_call_that_ended_takes_one(agent, heard, ended, result, reason):
    offer = offer_of(agent, ended=ended, result=result)
    with pytest.raises(DispositionRefused, match=reason):
        offer_disposition_set(offer=offer, disposition="SALE", user=agent.user)
    offer.refresh_from_db()
    assert offer.disposition == "" and heard == []


def test_another_companys_user_cannot_set_one(agent):
    offer = offer_of(agent)
    with pytest.raises(DispositionRefused, match="another company"):
        offer_disposition_set(offer=offer, disposition="SALE", user=UserFactory())


@pytest.mark.parametrize("disposition", ["", "   ", "=1+1", "x" * 41, "a\r\nb", "\u202eevil"])
def test_a_disposition_that_is_not_one_is_refused(agent, disposition):
    offer = offer_of(agent)
    with pytest.raises(ValidationError):
        offer_disposition_set(offer=offer, disposition=disposition, user=agent.user)
    offer.refresh_from_db()
    assert offer.disposition == ""


def test_a_failing_receiver_is_logged_and_stops_neither_the_others_nor_the_save(
    agent, heard, caplog, django_capture_on_commit_callbacks
):
    def broken(sender, **kwargs):
        raise LookupError("no such ticket")

    queue_call_disposed.connect(broken, dispatch_uid="test-broken")
    try:
        with django_capture_on_commit_callbacks(execute=True), caplog.at_level(logging.ERROR):
            offer_disposition_set(
                offer=offer_of(agent, source_app="tickets", source_ref="T-9"),
                disposition="Done",
                user=agent.user,
            )
    finally:
        queue_call_disposed.disconnect(dispatch_uid="test-broken")
    assert [h["disposition"] for h in heard] == ["Done"]
    assert "broken failed on the disposition of offer" in caplog.text and "tickets T-9" in caplog.text


# The agent's page


def url(name, company, **kwargs):
    return reverse(f"queues:{name}", kwargs={"company_slug": company.slug, **kwargs})


def dispose(client, offer, disposition):
    agent = offer.agent
    return client.post(
        url("agent-disposition", agent.company, pk=agent.pk, offer_pk=offer.pk), {"disposition": disposition}
    )


def test_the_agent_sees_its_last_answered_calls_and_sets_a_disposition(client, agent):
    done = offer_of(agent, cid_number="5550142", cid_name="Ada <b>")
    on_the_call = offer_of(agent, ended=False, cid_number="5550143")
    offer_of(agent, result=Offer.Result.NO_ANSWER, cid_number="5550144")  # never answered: not listed
    client.force_login(agent.user)

    page = client.get(url("agent", agent.company, pk=agent.pk)).content.decode()
    calls = page.split('id="calls-heading"')[1]
    assert "5550142" in calls and "Ada &lt;b&gt;" in calls and "4:00" in calls
    assert "5550143" in calls and "5550144" not in calls
    assert calls.count('name="disposition"') == 1  # the call still on takes one after
    assert url("agent-disposition", agent.company, pk=agent.pk, offer_pk=done.pk) in calls
    assert url("agent-disposition", agent.company, pk=agent.pk, offer_pk=on_the_call.pk) not in calls

    response = dispose(client, done, "Rückruf")

    assert response.status_code == 302 and response["Location"] == url("agent", agent.company, pk=agent.pk)
    done.refresh_from_db()
    assert done.disposition == "Rückruf"
    page = client.get(response["Location"]).content.decode()
    assert "Disposition Rückruf recorded for 5550142." in page
    assert 'value="Rückruf"' in page and f"by {agent.user.username}" in page


def test_an_agent_disposes_only_its_own_calls_and_a_supervisor_any(client, company, agent):
    offer = offer_of(agent)
    colleague = AgentFactory(company=company, user=UserFactory(company=company))
    client.force_login(colleague.user)
    assert dispose(client, offer, "SALE").status_code == 403

    client.force_login(UserFactory(company=company))  # a supervisor: no agent of its own
    assert dispose(client, offer, "SALE").status_code == 302
    offer.refresh_from_db()
    assert offer.disposition == "SALE"


def test_another_companys_call_is_a_404(client, company, agent):
    offer = offer_of(agent)
    stranger = UserFactory()
    client.force_login(stranger)
    assert dispose(client, offer, "SALE").status_code == 404
    # Nor through its own company's address: the agent is not its company's.
    address = url("agent-disposition", stranger.company, pk=agent.pk, offer_pk=offer.pk)
    assert client.post(address, {"disposition": "SALE"}).status_code == 404
    # Nor another agent's call under the user's own agent.
    client.force_login(agent.user)
    other = offer_of(AgentFactory(company=company))
    address = url("agent-disposition", company, pk=agent.pk, offer_pk=other.pk)
    assert client.post(address, {"disposition": "SALE"}).status_code == 404
    for call in (offer, other):
        call.refresh_from_db()
        assert call.disposition == ""


def test_a_call_still_on_or_never_answered_is_a_400_saying_why(client, agent):
    client.force_login(agent.user)
    on = offer_of(agent, ended=False)
    response = dispose(client, on, "SALE")
    assert response.status_code == 400
    assert "The disposition is set after the call: this one is still on." in response.content.decode()

    ringing = offer_of(agent, ended=False, result=Offer.Result.RINGING)
    response = dispose(client, ringing, "SALE")
    assert response.status_code == 400
    assert "Only a call the agent answered takes a disposition." in response.content.decode()
    assert not Offer.objects.exclude(disposition="").exists()


ACCEPTED = {
    "Arabic-Indic digits": "٥٥٥١٠٠١",
    "German": "Rückruf",
    "Chinese": "回拨",
    "commas and quotes": '555,1001,"x"',
    "emoji after a word": "OK 👍",
}
REFUSED = {
    **{name: value for name, value in HOSTILE_STRINGS.items() if name not in ACCEPTED},
    **HIDDEN_CHARACTERS,
    "emoji first": "👍 OK",
    "41 characters": "x" * 41,
    "blank": "   ",
}


@pytest.mark.parametrize("value", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_unicode_dispositions_are_kept_as_typed(client, agent, value):
    offer = offer_of(agent)
    client.force_login(agent.user)
    assert dispose(client, offer, value).status_code == 302
    offer.refresh_from_db()
    assert offer.disposition == value


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_hostile_dispositions_are_a_form_error_never_stored(client, agent, value):
    offer = offer_of(agent)
    client.force_login(agent.user)

    response = dispose(client, offer, value)

    assert response.status_code == 400
    body = response.content.decode()
    row = body.split(f'data-offer="{offer.pk}"')[1].split("</tr>")[0]
    assert 'aria-invalid="true"' in row and 'class="errorlist"' in row
    offer.refresh_from_db()
    assert offer.disposition == "" and offer.disposition_at is None


def test_the_disposition_form_needs_its_csrf_token(agent):
    offer = offer_of(agent)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent.user)
    assert dispose(client, offer, "SALE").status_code == 403
    offer.refresh_from_db()
    assert offer.disposition == ""


def test_the_disposition_is_a_post(client, agent):
    offer = offer_of(agent)
    client.force_login(agent.user)
    address = url("agent-disposition", agent.company, pk=agent.pk, offer_pk=offer.pk)
    assert client.get(address, {"disposition": "SALE"}).status_code == 405


def test_the_companys_most_used_dispositions_are_suggested_never_another_companys(client, company, agent):
    colleague = AgentFactory(company=company)
    for disposition in ("SALE", "SALE", "Call back"):
        Offer.objects.filter(pk=offer_of(colleague).pk).update(disposition=disposition)
    Offer.objects.filter(pk=offer_of(AgentFactory()).pk).update(disposition="Their secret")
    month_ago = timezone.now() - dt.timedelta(days=31)
    Offer.objects.filter(pk=offer_of(colleague).pk).update(disposition="Stale", offered_at=month_ago)
    offer_of(agent)
    client.force_login(agent.user)

    page = client.get(url("agent", company, pk=agent.pk)).content.decode()

    datalist = page.split('<datalist id="dispositions">')[1].split("</datalist>")[0]
    assert datalist == '<option value="SALE"><option value="Call back">'
    assert 'list="dispositions"' in page
