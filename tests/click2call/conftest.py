"""The simulator with the click2call test phones, a server routing to them, the real pbx
process with the click2call app, and campaigns dialing through it."""

from decimal import Decimal
from pathlib import Path

import pytest

from click2call.models import CampaignOperator, Issuer
from click2call.pbx import ClickToCall
from telephony.facade import facade
from telephony.models import DialRoute, PbxServer
from telephony.testing import ListeningApp, pbx_process, running_contract_pbxsim, wait_for
from tests.click2call.factories import CampaignFactory, OperatorFactory
from tests.factories import CompanyFactory
from tests.telephony.conftest import MANAGER_USERS, SCALE
from tests.telephony.factories import PbxServerFactory

C2C_PHONES = Path(__file__).with_name("extensions_c2c.conf")
# +336123450NN rings the test phone 55510NN (extensions_c2c.conf).
VISITOR_TALKS = "+33612345001"  # answers after 1 s, talks 2 s
VISITOR_BUSY = "+33612345002"
VISITOR_HANGS_UP_IN_MESSAGE = "+33612345008"  # answers after 1 s, hangs up 0.5 s later
VISITOR_WAITS = "+33612345010"  # answers after 1 s, stays 30 s
# Operators are French mobiles too: +336123452NN rings the company phone 55520NN.
OPERATOR_TALKS = "+33612345201"  # answers after 1 s, talks 2 s
OPERATOR_BUSY = "+33612345202"
OPERATOR_NEVER_ANSWERS = "+33612345203"
OPERATOR_STAYS = "+33612345205"


@pytest.fixture
def sim(tmp_path):
    with running_contract_pbxsim(
        tmp_path, manager_users=MANAGER_USERS, extra_dialplans=[C2C_PHONES], time_scale=SCALE
    ) as sim:
        yield sim


@pytest.fixture
def server(sim):
    server = PbxServerFactory(ami_port=sim.port, agi_bind_port=sim.agi_port)
    DialRoute.objects.create(server=server, name="c2c", template="Local/{number}@c2c-test-phones")
    return server


@pytest.fixture
def make_campaign(server):
    """A campaign on the simulator that rates French mobiles only, ringing its operators in order."""

    def make(operators=(OPERATOR_TALKS,), **fields):
        campaign = CampaignFactory(
            server=server,
            route="c2c",
            tariff__rates={"336": ("France - Mobile", Decimal("0.1"))},
            with_operator=False,
            **{"ring_timeout": 5, "redial_count": 0, **fields},
        )
        for position, number in enumerate(operators):
            operator = OperatorFactory(company=campaign.company, name=f"op {number}", number=number)
            CampaignOperator.objects.create(campaign=campaign, operator=operator, position=position)
        return campaign

    return make


@pytest.fixture
def pbx(server):
    """The pbx process with click2call, connected; .heard keeps the OriginateResponses."""
    ears = ListeningApp(ami_events={"OriginateResponse"})
    with pbx_process([server], apps=[ClickToCall(), ears]) as runner:
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        runner.heard = ears.events
        yield runner
    facade.close()  # the tasks' AMI session to this test's simulator


@pytest.fixture
def issuer(db):
    return Issuer.objects.create(
        name="Callcenter Operator SAS",
        address="1 rue du Port\n75001 Paris\nFrance",
        vat_id="FR12345678901",
        number_prefix="INV",
        email="billing@operator.example",
        default=True,
    )


@pytest.fixture
def billed_company(db):
    return CompanyFactory(
        name="Shop SARL",
        time_zone="Europe/Paris",
        currency="EUR",
        tax_rate=Decimal("20.00"),
        postal_address="5 avenue des Clients\n69000 Lyon",
        vat_id="FR98765432109",
        billing_email="accounts@shop.example",
    )
