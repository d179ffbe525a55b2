"""Two-leg dialing end to end on pbxsim, through the real pbx process: the first party originated
by the Celery task's service into [platform-click2call], the message, the second party, the
outcome decided by click2call.pbx from the legs, retries, call backs, a task that died."""

import asyncio
import datetime as dt

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from click2call.models import CallAttempt, CallRequest, Campaign, CampaignOperator, Operator
from click2call.services import dialing
from click2call.services.rating import NumberRefused
from click2call.services.requests import call_request_create
from click2call.tasks import dial_attempt, dial_callback, dial_due
from pbxsim.harness import free_port
from telephony import facade as telephony_facade
from telephony.ami import AmiNotConnected
from telephony.facade import facade
from telephony.models import CallRecord
from telephony.services import calls
from telephony.services import originate as originate_services
from telephony.services.originate import OriginateAlreadyClaimed
from telephony.testing import wait_for
from tests.click2call.conftest import (
    OPERATOR_BUSY,
    OPERATOR_NEVER_ANSWERS,
    OPERATOR_STAYS,
    OPERATOR_TALKS,
    VISITOR_BUSY,
    VISITOR_HANGS_UP_IN_MESSAGE,
    VISITOR_TALKS,
    VISITOR_WAITS,
)
from tests.click2call.factories import CampaignFactory
from tests.factories import UserFactory
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def request_for(campaign, number):
    request, created = call_request_create(campaign=campaign, number=number, consent=True)
    assert created
    return request


def settled(request, timeout=15):
    """The request once it left DIALING; its attempts' legs ended."""
    wait_for(
        lambda: CallRequest.objects.filter(pk=request.pk).exclude(status="DIALING").exists(),
        timeout=timeout,
        what="the attempt's outcome",
    )
    request.refresh_from_db()
    return request


def legs(attempt):
    records = CallRecord.objects.filter(app="click2call", app_ref=attempt.app_ref)
    return list(records.order_by("started_at", "id"))  # ids follow the fold, not the dialing


def make_due(request):
    CallRequest.objects.filter(pk=request.pk).update(next_try_at=timezone.now())


def test_a_banner_request_rings_the_visitor_plays_the_message_and_puts_the_company_through(
    make_campaign, pbx
):
    request = request_for(make_campaign(), VISITOR_WAITS)
    dial_attempt(request.pk)
    assert settled(request).status == "COMPLETED"
    attempt = request.attempts.get()
    assert (attempt.seq, attempt.kind, attempt.status, attempt.detail) == (1, "auto", "COMPLETED", "bridged")
    assert attempt.channel_id == f"c2c-{request.pk}-1"
    wait_for(lambda: all(leg.state == "ended" for leg in legs(attempt)) and len(legs(attempt)) == 2)
    visitor, operator = legs(attempt)
    assert visitor.uniqueid == attempt.channel_id and visitor.callee == VISITOR_WAITS
    assert operator.parent_id == visitor.id
    assert visitor.disposition == operator.disposition == "ANSWERED"
    assert request.tries == 1 and request.finished_at is not None


def test_a_busy_visitor_is_tried_again_after_the_pause_then_fails_calling_to_user(make_campaign, pbx):
    request = request_for(make_campaign(redial_count=2, redial_pause=10), VISITOR_BUSY)
    dial_attempt(request.pk)
    for tries in (1, 2):
        request = settled(request)
        assert (request.status, request.tries) == ("PENDING", tries)
        assert request.next_try_at > timezone.now()  # not before the pause
        assert dial_attempt(request.pk) is None and request.attempts.count() == tries
        make_due(request)
        dial_attempt(request.pk)
    request = settled(request)
    assert (request.status, request.tries) == ("FAILED_USER", 3)
    outcomes = list(request.attempts.values_list("status", "detail"))
    assert outcomes == [("FAILED_USER", "first party: busy")] * 3
    assert request.next_try_at is None


def test_the_due_sweep_queues_a_try_whose_task_was_lost(make_campaign, pbx, monkeypatch):
    request = request_for(make_campaign(redial_count=1, redial_pause=10), VISITOR_BUSY)
    dial_attempt(request.pk)
    assert settled(request).status == "PENDING"
    queued = []
    monkeypatch.setattr(dial_attempt, "delay", queued.append)
    dial_due()
    assert queued == []  # the pause is not over
    make_due(request)
    dial_due()
    assert queued == [request.pk]


