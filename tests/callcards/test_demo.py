"""`make run`'s call card demo: demo_data adds a demo card on support@demo, and the demo phone
5551040 dials the card line, keys it, waits and talks to an agent; the card is billed."""

import pytest
from django.core.management import call_command

from callcards import demo
from callcards.demo import load_demo_callcards
from callcards.lifecycle import Status
from callcards.models import Card, CardCall
from callcards.pbx import CallCards
from queues.pbx import Queues
from telephony.facade import PbxFacade
from telephony.models import PbxServer
from telephony.testing import pbx_process, wait_for
from tests.callcards.conftest import SCALE
from tests.demo import DEMO_PHONES, running_demo_pbx
from tests.factories import CompanyFactory

pytestmark = pytest.mark.django_db


def test_demo_data_adds_a_demo_card_it_prints(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("demo_data")
    Card.objects.filter(card_id=demo.CARD_ID).update(balance_minutes=3)  # a call's billing, kept
    call_command("demo_data")
    card = Card.objects.select_related("queue__company").get(card_id=demo.CARD_ID)
    assert (card.company.slug, card.queue.full_name, card.status, card.balance_minutes, card.did) == (
        "demo",
        "support@demo",
        Status.ACTIVE,
        3,
        demo.DID,
    )
    out = capsys.readouterr().out
    assert f"{demo.CARD_ID}, PIN {demo.PIN}" in out and f"manage.py call {demo.HOLDER_PHONE}" in out
    # the demo phone keys what demo_data made
    phones = DEMO_PHONES.read_text()
    assert f"SendDTMF({demo.CARD_ID}#" in phones and f"SendDTMF({demo.PIN}#" in phones


@pytest.mark.long
@pytest.mark.django_db(transaction=True)
def test_the_demo_holder_dials_in_talks_and_is_billed(tmp_path):
    with running_demo_pbx(tmp_path, time_scale=SCALE) as server:
        company = CompanyFactory(slug="demo")
        load_demo_callcards(None, company=company, write=lambda text: None)
        with pbx_process([server], apps=[CallCards(), Queues()]):
            wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
            facade = PbxFacade()
            try:
                facade.originate(
                    server=server,
                    channel_id="demo-holder",
                    number=demo.HOLDER_PHONE,
                    context="platform-hold",
                    app="demo",
                )
                talking = wait_for(
                    lambda: CardCall.objects.filter(state=CardCall.State.TALKING).first(),
                    timeout=20,
                    what="the demo card talking to an agent",
                )
                call = wait_for(
                    lambda: CardCall.objects.filter(pk=talking.pk, state=CardCall.State.BILLED).first(),
                    timeout=20,
                    what="the billing",
                )
            finally:
                facade.close()
    assert (call.agent, call.inbound_did, call.phone_number) == ("1000@demo", demo.DID, demo.HOLDER_PHONE)
    assert call.agent_talk_min == 1 and call.balance_minutes_end == demo.MINUTES - 1
    assert Card.objects.get(card_id=demo.CARD_ID).status == Status.USED
