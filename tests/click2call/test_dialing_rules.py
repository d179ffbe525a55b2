"""Dialing's rules where the PBX is not needed: attempts whose events were lost, requests whose
campaign changed, and the Originate an attempt sends."""

import datetime as dt

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.files.base import ContentFile
from django.utils import timezone

from click2call.models import CallRequest, Campaign
from click2call.pbx import ClickToCall
from click2call.services import dialing
from telephony.models import CallRecord
from telephony.services import calls as call_services
from telephony.services.servers import ami_source
from tests.click2call.factories import CallRequestFactory, CampaignFactory

pytestmark = pytest.mark.django_db


class DirectContext:
    """The app's context in the pbx process, its database calls made in the test's thread."""

    async def db(self, function, **kwargs):
        return await sync_to_async(function)(**kwargs)


def first_leg(attempt, *, state, minutes_ago=1):
    campaign = attempt.request.campaign
    record = CallRecord.objects.create(
        server=campaign.server,
        source=ami_source(campaign.server),
        uniqueid=attempt.channel_id,
        linkedid=attempt.channel_id,
        company=campaign.company,
        app="click2call",
        app_ref=attempt.app_ref,
        state=state,
    )
    earlier = timezone.now() - dt.timedelta(minutes=minutes_ago)
    CallRecord.objects.filter(pk=record.pk).update(updated_at=earlier)
    return record


def reconcile(server):
    """The pbx process's reconcile, the PBX listing no channel: its typed events go to the app."""
    typed = call_services.call_records_reconcile(
        server_id=server.pk, live_uniqueids=set(), listed_at=timezone.now()
    )
    for event in typed:
        async_to_sync(ClickToCall().on_call_event)(DirectContext(), event)
    return typed


def test_a_first_leg_whose_originate_response_was_lost_ends_its_attempt_on_reconcile():
    request = CallRequestFactory(campaign=CampaignFactory(redial_count=0))
    attempt = dialing.attempt_claim_next(request_id=request.pk)
    attempt.status = "dialing"
    attempt.save(update_fields=["status"])
    first_leg(attempt, state=CallRecord.State.SENT)
    assert reconcile(request.campaign.server)
    attempt.refresh_from_db()
    request.refresh_from_db()
    assert (attempt.status, attempt.detail) == ("FAILED_USER", "first party: failed")
    assert request.status == "FAILED_USER"  # the portal can call it back


def test_a_redelivered_task_finishes_an_attempt_whose_unsent_claim_was_given_up():
    request = CallRequestFactory(campaign=CampaignFactory(redial_count=1))
    attempt = dialing.attempt_claim_next(request_id=request.pk)  # the worker dies after the claim
    first_leg(attempt, state=CallRecord.State.CLAIMED, minutes_ago=20)
    reconcile_closed = call_services.call_records_reconcile(
        server_id=request.campaign.server.pk, live_uniqueids=set(), listed_at=timezone.now()
    )
    assert reconcile_closed  # the pbx process was away: nobody heard this CallEnded
    dialing.attempt_dial_next(request_id=request.pk)  # the redelivery
    attempt.refresh_from_db()
    request.refresh_from_db()
    assert attempt.status == "FAILED_USER"
    assert (request.status, request.tries) == ("PENDING", 1)  # its next try is scheduled
    assert request.next_try_at is not None


def test_a_waiting_request_out_of_tries_after_its_redial_count_was_lowered_fails_for_a_call_back():
    campaign = CampaignFactory(redial_count=2, first_party="visitor")
    request = CallRequestFactory(campaign=campaign)
    attempt = dialing.attempt_claim_next(request_id=request.pk)
    dialing.attempt_finish(attempt_id=attempt.pk, status="FAILED_COMPANY", detail="dialing: BUSY")
    request.refresh_from_db()
    assert (request.status, request.tries) == ("PENDING", 1)
    Campaign.objects.filter(pk=campaign.pk).update(redial_count=0)
    CallRequest.objects.filter(pk=request.pk).update(next_try_at=timezone.now())

    assert dialing.attempt_dial_next(request_id=request.pk) is None
    request.refresh_from_db()
    assert (request.status, request.tries, request.next_try_at) == ("FAILED_COMPANY", 1, None)
    assert request.finished_at is not None
    assert request.pk not in dialing.requests_due()  # the sweep queues it no more
    assert dialing.request_callback(request=request, user=None).seq == 2


@pytest.mark.parametrize(
    ("visitor_caller_id", "shown"), [("", '"Platform" <5550000>'), ("Shop <0140>", "Shop <0140>")]
)
def test_a_visitor_called_second_sees_the_campaign_or_server_caller_id_never_their_own_number(
    visitor_caller_id, shown
):
    campaign = CampaignFactory(
        first_party="company", visitor_caller_id=visitor_caller_id, company_caller_id=""
    )
    request = CallRequestFactory(campaign=campaign)
    attempt = dialing.attempt_claim_next(request_id=request.pk)
    plan = dialing.attempt_dial_plan(attempt=attempt)
    assert plan["variables"]["C2C_CALLERID"] == shown
    assert plan["caller_id"] == request.number  # the operator sees whom they will be put through to


def test_an_uploaded_message_is_played_instead_of_the_sound(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    campaign = CampaignFactory(message_sound="hello-world")
    campaign.message_file.save("welcome.wav", ContentFile(b"RIFF\x24\x00\x00\x00WAVE"))
    attempt = dialing.attempt_claim_next(request_id=CallRequestFactory(campaign=campaign).pk)
    message = dialing.attempt_dial_plan(attempt=attempt)["variables"]["C2C_MESSAGE"]
    assert message == str(tmp_path / "click2call" / "messages" / "welcome")  # Playback adds the extension