def test_a_company_that_does_not_answer_fails_then_its_call_back_completes(make_campaign, pbx):
    campaign = make_campaign(operators=[OPERATOR_NEVER_ANSWERS])
    request = request_for(campaign, VISITOR_WAITS)
    dial_attempt(request.pk)
    request = settled(request)
    assert request.status == "FAILED_COMPANY"
    assert request.attempts.get().detail == "dialing: NOANSWER"

    Operator.objects.filter(company=campaign.company).update(number=OPERATOR_STAYS)
    user = UserFactory(company=campaign.company)
    attempt = dialing.request_callback(request=request, user=user)
    assert (attempt.seq, attempt.kind, attempt.first_party) == (2, "callback", "company")
    assert attempt.requested_by == user
    with pytest.raises(dialing.CallbackRefused):  # one call back at a time
        dialing.request_callback(request=request, user=user)
    dial_callback(attempt.pk)
    dial_callback(attempt.pk)  # redelivered (acks_late): the operators ring once
    assert settled(request).status == "COMPLETED"
    attempt.refresh_from_db()
    assert attempt.status == "COMPLETED"
    assert len([e for e in pbx.heard if e.get("Uniqueid") == attempt.channel_id]) == 1
    wait_for(lambda: len(legs(attempt)) == 3)
    company_leg, operator_leg, visitor_leg = legs(attempt)
    assert company_leg.uniqueid == attempt.channel_id
    assert (operator_leg.callee, visitor_leg.callee) == (OPERATOR_STAYS, VISITOR_WAITS)
    assert operator_leg.parent_id == visitor_leg.parent_id == company_leg.id
    assert request.tries == 1  # a call back is no automatic try


def test_a_call_back_rings_the_operators_in_the_campaign_order_until_one_answers(make_campaign, pbx):
    campaign = make_campaign(operators=[OPERATOR_BUSY, OPERATOR_STAYS])
    request = request_for(campaign, VISITOR_TALKS)
    CallRequest.objects.filter(pk=request.pk).update(status="FAILED_COMPANY")
    attempt = dialing.request_callback(request=request, user=None)
    dial_callback(attempt.pk)
    assert settled(request).status == "COMPLETED"
    wait_for(lambda: len(legs(attempt)) == 4)
    company_leg, *rung = legs(attempt)
    assert company_leg.uniqueid == attempt.channel_id and company_leg.parent_id is None
    assert [(leg.callee, leg.disposition) for leg in rung] == [
        (OPERATOR_BUSY, "BUSY"),
        (OPERATOR_STAYS, "ANSWERED"),
        (VISITOR_TALKS, "ANSWERED"),
    ]


def test_a_call_back_is_refused_unless_the_request_failed(make_campaign):
    request = request_for(make_campaign(), VISITOR_WAITS)
    with pytest.raises(dialing.CallbackRefused):
        dialing.request_callback(request=request, user=None)
    CallRequest.objects.filter(pk=request.pk).update(status="COMPLETED")
    with pytest.raises(dialing.CallbackRefused):
        dialing.request_callback(request=request, user=None)
    assert not CallAttempt.objects.exists()


def test_a_campaign_may_ring_the_company_first(make_campaign, pbx):
    request = request_for(make_campaign(operators=[OPERATOR_STAYS], first_party="company"), VISITOR_TALKS)
    dial_attempt(request.pk)
    assert settled(request).status == "COMPLETED"
    attempt = request.attempts.get()
    wait_for(lambda: len(legs(attempt)) == 3)
    assert [leg.callee for leg in legs(attempt)[1:]] == [OPERATOR_STAYS, VISITOR_TALKS]


def test_a_busy_company_first_fails_calling_to_company(make_campaign, pbx):
    request = request_for(make_campaign(operators=[OPERATOR_BUSY], first_party="company"), VISITOR_TALKS)
    dial_attempt(request.pk)
    assert settled(request).status == "FAILED_COMPANY"


