"""A refusal (busy agent, busy queue) is decided on the row the write locks, in the write's own
transaction: the dispatcher's change made between a check and a write cannot slip through.

Each test runs the dispatcher's own service (a caller joins, an agent is claimed for an offer) in
another thread, on its own database connection, at the worst moment: between the refusal's check
and the write, or between the interface's read and the service."""

import threading

import pytest
from django.db import connection, transaction

from queues.models import Agent, Member, Offer, Queue, Tier
from queues.services import agents, calls, config
from telephony.models import CallRecord
from tests.queues.factories import MemberFactory, QueueFactory, TierFactory
from tests.races import Rival

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_caller_joining_while_the_queue_is_deleted_is_never_deleted_with_it(monkeypatch):
    queue = QueueFactory()
    join = Rival(
        monkeypatch,
        Queue,
        "delete",
        lambda: calls.member_join(
            server_id=queue.server_id, queue_name=queue.full_name, uniqueid="in-1", channel="PJSIP/in-1"
        ),
    )

    config.queue_del(queue=queue)

    join.done()
    assert isinstance(join.error, calls.JoinRefused), join.result
    assert not Queue.objects.exists() and not Member.objects.exists()


def test_a_queue_with_a_caller_who_joined_after_it_was_read_is_not_deleted(monkeypatch):
    queue = QueueFactory()
    real = config.queue_del

    def interface_then_service(*, queue):  # the admin read the queue; a caller joins; then the service
        calls.member_join(
            server_id=queue.server_id, queue_name=queue.full_name, uniqueid="in-1", channel="PJSIP/in-1"
        )
        return real(queue=queue)

    with pytest.raises(config.ConfigRefused, match="unload it first"):
        interface_then_service(queue=queue)
    assert Member.objects.filter(queue=queue, state="Waiting").exists()


@pytest.fixture
def waiting(db):
    tier = TierFactory(agent__contact="5552001")
    member = MemberFactory(queue=tier.queue)
    return tier.agent, member


def claim(agent, member):
    return lambda: calls.offer_claim(member_id=member.pk, agent_id=agent.pk)


def test_an_agent_claimed_while_its_contact_changes_is_rung_at_the_new_contact(monkeypatch, waiting):
    agent, member = waiting
    offer = Rival(monkeypatch, config, "_save", claim(agent, member))

    config.agent_update(agent=agent, changes={"contact": "5552099"})

    assert offer.done().result is not None
    record = CallRecord.objects.get(uniqueid=offer.result.channel_id)
    assert record.callee == Agent.objects.get().contact == "5552099"


def test_an_agent_claimed_after_the_interface_read_it_keeps_its_contact(waiting):
    agent, member = waiting  # the API view or the admin form read the agent Waiting ...
    assert claim(agent, member)() is not None  # ... the dispatcher offers it a caller ...
    with pytest.raises(config.ConfigRefused) as refused:  # ... the change is refused on the fresh row
        config.agent_update(agent=agent, changes={"contact": "5552099"})
    assert refused.value.code == "agent_busy"
    assert Agent.objects.get().contact == "5552001"


def test_an_agent_claimed_while_it_is_deleted_is_never_offered(monkeypatch, waiting):
    agent, member = waiting
    offer = Rival(monkeypatch, Agent, "delete", claim(agent, member))

    config.agent_del(agent=agent)

    assert offer.done().result is None and offer.error is None
    assert not Agent.objects.exists() and not Offer.objects.exists()
    assert Member.objects.get().state == "Waiting"


def test_an_agent_claimed_after_the_interface_read_it_is_not_deleted(waiting):
    agent, member = waiting
    assert claim(agent, member)() is not None
    with pytest.raises(config.ConfigRefused) as refused:
        config.agent_del(agent=agent)
    assert refused.value.code == "agent_busy"
    assert Offer.objects.filter(agent=agent, result="ringing").exists()


