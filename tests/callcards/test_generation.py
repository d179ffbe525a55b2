"""Batches of cards: made at once or by a Celery job, in chunks with their progress, resumed after
a crash, card ids and PINs unique; and the bulk status changes of callcards.services.cards."""

import logging
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from callcards import pins, tasks
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, CardEvent
from callcards.services import cards as card_services
from callcards.services.cards import RELEASE, batch_create, batch_generate, cards_transition
from tests.callcards.factories import CardBatchFactory, CardFactory
from tests.factories import CompanyFactory, UserFactory
from tests.queues.factories import QueueFactory
from tests.races import Rival

pytestmark = pytest.mark.django_db


def create(company, **values):
    defaults = {"run": "R9", "batch": "NEW", "count": 25, "initial_minutes": 30}
    return batch_create(company=company, **(defaults | values))


def revealed(batch) -> list[str]:
    return [
        pins.pin_reveal(sealed)
        for sealed in Card.objects.filter(batch=batch).values_list("pin_sealed", flat=True)
    ]


def test_a_small_batch_is_made_at_once_each_card_with_what_its_batch_says(company):
    queue = QueueFactory(company=company)
    user = UserFactory(company=None, is_staff=True)
    batch = create(
        company,
        user=user,
        count=25,
        pack_size=10,
        initial_minutes=45,
        initial_value="9.90",
        warning_minutes=2,
        language="fr",
        did="5551234",
        queue=queue,
        purchase_order="PO-7",
        printer="Acme Print",
    )
    assert (batch.job, batch.generated, batch.progress, batch.error) == (CardBatch.Job.DONE, 25, 100, "")
    assert batch.initial_value == Decimal("9.90") and batch.created_by == user
    made = list(Card.objects.filter(batch=batch).order_by("sequence"))
    assert [c.sequence for c in made] == list(range(1, 26))
    assert [c.pack for c in made] == [1] * 10 + [2] * 10 + [3] * 5
    for card in made:
        assert len(card.card_id) == 12 and pins.card_id_valid(card.card_id)
        assert (card.company, card.status, card.balance_minutes, card.warning_minutes) == (
            company,
            Status.GENERATE,
            45,
            2,
        )
        assert (card.queue, card.did, card.language, card.create_user) == (
            queue,
            "5551234",
            "fr",
            user.username,
        )
        assert card.create_time is not None
        pin = pins.pin_reveal(card.pin_sealed)
        assert len(pin) == 8 and pin.isdigit() and pin not in card.pin_sealed
        assert card.pin_digest == pins.pin_digest(pin)
    assert len({c.card_id for c in made}) == len({c.pin_digest for c in made}) == 25


