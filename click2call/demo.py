"""The click2call demo of `make run`: a banner campaign on the demo PBX server, its operators
on the demo phones, and a tariff that serves the numbers reaching them."""

from decimal import Decimal

from django.conf import settings

from click2call.models import Campaign, CampaignOperator, Operator, Rate, Tariff
from telephony.models import PbxServer

# The demo phones (telephony/asterisk/demo/phones.conf) take +33 6 12 34 50 NN for 55510NN.
DEMO_PREFIX = "3361234"
OPERATORS = [("Reception", "5552005"), ("Sales", "5552001")]


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
    base = settings.DEMO_PORT_BASE
    campaign, _ = Campaign.objects.get_or_create(
        company=company,
        name="Demo banner",
        defaults={
            "server": server,
            "tariff": tariff,
            "ring_timeout": 20,
            "redial_count": 2,
            "redial_pause": 30,
            "company_caller_id": '"Banner" <5550100>',
            "allowed_origins": f"http://127.0.0.1:{base}\nhttp://localhost:{base}",
        },
    )
    for position, (name, number) in enumerate(OPERATORS):
        operator, _ = Operator.objects.get_or_create(company=company, name=name, defaults={"number": number})
        CampaignOperator.objects.get_or_create(
            campaign=campaign, operator=operator, defaults={"position": position}
        )
    write(
        f"  click2call campaign:      {campaign.name} (public key {campaign.public_key}); "
        f"+33 6 12 34 50 10 answers and waits for the company"
    )