def test_operators_in_order_are_rung_one_after_the_other_until_one_answers(make_campaign, pbx):
    campaign = make_campaign(operators=[OPERATOR_BUSY, OPERATOR_NEVER_ANSWERS, OPERATOR_TALKS])
    request = request_for(campaign, VISITOR_WAITS)
    dial_attempt(request.pk)
    assert settled(request).status == "COMPLETED"
    attempt = request.attempts.get()
    wait_for(lambda: len(legs(attempt)) == 4)
    assert [leg.disposition for leg in legs(attempt)[1:]] == ["BUSY", "NO ANSWER", "ANSWERED"]


def test_operators_all_together_ring_at_once(make_campaign, pbx):
    campaign = make_campaign(operators=[OPERATOR_NEVER_ANSWERS, OPERATOR_BUSY], ringing="together")
    request = request_for(campaign, VISITOR_WAITS)
    dial_attempt(request.pk)
    assert settled(request).status == "FAILED_COMPANY"
    attempt = request.attempts.get()
    wait_for(lambda: len(legs(attempt)) == 3)
    starts = sorted(leg.started_at for leg in legs(attempt)[1:])
    assert (starts[1] - starts[0]).total_seconds() < 1  # not one after the other


def test_a_visitor_who_hangs_up_during_the_message_fails_calling_to_user(make_campaign, pbx):
    request = request_for(make_campaign(), VISITOR_HANGS_UP_IN_MESSAGE)
    dial_attempt(request.pk)
    assert settled(request).status == "FAILED_USER"
    attempt = request.attempts.get()
    assert attempt.detail == "message: hung up"
    wait_for(lambda: legs(attempt) and legs(attempt)[0].state == "ended")
    assert len(legs(attempt)) == 1  # the company was never rung


def test_a_visitor_who_hangs_up_while_the_company_rings_fails_calling_to_user(make_campaign, pbx):
    # The visitor listens 2 s: the message (1.4 s) is over and the operator that never answers rings.
    request = request_for(make_campaign(operators=[OPERATOR_NEVER_ANSWERS]), VISITOR_TALKS)
    dial_attempt(request.pk)
    assert settled(request).status == "FAILED_USER"
    attempt = request.attempts.get()
    assert attempt.detail == "dialing: CANCEL"
    wait_for(lambda: len(legs(attempt)) == 2 and all(leg.state == "ended" for leg in legs(attempt)))
    assert legs(attempt)[1].answered_at is None  # the operator's phone stopped ringing unanswered


@pytest.mark.parametrize(
    ("number", "code"), [("+33112345678", "unsupported_destination"), ("+33612345010", "blocked_prefix")]
)
def test_refused_numbers_never_reach_the_pbx(make_campaign, number, code):
    campaign = make_campaign()
    campaign.company.c2c_blocked.create(prefix="3361234501")
    with pytest.raises(NumberRefused) as refused:
        call_request_create(campaign=campaign, number=number, consent=True)
    assert refused.value.code == code
    assert not CallRequest.objects.exists() and not CallRecord.objects.exists()


def test_a_task_that_died_after_the_claim_is_redelivered_and_rings_once(make_campaign, pbx):
    request = request_for(make_campaign(), VISITOR_WAITS)
    attempt = dialing.attempt_claim_next(request_id=request.pk)  # the worker dies here
    assert attempt.status == "claimed" and not CallRecord.objects.exists()
    dial_attempt(request.pk)  # the redelivery
    dial_attempt(request.pk)  # and a duplicate of it
    assert settled(request).status == "COMPLETED"
    assert request.attempts.count() == 1
    responses = [e for e in pbx.heard if e.get("Uniqueid") == attempt.channel_id]
    assert len(responses) == 1


