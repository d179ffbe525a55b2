"""The ticket line demo of `make run`: the demo company's emergency line 5557000 on the demo PBX server,
two technicians on the demo phones (the one in charge never answers, the next one does), and the
company's SMS on the console provider. `manage.py call 5551050` rings a demo caller who dials the line
and presses 1 after the announcement (telephony/asterisk/demo/phones.conf): the hunt rings the first
technician for RING_SECONDS (a ticket), then the second (another ticket), who answers, talks 2 s and
hangs up, which releases the caller; the second technician gets the ticket by IM and SMS."""

from telephony.models import PbxServer
from tickets.models import SmsSettings, Technician, TicketLine

DID = "5557000"
CALLER_PHONE = "5551050"
RING_SECONDS = 8
# (name, internal: a demo company phone, mobile: a demo French mobile, rung with it), in hunt order.
# +33 6 12 34 52 03 rings 5552003 and +33 6 12 34 50 03 rings 5551003: neither answers.
TECHNICIANS = [
    ("Tech on call (never answers)", "5552003", "+33612345203"),
    ("Tech backup", "5552001", "+33612345003"),
]


def load_demo_tickets(sender, *, company, write, **kwargs):
    server = PbxServer.objects.filter(name="demo").first()
    if server is None:  # telephony's demo, connected first, adds it
        return
    line, _ = TicketLine.objects.get_or_create(
        server=server,
        number=DID,
        defaults={
            "company": company,
            "name": "Gas emergencies",
            "announcement_sound": "hello-world",
            "ring_seconds": RING_SECONDS,
            "wrap": True,
            "rounds": 2,
            "retention_days": 30,
        },
    )
    if line.company_id != company.pk:
        write(f"  ticket line:              {DID} of the demo server is another company's: no demo line")
        return
    technicians = []
    for position, (name, internal, mobile) in enumerate(TECHNICIANS):
        technician, _ = Technician.objects.get_or_create(
            line=line, name=name, defaults={"position": position, "internal": internal, "mobile": mobile}
        )
        technicians.append(technician)
    # The one in charge (the seed's CFU) is the company's to move: set once, never reset.
    TicketLine.objects.filter(pk=line.pk, in_charge__isnull=True).update(in_charge=technicians[0])
    SmsSettings.objects.get_or_create(company=company, defaults={"provider": SmsSettings.Provider.CONSOLE})
    write(
        f"  ticket line:              {line.name} {DID}, technicians {TECHNICIANS[0][1]} (in charge, never "
        f"answers) and {TECHNICIANS[1][1]}, SMS on the console; `python manage.py call {CALLER_PHONE}` calls "
        f"it and presses 1"
    )
