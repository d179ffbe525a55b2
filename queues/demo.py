"""The queues demo of `make run`: the queue support@demo on the demo PBX server, two agents on the
demo phones, and a demo phone that calls the support line (`manage.py call 5551020`)."""

from django.contrib.auth import get_user_model

from queues.models import Agent, Queue, Tier
from telephony.models import PbxServer

# (name, contact: a demo phone in telephony/asterisk/demo/phones.conf, position)
AGENTS = [("1000", "5552005", 1), ("1001", "5552001", 2)]
CALLER_PHONE = "5551020"


def load_demo_queues(sender, *, company, write, **kwargs):
    server = PbxServer.objects.filter(name="demo").first()
    if server is None:  # telephony's demo, connected first, adds it
        return
    queue, _ = Queue.objects.get_or_create(
        company=company,
        name="support",
        defaults={
            "server": server,
            "strategy": "longest-idle-agent",
            "announce_position_every": 30,
            "exit_keys": "0",
            "callback_key": "1",
            "max_wait_time": 300,
        },
    )
    demo_user = get_user_model().objects.filter(username="demo", company=company).first()
    for name, contact, position in AGENTS:
        agent, _ = Agent.objects.get_or_create(
            company=company,
            name=name,
            defaults={"contact": contact, "status": Agent.Status.AVAILABLE, "wrap_up_time": 5},
        )
        if name == "1000" and demo_user is not None and agent.user_id is None:
            Agent.objects.filter(pk=agent.pk).update(user=demo_user)
        Tier.objects.get_or_create(queue=queue, agent=agent, defaults={"position": position})
    write(
        f"  queue:                    {queue.full_name}, agents 1000 and 1001 on the demo phones; "
        f"`python manage.py call {CALLER_PHONE}` calls in, the portal's wallboard shows it"
    )