def test_a_task_that_died_before_its_claim_committed_is_redelivered_and_rings_once(
    make_campaign, pbx, monkeypatch
):
    request = request_for(make_campaign(), VISITOR_WAITS)
    claim = originate_services.call_record_claim

    def killed(**kwargs):
        with transaction.atomic():
            claim(**kwargs)
            raise RuntimeError("worker killed")  # before the commit: the claim is rolled back

    with monkeypatch.context() as patch:
        patch.setattr(originate_services, "call_record_claim", killed)
        with pytest.raises(RuntimeError):
            dial_attempt(request.pk)
    attempt = request.attempts.get()
    assert attempt.status == "claimed" and not CallRecord.objects.exists()
    dial_attempt(request.pk)  # the redelivery claims and sends
    assert settled(request).status == "COMPLETED"
    dial_attempt(request.pk)  # late duplicate: nothing left to send
    assert len([e for e in pbx.heard if e.get("Uniqueid") == attempt.channel_id]) == 1
    assert CallRecord.objects.filter(app_ref=attempt.app_ref, parent=None).count() == 1


def test_a_task_that_died_after_its_claim_committed_but_before_the_originate_left_rings_once_later(
    make_campaign, pbx, server, monkeypatch
):
    """The claim and its sent mark are one commit: a task killed right after it leaves a record
    `sent` whose Originate never left. The redelivery sends nothing (it cannot tell that record from
    a ringing one); the pbx process's reconcile, the PBX not listing the channel past the grace,
    ends it, and the request's next try rings the visitor, once."""
    request = request_for(make_campaign(redial_count=1, redial_pause=10), VISITOR_WAITS)

    def killed(self, server, action):
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(telephony_facade.PbxFacade, "_send", killed)
        with pytest.raises(RuntimeError):
            dial_attempt(request.pk)
    first = request.attempts.get()
    record = CallRecord.objects.get(uniqueid=first.channel_id)
    assert (first.status, record.state) == ("claimed", "sent")
    dial_attempt(request.pk)  # the redelivery: OriginateAlreadyClaimed, nothing sent
    assert (CallRecord.objects.get(pk=record.pk).state, request.attempts.count()) == ("sent", 1)
    past_grace = timezone.now() - calls.ORIGINATE_GRACE - dt.timedelta(seconds=1)
    CallRecord.objects.filter(pk=record.pk).update(updated_at=past_grace)
    link = pbx.link(server)
    asyncio.run_coroutine_threadsafe(link._reconcile(), pbx.loop).result(15)  # its minute's round
    request = settled(request)
    first.refresh_from_db()
    assert (first.status, request.status, request.tries) == ("FAILED_USER", "PENDING", 1)
    make_due(request)
    dial_attempt(request.pk)
    assert settled(request).status == "COMPLETED"
    second = request.attempts.get(seq=2)
    rung = [e.get("Uniqueid") for e in pbx.heard]
    assert (rung.count(first.channel_id), rung.count(second.channel_id)) == (0, 1)


def test_a_campaign_without_operators_fails_calling_to_company_without_ringing_the_visitor(make_campaign):
    request = request_for(make_campaign(operators=[]), VISITOR_WAITS)
    dial_attempt(request.pk)
    request.refresh_from_db()
    assert request.status == "FAILED_COMPANY"
    assert request.attempts.get().detail == "the campaign has no active operator"
    assert not CallRecord.objects.exists()


def test_demo_data_adds_a_banner_campaign_whose_numbers_reach_the_demo_phones(settings, tmp_path):
    settings.VAR_DIR, settings.DEMO_PORT_BASE = tmp_path, 18000
    call_command("demo_data")
    call_command("demo_data")
    campaign = Campaign.objects.get(name="Demo banner")
    assert campaign.server.name == "demo" and campaign.origins() == [
        "http://127.0.0.1:18000",
        "http://localhost:18000",
    ]
    assert [link.operator.number for link in CampaignOperator.objects.filter(campaign=campaign)] == [
        "+33612345205",
        "+33612345201",
    ]
    request, _ = call_request_create(campaign=campaign, number="06 12 34 50 10", consent=True)
    assert request.number == "+33612345010"