def test_an_agent_whose_tier_is_removed_while_it_is_claimed_is_never_offered(monkeypatch, waiting):
    agent, member = waiting
    offer = Rival(monkeypatch, Tier, "delete", claim(agent, member))

    config.tier_del(tier=Tier.objects.get())

    assert offer.done().result is None and offer.error is None
    assert not Tier.objects.exists() and not Offer.objects.exists()
    assert Agent.objects.get().state == "Waiting" and Member.objects.get().state == "Waiting"


def test_a_tier_offering_after_the_interface_read_it_is_not_removed(waiting):
    agent, member = waiting
    assert claim(agent, member)() is not None
    with pytest.raises(config.ConfigRefused) as refused:
        config.tier_del(tier=Tier.objects.get())
    assert refused.value.code == "tier_busy"


def test_an_offer_claimed_after_the_queue_was_unloaded_is_refused(waiting):
    agent, member = waiting
    config.queue_unload(queue=member.queue)  # committed; the dispatcher has not seen it yet
    assert claim(agent, member)() is None
    assert Agent.objects.get().state == "Waiting" and not Offer.objects.exists()


def test_a_caller_leaving_while_claimed_is_not_offered(monkeypatch, waiting):
    agent, member = waiting
    leave = Rival(
        monkeypatch,
        calls,
        "_new_channel_id",
        lambda: calls.member_leave(member_id=member.pk, reason="BREAK_OUT"),
    )

    offer = claim(agent, member)()

    leave.done()
    assert leave.error is None
    # The caller who left is left: never back to Trying, and an offer made for it is canceled.
    assert Member.objects.get().state == "Abandoned"
    assert not Offer.objects.filter(result="ringing").exists(), offer


def test_a_queue_unloaded_while_an_offer_is_claimed_offers_no_more_after_it(monkeypatch, waiting):
    agent, member = waiting

    def unload_then_count_offers():
        config.queue_unload(queue=Queue.objects.get())
        return Offer.objects.count()

    unload = Rival(monkeypatch, calls, "_new_channel_id", unload_then_count_offers)

    claim(agent, member)()

    # Every offer that exists was made before the unload committed: none after it.
    assert unload.done().result == Offer.objects.count()
    assert not Queue.objects.get().loaded


def locked_elsewhere(row, action):
    """`action` run on its own connection (waiting 2 s at most for a lock) while `row` is locked
    here as an update locks it (the dispatcher's offer claim its queue and agent, an admin its
    company); its error, if any. PostgreSQL only: SQLite locks the whole database."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    outcome = {}

    def run():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                action()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    with transaction.atomic():
        type(row).objects.select_for_update(no_key=True).get(pk=row.pk)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    return outcome.get("error")


def test_a_tier_edited_while_the_dispatcher_holds_its_agent_and_queue_does_not_wait_for_them(waiting):
    agent, member = waiting
    tier = Tier.objects.get()
    assert locked_elsewhere(agent, lambda: config.tier_update(tier=tier, changes={"level": 2})) is None
    assert locked_elsewhere(member.queue, lambda: config.tier_update(tier=tier, changes={"level": 3})) is None
    assert Tier.objects.get().level == 3


def test_queue_and_agent_writes_lock_their_own_row_only(waiting):
    agent, member = waiting
    company = agent.company
    assert locked_elsewhere(company, lambda: config.queue_update(queue=member.queue, changes={})) is None
    assert locked_elsewhere(company, lambda: config.agent_update(agent=agent, changes={})) is None
    assert (
        locked_elsewhere(company, lambda: agents.agent_status_set(agent_id=agent.pk, status="On Break"))
        is None
    )
    assert (
        locked_elsewhere(member.queue, lambda: calls.member_leave(member_id=member.pk, reason="BREAK_OUT"))
        is None
    )
    assert locked_elsewhere(company, lambda: config.queue_del(queue=member.queue)) is None
