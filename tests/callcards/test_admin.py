"""The call cards' staff admin: the callcard_admin permission on every page, the generation form
and its hostile input, PINs shown on a card's page only, the bulk actions confirmed first, lockouts
lifted."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from callcards import pins
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, CardEvent, Lockout
from callcards.services import cards as card_services
from tests.callcards.factories import CardBatchFactory, CardFactory
from tests.callcards.pdftext import pdf_text
from tests.factories import UserFactory
from tests.queues.factories import QueueFactory

pytestmark = pytest.mark.django_db

MODELS = ["cardbatch", "card", "cardcall", "dialinfailure", "lockout", "callcardsettings", "lowbalancealert"]


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def staff(*codenames):
    user = UserFactory(company=None, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="callcards", codename__in=codenames)
    )
    return user


ALL_MODEL_PERMISSIONS = [
    f"{verb}_{model}" for verb in ("view", "add", "change", "delete") for model in MODELS
]


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_answers_and_searches(admin_client, model):
    CardFactory()
    changelist = reverse(f"admin:callcards_{model}_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "1000"}).status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_staff_without_the_callcard_permission_see_no_call_card(client, model):
    card = CardFactory()
    client.force_login(staff(*ALL_MODEL_PERMISSIONS))
    assert client.get(reverse(f"admin:callcards_{model}_changelist")).status_code == 403
    assert "callcards" not in client.get(reverse("admin:index")).content.decode()
    assert client.get(reverse("admin:callcards_card_change", args=[card.pk])).status_code == 403


def test_staff_with_the_callcard_permission_see_the_cards_and_a_card_pin(client):
    card = CardFactory(pin="31415926")
    client.force_login(staff("callcard_admin", "view_card", "change_card"))
    body = client.get(reverse("admin:callcards_card_changelist")).content.decode()
    assert card.card_id in body and "31415926" not in body
    page = client.get(reverse("admin:callcards_card_change", args=[card.pk])).content.decode()
    assert "31415926" in page


def test_the_card_list_costs_the_same_queries_for_3_or_30_cards(admin_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse("admin:callcards_card_changelist")
    counts = []
    for n in (3, 30):
        batch = CardBatchFactory(count=n)
        for sequence in range(1, n + 1):
            CardFactory(company=batch.company, batch=batch, sequence=sequence)
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_list_never_shows_a_pin_even_to_a_superuser(admin_client):
    cards = [CardFactory() for _ in range(3)]
    body = admin_client.get(reverse("admin:callcards_card_changelist")).content.decode()
    for card in cards:
        assert card.card_id in body and pins.pin_reveal(card.pin_sealed) not in body
        assert card.pin_sealed not in body and card.pin_digest not in body


def test_a_card_is_found_by_its_id_and_filtered_by_status_and_batch(admin_client):
    wanted, other = CardFactory(status=Status.SHIP), CardFactory(status=Status.ACTIVE)
    url = reverse("admin:callcards_card_changelist")
    body = admin_client.get(url, {"q": wanted.card_id[:8]}).content.decode()
    assert wanted.card_id in body
    body = admin_client.get(url, {"status__exact": Status.ACTIVE}).content.decode()
    assert other.card_id in body and wanted.card_id not in body
    body = admin_client.get(url, {"batch__id__exact": wanted.batch_id}).content.decode()
    assert wanted.card_id in body and other.card_id not in body


def test_status_is_read_only_on_the_card_page_the_holder_editable(admin_client):
    card = CardFactory(status=Status.ACTIVE)
    url = reverse("admin:callcards_card_change", args=[card.pk])
    response = admin_client.post(
        url,
        {
            "status": Status.VOID,
            "balance_minutes": 999,
            "name": "Ada",
            "email": "ada@example.com",
            "comments": "",
            **inline_management(),
        },
    )
    assert response.status_code == 302
    card.refresh_from_db()
    assert (card.status, card.balance_minutes, card.name) == (Status.ACTIVE, 10, "Ada")


def inline_management():
    data = {}
    for prefix in ("events", "calls", "alerts"):
        data |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}
    return data


def test_the_card_page_shows_its_events_calls_and_alerts(admin_client):
    card = CardFactory(status=Status.SHIP)
    card_services.cards_transition(
        cards=Card.objects.filter(pk=card.pk), to=Status.ACTIVE, user="eve", note="sold"
    )
    page = admin_client.get(reverse("admin:callcards_card_change", args=[card.pk])).content.decode()
    assert "sold" in page and "eve" in page
    assert admin_client.get(reverse("admin:callcards_card_add")).status_code == 403


# -- the bulk actions --------------------------------------------------------------------------------


def act(client, action, cards, *, confirm=False, query=""):
    data = {"action": action, "_selected_action": [c.pk for c in cards], "index": 0}
    if confirm:
        data["confirm"] = "yes"
    return client.post(reverse("admin:callcards_card_changelist") + query, data)


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        ("ship_cards", Status.PRINT, Status.SHIP),
        ("activate_cards", Status.SHIP, Status.ACTIVE),
        ("hold_cards", Status.ACTIVE, Status.HOLD),
        ("void_cards", Status.ACTIVE, Status.VOID),
        ("cancel_cards", Status.SHIP, Status.CANCEL),
    ],
)
def test_each_action_asks_first_then_changes_the_cards_it_may(admin_client, action, start, end):
    able = [CardFactory(status=start) for _ in range(2)]
    refused = CardFactory(status=Status.EMPTY)
    page = act(admin_client, action, [*able, refused])
    assert page.status_code == 200
    body = page.content.decode()
    assert '<strong id="will-change">2</strong>' in body and '<strong id="will-refuse">1</strong>' in body
    assert set(Card.objects.values_list("status", flat=True)) == {start, Status.EMPTY}  # nothing yet
    response = act(admin_client, action, [*able, refused], confirm=True)
    assert response.status_code == 302
    assert [Card.objects.get(pk=c.pk).status for c in able] == [end, end]
    assert Card.objects.get(pk=refused.pk).status == Status.EMPTY
    assert CardEvent.objects.filter(new_status=end).count() == 2
    messages = admin_client.get(response["Location"]).content.decode()
    assert "2 card(s) changed; 1 refused by their status." in messages


def test_release_puts_held_cards_back(admin_client):
    shipped = CardFactory(status=Status.SHIP)
    card_services.cards_transition(cards=Card.objects.all(), to=Status.HOLD, user="x")
    act(admin_client, "release_cards", [shipped], confirm=True)
    shipped.refresh_from_db()
    assert (shipped.status, shipped.held_from) == (Status.SHIP, "")


def test_select_across_takes_every_card_of_the_filtered_list(admin_client):
    shipped = [CardFactory(status=Status.SHIP) for _ in range(3)]
    other = CardFactory(status=Status.PRINT)
    data = {"action": "activate_cards", "select_across": 1, "index": 0, "_selected_action": [shipped[0].pk]}
    url = reverse("admin:callcards_card_changelist") + "?status__exact=SHIP"
    page = admin_client.post(url, data).content.decode()
    assert '<strong id="will-change">3</strong>' in page and 'name="select_across" value="1"' in page
    admin_client.post(url, data | {"confirm": "yes"})
    assert set(Card.objects.filter(pk__in=[c.pk for c in shipped]).values_list("status", flat=True)) == {
        Status.ACTIVE
    }
    other.refresh_from_db()
    assert other.status == Status.PRINT


def test_print_downloads_the_pdf_and_moves_the_cards_to_print(admin_client, company):
    cards = [CardFactory(company=company, status=Status.GENERATE, pin=f"7777000{n}") for n in range(3)]
    page = act(admin_client, "print_cards", cards)
    assert page.status_code == 200 and "Yes, make the PDF" in page.content.decode()
    response = act(admin_client, "print_cards", cards, confirm=True)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="cards-')
    text = pdf_text(response.content)
    assert all(f"7777 000{n}" in text for n in range(3))
    assert set(Card.objects.values_list("status", flat=True)) == {Status.PRINT}


def test_print_of_a_selection_with_a_shipped_card_is_refused_with_its_reason(admin_client):
    cards = [CardFactory(status=Status.GENERATE), CardFactory(status=Status.SHIP)]
    page = act(admin_client, "print_cards", cards).content.decode()
    assert "1 of the 2 cards cannot be printed (1 shipped)" in page and "Yes, make the PDF" not in page
    response = act(admin_client, "print_cards", cards, confirm=True)  # confirmed anyway, by hand
    assert response.status_code == 302
    assert "1 of the 2 cards cannot be printed" in admin_client.get(response["Location"]).content.decode()
    assert Card.objects.get(pk=cards[0].pk).status == Status.GENERATE


def test_a_batch_is_printed_from_the_batch_list(admin_client):
    batch = CardBatchFactory(count=2)
    for sequence in (1, 2):
        CardFactory(company=batch.company, batch=batch, sequence=sequence, status=Status.GENERATE)
    data = {"action": "print_cards", "_selected_action": [batch.pk], "index": 0, "confirm": "yes"}
    response = admin_client.post(reverse("admin:callcards_cardbatch_changelist"), data)
    assert response["Content-Type"] == "application/pdf"
    assert set(batch.cards.values_list("status", flat=True)) == {Status.PRINT}


def test_actions_need_the_change_permission(client):
    card = CardFactory(status=Status.SHIP)
    client.force_login(staff("callcard_admin", "view_card"))
    response = act(client, "activate_cards", [card], confirm=True)
    assert response.status_code in (200, 302)
    card.refresh_from_db()
    assert card.status == Status.SHIP


# -- the generation form -----------------------------------------------------------------------------


def generation(owner, **values):
    return {
        "company": owner.pk,
        "run": "R1",
        "batch": "G1",
        "count": 12,
        "pack_size": 5,
        "initial_minutes": 30,
        "initial_value": "4.50",
        "warning_minutes": 1,
        "language": "en",
        "did": "5551000",
        "queue": "",
        "purchase_order": "PO 1",
        "printer": "Shop",
    } | values


def test_the_add_form_generates_the_batch(admin_client, company):
    response = admin_client.post(reverse("admin:callcards_cardbatch_add"), generation(company))
    assert response.status_code == 302
    batch = CardBatch.objects.get()
    assert (batch.job, batch.generated, batch.cards.count()) == (CardBatch.Job.DONE, 12, 12)
    assert sorted(set(batch.cards.values_list("pack", flat=True))) == [1, 2, 3]
    body = admin_client.get(reverse("admin:callcards_cardbatch_changelist")).content.decode()
    assert "100% (12 of 12)" in body


def test_a_big_batch_from_the_form_is_left_to_a_worker_and_shows_its_progress(
    admin_client, company, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(card_services, "BACKGROUND_FROM", 10)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("admin:callcards_cardbatch_add"), generation(company, count=40))
    assert response.status_code == 302 and len(callbacks) == 1
    batch = CardBatch.objects.get()
    CardBatch.objects.filter(pk=batch.pk).update(
        generated=10, job=CardBatch.Job.FAILED, error="Stopped after 10"
    )
    body = admin_client.get(reverse("admin:callcards_cardbatch_changelist")).content.decode()
    assert "25% (10 of 40)" in body and "Failed" in body and "Stopped after 10" in body
    page = admin_client.get(reverse("admin:callcards_cardbatch_change", args=[batch.pk])).content.decode()
    assert "25% (10 of 40)" in page


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("count", "0"),
        ("count", "1000001"),
        ("count", "abc"),
        ("count", "9" * 40),
        ("pack_size", "0"),
        ("initial_minutes", "99999"),
        ("warning_minutes", "-1"),
        ("run", "R\n1"),
        ("run", "R1' OR 1=1"),
        ("batch", "<b>x"),
        ("did", "٥٥٥١٠٠١"),
        ("did", "555\r\n1001"),
        ("purchase_order", "PO\x001"),
        ("purchase_order", "\u202e1005551"),
        ("printer", "line\nbreak"),
        ("printer", "x" * 10_000),
        ("language", "klingon"),
        ("initial_value", "NaN"),
        ("company", "999999"),
    ],
)
def test_hostile_input_on_the_generation_form_is_a_form_error(admin_client, company, field, value):
    response = admin_client.post(
        reverse("admin:callcards_cardbatch_add"), generation(company, **{field: value})
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not CardBatch.objects.exists() and not Card.objects.exists()


def test_the_form_refuses_a_queue_of_another_company(admin_client, company):
    response = admin_client.post(
        reverse("admin:callcards_cardbatch_add"), generation(company, queue=QueueFactory().pk)
    )
    assert response.status_code == 200 and "A queue of the batch&#x27;s company." in response.content.decode()
    assert not CardBatch.objects.exists()


def test_a_batch_is_read_only_once_made(admin_client):
    batch = CardBatchFactory(count=5, initial_minutes=10)
    admin_client.post(reverse("admin:callcards_cardbatch_change", args=[batch.pk]), {"initial_minutes": 99})
    batch.refresh_from_db()
    assert batch.initial_minutes == 10


def test_resume_queues_the_unfinished_batches(admin_client, monkeypatch, django_capture_on_commit_callbacks):
    failed, done = CardBatchFactory(count=3, job=CardBatch.Job.FAILED, generated=1), CardBatchFactory()
    data = {"action": "resume", "_selected_action": [failed.pk, done.pk], "index": 0}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post(reverse("admin:callcards_cardbatch_changelist"), data)
    assert len(callbacks) == 1


# -- lockouts and the read-only records --------------------------------------------------------------


def test_a_lockout_is_lifted_from_the_admin(admin_client, staff_user):
    now = timezone.now()
    active = Lockout.objects.create(
        kind="caller", value="5551234", failures=5, locked_at=now, until=now + dt.timedelta(minutes=15)
    )
    ended = Lockout.objects.create(
        kind="card",
        value="123",
        failures=5,
        locked_at=now - dt.timedelta(hours=2),
        until=now - dt.timedelta(hours=1),
    )
    url = reverse("admin:callcards_lockout_changelist")
    body = admin_client.get(url, {"active": "yes"}).content.decode()
    assert "5551234" in body and ">123<" not in body
    response = admin_client.post(
        url, {"action": "lift", "_selected_action": [active.pk, ended.pk], "index": 0}
    )
    assert "1 lockout(s) lifted." in admin_client.get(response["Location"]).content.decode()
    active.refresh_from_db()
    assert active.lifted_by == staff_user.username and active.lifted_at and active.until <= timezone.now()
    ended.refresh_from_db()
    assert ended.lifted_at is None


@pytest.mark.parametrize("model", ["cardcall", "dialinfailure", "lowbalancealert", "lockout"])
def test_the_platform_records_cannot_be_added(admin_client, model):
    assert admin_client.get(reverse(f"admin:callcards_{model}_add")).status_code == 403


@pytest.mark.parametrize("selected", ["abc", "-1", "9" * 30, "1\x00"])
def test_a_hostile_selection_is_answered_cleanly(admin_client, selected):
    card = CardFactory(status=Status.SHIP)
    data = {"action": "activate_cards", "_selected_action": [selected], "index": 0, "confirm": "yes"}
    response = admin_client.post(reverse("admin:callcards_card_changelist"), data)
    assert response.status_code < 500
    card.refresh_from_db()
    assert card.status == Status.SHIP


def test_the_admin_exports_cards_and_calls_formula_safe_and_never_a_pin(client):
    from callcards.resources import CardResource

    card = CardFactory(pin="27182818", name="=HYPERLINK(1)")
    client.force_login(staff("callcard_admin", "view_card", "view_cardcall"))
    fields = {f"cardresource_{name}": "on" for name in CardResource._meta.fields}
    export = client.post(reverse("admin:callcards_card_export"), {"format": "0", "resource": "0", **fields})
    body = export.content.decode()
    assert card.card_id in body and "'=HYPERLINK(1)" in body
    assert "27182818" not in body and card.pin_digest not in body and card.pin_sealed not in body
    assert client.get(reverse("admin:callcards_cardcall_export")).status_code == 200


def test_staff_without_the_callcard_permission_export_nothing(client):
    CardFactory()
    client.force_login(staff(*ALL_MODEL_PERMISSIONS))
    assert client.get(reverse("admin:callcards_card_export")).status_code == 403
    assert client.get(reverse("admin:callcards_cardcall_export")).status_code == 403