def test_demo_data_brings_the_banner_origins_to_another_demo_port_base(settings, tmp_path, client):
    settings.VAR_DIR, settings.DEMO_PORT_BASE = tmp_path, 18000
    call_command("demo_data")
    campaign = Campaign.objects.get(name="Demo banner")
    campaign.allowed_origins += "\nhttps://shop.example.com"  # one the user added is kept
    campaign.save()
    settings.DEMO_PORT_BASE = 19000
    call_command("demo_data")
    call_command("demo_data")
    campaign.refresh_from_db()
    assert campaign.origins() == [
        "http://127.0.0.1:19000",
        "http://localhost:19000",
        "https://shop.example.com",
    ]
    # The widget on the demo page, now served on 19000, is let in.
    response = client.post(
        "/api/click2call/requests/",
        {"number": "06 12 34 50 10", "consent": True},
        content_type="application/json",
        headers={"X-Campaign-Key": campaign.public_key, "Origin": "http://localhost:19000"},
    )
    assert response.status_code == 201, response.content
    assert response["Access-Control-Allow-Origin"] == "http://localhost:19000"


@pytest.fixture
def pbx_down(monkeypatch):
    """A campaign on a PBX nobody listens for: its tries are claimed and cannot be sent."""
    monkeypatch.setattr(telephony_facade, "CONNECT_TIMEOUT", 0.2)
    server = PbxServerFactory(ami_port=free_port())
    yield CampaignFactory(server=server, redial_count=2)
    facade.close()


def claimed_long_ago(attempt, seconds):
    claimed_at = timezone.now() - dt.timedelta(seconds=seconds)
    CallAttempt.objects.filter(pk=attempt.pk).update(created_at=claimed_at)


def test_a_claim_unsent_past_the_give_up_time_ends_not_dialed_and_rings_nobody_late(
    pbx_down, settings, monkeypatch, client
):
    settings.C2C_CLAIM_GIVE_UP_SECONDS = 300
    request = request_for(pbx_down, VISITOR_TALKS)
    with pytest.raises(AmiNotConnected):
        dialing.attempt_dial_next(request_id=request.pk)
    attempt = request.attempts.get()
    assert CallRecord.objects.get(uniqueid=attempt.channel_id).state == "claimed"
    queued = []
    monkeypatch.setattr(dial_attempt, "delay", queued.append)

    claimed_long_ago(attempt, 290)  # before the give-up time: queued again, still claimed
    dial_due()
    assert queued == [request.pk]
    attempt.refresh_from_db()
    assert attempt.status == "claimed"

    queued.clear()
    claimed_long_ago(attempt, 310)
    dial_due()
    assert queued == []
    attempt.refresh_from_db()
    request.refresh_from_db()
    assert attempt.status == "NOT_DIALED"
    assert attempt.detail == "not sent to the PBX within 300 s; nobody was rung"
    # Not counted among the automatic tries, and no more of them: the company may call back.
    assert (request.status, request.tries, request.next_try_at) == ("FAILED_COMPANY", 0, None)
    record = CallRecord.objects.get(uniqueid=attempt.channel_id)
    assert (record.state, record.disposition) == ("ended", "FAILED")
    assert dialing.attempt_dial_next(request_id=request.pk) is None  # a late task sends nothing

    client.force_login(UserFactory(company=pbx_down.company))
    detail = client.get(reverse("click2call:call", args=[pbx_down.company.slug, request.pk]))
    body = detail.content.decode()
    assert "Not dialed: the PBX was unreachable" in body and "nobody was rung" in body and "Call back" in body
    status = client.get(f"/api/click2call/status/{request.status_token}/").json()
    assert status["attempts"][0]["progress"] == "not dialed: the company's line was unavailable"


def test_a_give_up_burns_the_channel_id_of_a_task_that_died_before_its_claim(pbx_down, settings):
    request = request_for(pbx_down, VISITOR_TALKS)
    attempt = dialing.attempt_claim_next(request_id=request.pk)  # the worker dies before the facade
    claimed_long_ago(attempt, settings.C2C_CLAIM_GIVE_UP_SECONDS + 1)
    assert [a.pk for a in dialing.claims_give_up()] == [attempt.pk]
    # A task that read the attempt before the give-up reaches the facade: its claim is refused.
    with pytest.raises(OriginateAlreadyClaimed):
        facade.originate(
            server=pbx_down.server,
            channel_id=attempt.channel_id,
            number=VISITOR_TALKS,
            context=dialing.CONTEXT,
            app="click2call",
            app_ref=attempt.app_ref,
        )
    assert CallRequest.objects.get(pk=request.pk).status == "FAILED_COMPANY"
