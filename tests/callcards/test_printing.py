"""Cards printed to a PDF (read back: pages and text) and moved to PRINT through the status table."""

import pytest

from callcards import pins
from callcards.lifecycle import Status
from callcards.models import Card, CardEvent
from callcards.services.cards import batch_create
from callcards.services.printing import PrintRefused, cards_print_pdf
from tests.callcards.factories import CardFactory
from tests.callcards.pdftext import pdf_line_segments, pdf_pages, pdf_text

pytestmark = pytest.mark.django_db


def grouped(digits: str) -> str:
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


@pytest.fixture
def batch(company):
    company.name = "Astro Advice"
    company.save()
    return batch_create(
        company=company, run="R1", batch="P1", count=23, initial_minutes=45, did="5551234", language="de"
    )


def test_generated_cards_are_printed_ten_a_page_with_their_pins_and_become_printed(batch):
    cards = Card.objects.filter(batch=batch)
    pdf = cards_print_pdf(cards=cards, user="printer-op")
    assert pdf.startswith(b"%PDF-") and pdf_pages(pdf) == 3
    # Cut marks at each card edge, top and bottom (3 columns of edges), left and right (6 rows), on
    # every page.
    assert pdf_line_segments(pdf) == 3 * (2 * 3 + 2 * 6)
    text = pdf_text(pdf)
    for card in cards:
        assert grouped(card.card_id) in text
        assert grouped(pins.pin_reveal(card.pin_sealed)) in text
    assert "Astro Advice" in text and "5551234" in text and "45 min" in text and "German" in text
    assert set(cards.values_list("status", flat=True)) == {Status.PRINT}
    assert (
        CardEvent.objects.filter(
            old_status=Status.GENERATE, new_status=Status.PRINT, user="printer-op", note="printed"
        ).count()
        == 23
    )


def test_printed_cards_may_be_printed_again_and_the_reprint_is_recorded(batch):
    cards = Card.objects.filter(batch=batch, sequence__lte=3)
    cards_print_pdf(cards=cards, user="a")
    pdf = cards_print_pdf(cards=cards, user="b")
    assert pdf_pages(pdf) == 1
    assert CardEvent.objects.filter(old_status=Status.PRINT, new_status=Status.PRINT, user="b").count() == 3


def test_a_selection_with_a_card_past_printing_is_refused_whole(batch):
    Card.objects.filter(batch=batch, sequence=5).update(status=Status.SHIP)
    Card.objects.filter(batch=batch, sequence=6).update(status=Status.ACTIVE)
    with pytest.raises(PrintRefused) as refused:
        cards_print_pdf(cards=Card.objects.filter(batch=batch), user="a")
    assert str(refused.value) == (
        "2 of the 23 cards cannot be printed (1 active, 1 shipped): only generated or printed cards are; "
        "select those alone."
    )
    assert Card.objects.filter(batch=batch, status=Status.GENERATE).count() == 21
    assert not CardEvent.objects.exists()


def test_cards_of_two_companies_are_printed_apart():
    CardFactory(status=Status.GENERATE)
    CardFactory(status=Status.GENERATE)
    with pytest.raises(PrintRefused, match="several companies"):
        cards_print_pdf(cards=Card.objects.all(), user="a")
    assert not CardEvent.objects.exists()


def test_no_card_no_pdf():
    with pytest.raises(PrintRefused, match="No card selected"):
        cards_print_pdf(cards=Card.objects.none(), user="a")