def test_a_big_batch_is_made_by_a_celery_job_queued_on_commit(
    company, monkeypatch, settings, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(card_services, "BACKGROUND_FROM", 30)
    monkeypatch.setattr(card_services, "CHUNK", 12)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = create(company, count=30)
    assert (batch.job, batch.generated) == (CardBatch.Job.PENDING, 0)
    assert not Card.objects.filter(batch=batch).exists() and len(callbacks) == 1
    callbacks[0]()  # the commit: the task runs (eagerly here, a worker in production)
    batch.refresh_from_db()
    assert (batch.job, batch.generated, Card.objects.filter(batch=batch).count()) == (
        CardBatch.Job.DONE,
        30,
        30,
    )
    assert tasks.generate_batch.name == "callcards.generate_batch"


def test_the_task_returns_quietly_for_a_batch_gone():
    tasks.generate_batch.run(10**9)


def test_progress_is_committed_with_each_chunk(company, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(card_services, "CHUNK", 10)
    with django_capture_on_commit_callbacks(execute=False):
        batch = create(company, count=35, background=True)
    seen = []

    def progress(made):
        stored = CardBatch.objects.get(pk=batch.pk)
        seen.append((stored.generated, stored.job, Card.objects.filter(batch=batch).count(), made.progress))

    batch_generate(batch_id=batch.pk, progress=progress)
    assert seen == [
        (10, "running", 10, 28),
        (20, "running", 20, 57),
        (30, "running", 30, 85),
        (35, "running", 35, 100),
    ]
    batch.refresh_from_db()
    assert batch.job == CardBatch.Job.DONE


def test_a_batch_stopped_midway_resumes_where_it_stopped_and_never_makes_a_card_twice(
    company, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    monkeypatch.setattr(card_services, "CHUNK", 10)
    with django_capture_on_commit_callbacks(execute=False):
        batch = create(company, count=35, background=True)
    real_insert, calls = card_services._cards_insert, []

    def crashing_insert(rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise ConnectionError("the database went away")  # mid-batch, the third chunk lost
        real_insert(rows)

    monkeypatch.setattr(card_services, "_cards_insert", crashing_insert)
    with pytest.raises(card_services.GenerationStopped) as stopped:
        batch_generate(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.job, batch.generated, Card.objects.filter(batch=batch).count()) == (
        CardBatch.Job.FAILED,
        20,
        20,
    )
    assert (
        batch.error
        == str(stopped.value)
        == ("Stopped after 20 of 35 cards (ConnectionError); generate it again to finish.")
    )
    first = set(Card.objects.filter(batch=batch).values_list("card_id", flat=True))

    monkeypatch.setattr(card_services, "_cards_insert", real_insert)
    batch_generate(batch_id=batch.pk)
    batch_generate(batch_id=batch.pk)  # run again (a duplicate delivery): nothing more
    batch.refresh_from_db()
    made = Card.objects.filter(batch=batch)
    assert (batch.job, batch.generated, batch.error, made.count()) == (CardBatch.Job.DONE, 35, "", 35)
    assert sorted(made.values_list("sequence", flat=True)) == list(range(1, 36))
    assert first <= set(made.values_list("card_id", flat=True))
    assert not any(pin in caplog.text or pin in batch.error for pin in revealed(batch))


def test_a_worker_that_died_leaves_a_running_batch_the_next_run_finishes(
    company, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(card_services, "CHUNK", 10)
    with django_capture_on_commit_callbacks(execute=False):
        batch = create(company, count=25, background=True)
    card_services._chunk_make(batch)  # the worker's first chunk, then it was killed
    assert CardBatch.objects.filter(pk=batch.pk, job=CardBatch.Job.RUNNING, generated=10).exists()
    batch = batch_generate(batch_id=batch.pk)
    made = Card.objects.filter(batch=batch).count()
    assert (batch.job, batch.generated, made) == (CardBatch.Job.DONE, 25, 25)


def test_collisions_are_drawn_again_within_the_chunk_and_against_the_live_cards(company, monkeypatch):
    live = CardFactory(company=company, pin="11111111", status=Status.ACTIVE)
    CardFactory(company=company, pin="22222222", status=Status.VOID)  # a dead card's PIN may come back
    pin_draws = iter(["11111111", "33333333", "33333333", "22222222", "44444444", "55555555"])
    id_draws = iter([live.card_id, "200000000008", "200000000008", "200000000016", "200000000024"])
    monkeypatch.setattr(pins, "pin_draw", lambda: next(pin_draws))
    monkeypatch.setattr(pins, "card_id_draw", lambda: next(id_draws))
    batch = create(company, count=3)
    assert sorted(revealed(batch)) == ["22222222", "33333333", "44444444"]
    assert sorted(Card.objects.filter(batch=batch).values_list("card_id", flat=True)) == [
        "200000000008",
        "200000000016",
        "200000000024",
    ]


def test_a_pin_taken_between_the_check_and_the_insert_is_refused_by_the_database_and_drawn_again(
    company, monkeypatch
):
    CardFactory(company=company, pin="11111111", status=Status.SHIP)
    pin_draws = iter(["11111111", "22222222", "33333333", "44444444"])
    monkeypatch.setattr(pins, "pin_draw", lambda: next(pin_draws))
    real_taken, checks = card_services._taken_digests, []

    def late_check(values):  # the first check ran before a rival batch stored the live card's PIN
        checks.append(values)
        return set() if len(checks) == 1 else real_taken(values)

    monkeypatch.setattr(card_services, "_taken_digests", late_check)
    batch = create(company, count=2)
    assert sorted(revealed(batch)) == ["33333333", "44444444"] and len(checks) == 2
    assert Card.objects.filter(pin_digest=pins.pin_digest("11111111")).count() == 1


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": 1_000_001}, "count"),
        ({"initial_minutes": 0}, "initial_minutes"),
        ({"initial_minutes": 40000}, "initial_minutes"),
        ({"pack_size": 0}, "pack_size"),
        ({"warning_minutes": 61}, "warning_minutes"),
        ({"run": "R\n1"}, "run"),
        ({"batch": "B1 2"}, "batch"),
        ({"did": "٥٥٥١٠٠١"}, "did"),
        ({"purchase_order": "PO\r\n7"}, "purchase_order"),
        ({"printer": "\u202eevil"}, "printer"),
        ({"language": "xx"}, "language"),
        ({"initial_value": "-1"}, "initial_value"),
    ],
)
def test_bad_values_are_refused_and_nothing_is_made(company, values, field):
    with pytest.raises(ValidationError) as refused:
        create(company, **values)
    assert field in refused.value.message_dict
    assert not CardBatch.objects.exists() and not Card.objects.exists()


def test_a_queue_of_another_company_and_a_batch_taken_are_refused(company):
    with pytest.raises(ValidationError, match="A queue of the batch's company"):
        create(company, queue=QueueFactory())
    create(company, count=1)
    with pytest.raises(ValidationError):
        create(company, count=1)
    create(CompanyFactory(), count=1)  # another company's R1/B1 is its own
    assert CardBatch.objects.count() == 2


def test_pins_appear_in_no_log_even_with_every_query_logged(company, caplog):
    caplog.set_level(logging.DEBUG)
    with CaptureQueriesContext(connection) as queries:
        batch = create(company, count=40)
    assert len(queries) > 0
    everything = caplog.text + " ".join(str(q) for q in queries.captured_queries)
    assert not any(pin in everything for pin in revealed(batch))


# -- bulk status changes --------------------------------------------------------------------------


def card(status, **values):
    return CardFactory(status=status, **values)


def test_a_bulk_change_moves_the_cards_the_table_allows_and_counts_the_others():
    cards = {s: card(s) for s in (Status.GENERATE, Status.PRINT, Status.SHIP, Status.ACTIVE, Status.VOID)}
    result = cards_transition(cards=Card.objects.all(), to=Status.SHIP, user="alice", note="to the shop")
    assert (result.changed, result.refused) == (1, 4)
    statuses = {s: Card.objects.get(pk=c.pk).status for s, c in cards.items()}
    assert statuses == {
        Status.GENERATE: Status.GENERATE,
        Status.PRINT: Status.SHIP,
        Status.SHIP: Status.SHIP,
        Status.ACTIVE: Status.ACTIVE,
        Status.VOID: Status.VOID,
    }
    event = CardEvent.objects.get()
    assert (event.card_id, event.user, event.old_status, event.new_status, event.note) == (
        cards[Status.PRINT].pk,
        "alice",
        Status.PRINT,
        Status.SHIP,
        "to the shop",
    )


def test_activation_and_voiding_record_who_and_when():
    shipped, active = card(Status.SHIP), card(Status.ACTIVE)
    user = UserFactory(company=None, is_staff=True)
    assert (
        cards_transition(cards=Card.objects.filter(pk=shipped.pk), to=Status.ACTIVE, user=user).changed == 1
    )
    assert cards_transition(cards=Card.objects.filter(pk=active.pk), to=Status.VOID, user=user).changed == 1
    shipped.refresh_from_db()
    active.refresh_from_db()
    assert (
        shipped.status == Status.ACTIVE and shipped.activate_user == user.username and shipped.activate_time
    )
    assert active.status == Status.VOID and active.void_user == user.username and active.void_time


def test_held_cards_go_back_where_they_were_held_from():
    generated, shipped, active = card(Status.GENERATE), card(Status.SHIP), card(Status.ACTIVE)
    assert cards_transition(cards=Card.objects.all(), to=Status.HOLD, user="bob").changed == 3
    assert dict(Card.objects.values_list("pk", "held_from")) == {
        generated.pk: Status.GENERATE,
        shipped.pk: Status.SHIP,
        active.pk: Status.ACTIVE,
    }
    # A card held from ACTIVE was sold: it cannot be cancelled, only voided.
    result = cards_transition(cards=Card.objects.all(), to=Status.CANCEL, user="bob")
    assert (result.changed, result.refused) == (2, 1)
    result = cards_transition(cards=Card.objects.all(), to=RELEASE, user="bob")
    assert (result.changed, result.refused) == (1, 2)
    active.refresh_from_db()
    assert (active.status, active.held_from) == (Status.ACTIVE, "")
    assert CardEvent.objects.filter(card=active).count() == 2


def test_the_preview_counts_what_the_change_will_do():
    card(Status.SHIP)
    card(Status.SHIP)
    card(Status.EMPTY)
    preview = card_services.cards_transition_preview(cards=Card.objects.all(), to=Status.ACTIVE)
    assert (preview.changed, preview.refused) == (2, 1)


@pytest.mark.django_db(transaction=True)
def test_a_rival_change_waits_for_the_bulk_change_and_every_change_is_recorded(monkeypatch):
    batch = CardBatchFactory(count=3)
    cards = [CardFactory(company=batch.company, batch=batch, status=Status.SHIP) for _ in range(3)]
    victim = cards[0]

    def rival_void():
        return cards_transition(cards=Card.objects.filter(pk=victim.pk), to=Status.VOID, user="rival")

    rival = Rival(monkeypatch, card_services, "_target", rival_void)
    result = cards_transition(cards=Card.objects.filter(batch=batch), to=Status.ACTIVE, user="alice")
    rival.done()
    assert (result.changed, result.refused) == (3, 0)
    assert rival.error is None and rival.result.changed == 1
    victim.refresh_from_db()
    assert victim.status == Status.VOID
    assert list(
        CardEvent.objects.filter(card=victim).order_by("id").values_list("old_status", "new_status")
    ) == [
        (Status.SHIP, Status.ACTIVE),
        (Status.ACTIVE, Status.VOID),
    ]
