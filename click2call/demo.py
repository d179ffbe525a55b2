"""The click2call demo of `make run`: a banner campaign on the demo PBX server, its operators
on the demo phones, and a tariff that serves the numbers reaching them."""

import re
from decimal import Decimal

from click2call.models import Campaign, CampaignOperator, Operator, Rate, Tariff
from telephony.demo import demo_ports
from telephony.models import PbxServer

# The demo phones (telephony/asterisk/demo/phones.conf) take +33 6 12 34 50 NN for 55510NN,
# and +33 6 12 34 52 NN for the company phones 55520NN: operators are numbers the tariff rates.
DEMO_PREFIX = "3361234"
OPERATORS = [("Reception", "+33612345205"), ("Sales", "+33612345201")]
# Before operators were checked like visitors, the demo's rang the phones by their extension.
OLD_NUMBERS = {"+33612345205": "5552005", "+33612345201": "5552001"}
# A caller ID is a full number (01 99 00 xx xx is kept for fiction in France), never a short one.
CALLER_ID = '"Banner" <+33199001234>'
OLD_CALLER_ID = '"Banner" <5550100>'
# The demo page's own origins, on whatever port some DEMO_PORT_BASE gave; other origins are the user's.
DEMO_ORIGIN = re.compile(r"http://(127\.0\.0\.1|localhost):\d+")


def demo_origins() -> list[str]:
    web = demo_ports().web
    return [f"http://127.0.0.1:{web}", f"http://localhost:{web}"]


def origins_follow_demo_port(campaign: Campaign) -> bool:
    """Point the demo page's origins at this run's web port, keeping any other; True if changed."""
    kept = [origin for origin in campaign.origins() if not DEMO_ORIGIN.fullmatch(origin)]
    origins = "\n".join(demo_origins() + kept)
    if campaign.allowed_origins == origins:
        return False
    campaign.allowed_origins = origins
    campaign.save(update_fields=["allowed_origins"])
    return True


def load_demo_click2call(sender, *, company, write, **kwargs):
    server = PbxServer.objects.filter(name="demo").first()
    if server is None:  # telephony's demo, connected first, adds it
        return
    tariff, _ = Tariff.objects.get_or_create(company=company, name="Demo tariff")
    Rate.objects.get_or_create(
        tariff=tariff,
        prefix=DEMO_PREFIX,
        defaults={"destination": "France - Mobile (demo phones)", "price": Decimal("0.05")},
    )
    campaign, created = Campaign.objects.get_or_create(
        company=company,
        name="Demo banner",
        defaults={
            "server": server,
            "tariff": tariff,
            "ring_timeout": 20,
            "redial_count": 2,
            "redial_pause": 30,
            "company_caller_id": CALLER_ID,
            "allowed_origins": "\n".join(demo_origins()),
        },
    )
    # A run with another DEMO_PORT_BASE serves the demo page elsewhere: its widget must be let in.
    if not created and origins_follow_demo_port(campaign):
        write(f"  click2call campaign's origins now: {', '.join(campaign.origins())}")
    Campaign.objects.filter(pk=campaign.pk, company_caller_id=OLD_CALLER_ID).update(
        company_caller_id=CALLER_ID
    )
    for position, (name, number) in enumerate(OPERATORS):
        Operator.objects.filter(company=company, name=name, number=OLD_NUMBERS[number]).update(number=number)
        operator, _ = Operator.objects.get_or_create(company=company, name=name, defaults={"number": number})
        CampaignOperator.objects.get_or_create(
            campaign=campaign, operator=operator, defaults={"position": position}
        )
    write(
        f"  click2call campaign:      {campaign.name} (public key {campaign.public_key}); "
        f"+33 6 12 34 50 10 answers and waits for the company"
    )
