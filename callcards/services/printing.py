"""Cards printed: an A4 PDF of credit-card-size cards with their PINs, the cards moved to PRINT.

The PDF is the one place a PIN leaves the platform in clear: it is made for a user holding the
callcard_admin permission (the admin's print action) and is not stored. Rendering runs outside any
transaction (1,000 cards take seconds: SQLite's write lock is not held that long); the cards are
then moved to PRINT in one short transaction, and the PDF is handed out only when every card
still could be: a card held or shipped meanwhile refuses the whole print.
"""

import base64

from django.db import transaction
from django.db.models import Count
from django.template.loader import render_to_string

from callcards import pins
from callcards.lifecycle import Status
from callcards.models import Card, Language
from callcards.services.cards import cards_transition

PRINTABLE = frozenset({Status.GENERATE, Status.PRINT})
COLUMNS, ROWS = 2, 5
CARD_WIDTH, CARD_HEIGHT = 85.6, 54.0  # mm, ISO/IEC 7810 ID-1
PAGE_WIDTH, PAGE_HEIGHT = 210.0, 297.0
MARK_LENGTH, MARK_GAP = 8.0, 2.0
# A print of more cards is refused: a PDF of 10^4 cards is already 1,000 pages.
MAX_CARDS = 10_000


class PrintRefused(ValueError):
    """The selection cannot be printed as it is; the message says why, without a PIN."""


def _grouped(digits: str) -> str:
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _left() -> float:
    return (PAGE_WIDTH - COLUMNS * CARD_WIDTH) / 2


def _top() -> float:
    return (PAGE_HEIGHT - ROWS * CARD_HEIGHT) / 2


def _marks_url() -> str:
    """The cut marks, in the margins in line with each card edge: an SVG page background."""
    left, top = _left(), _top()
    right, bottom = left + COLUMNS * CARD_WIDTH, top + ROWS * CARD_HEIGHT
    lines = []
    for c in range(COLUMNS + 1):
        x = round(left + c * CARD_WIDTH, 2)
        lines += [
            (x, top - MARK_GAP - MARK_LENGTH, x, top - MARK_GAP),
            (x, bottom + MARK_GAP, x, bottom + MARK_GAP + MARK_LENGTH),
        ]
    for r in range(ROWS + 1):
        y = round(top + r * CARD_HEIGHT, 2)
        lines += [
            (left - MARK_GAP - MARK_LENGTH, y, left - MARK_GAP, y),
            (right + MARK_GAP, y, right + MARK_GAP + MARK_LENGTH, y),
        ]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{PAGE_WIDTH}mm" height="{PAGE_HEIGHT}mm" '
        f'viewBox="0 0 {PAGE_WIDTH} {PAGE_HEIGHT}"><g stroke="black" stroke-width="0.2">'
        + "".join(f'<line x1="{a:.2f}" y1="{b:.2f}" x2="{c:.2f}" y2="{d:.2f}"/>' for a, b, c, d in lines)
        + "</g></svg>"
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def cards_print_refusal(*, cards) -> str:
    """Why the selection cannot be printed ('' when it can)."""
    total = cards.count()
    if total > MAX_CARDS:
        return f"{total} cards selected: print at most {MAX_CARDS} at a time."
    others = dict(
        cards.exclude(status__in=PRINTABLE).order_by().values_list("status").annotate(n=Count("id"))
    )
    if not others:
        return ""
    labels = ", ".join(f"{n} {Status(status).label.lower()}" for status, n in sorted(others.items()))
    return (
        f"{sum(others.values())} of the {total} cards cannot be printed ({labels}): only generated or "
        "printed cards are; select those alone."
    )


def cards_print_pdf(*, cards, user) -> bytes:
    """The PDF of the cards (generated or printed ones only, else PrintRefused), COLUMNS x ROWS a
    page; the generated ones become PRINT, the printed ones stay (a reprint is recorded too)."""
    refusal = cards_print_refusal(cards=cards)
    if refusal:
        raise PrintRefused(refusal)
    chosen = list(
        Card.objects.filter(pk__in=cards.order_by().values("pk"))
        .select_related("company", "batch")
        .order_by("batch_id", "sequence")
    )
    if not chosen:
        raise PrintRefused("No card selected.")
    companies = sorted({card.company.name for card in chosen})
    if len(companies) > 1:
        raise PrintRefused("The cards belong to several companies: print each company's apart.")
    per_page = COLUMNS * ROWS
    left, top = _left(), _top()
    languages = dict(Language.choices)
    sheets = []
    for start in range(0, len(chosen), per_page):
        sheet = []
        for i, card in enumerate(chosen[start : start + per_page]):
            row, column = divmod(i, COLUMNS)
            sheet.append(
                {
                    "left": round(left + column * CARD_WIDTH, 2),
                    "top": round(top + row * CARD_HEIGHT, 2),
                    "card_id": _grouped(card.card_id),
                    "pin": _grouped(pins.pin_reveal(card.pin_sealed)),
                    "minutes": card.balance_minutes,
                    "did": card.did,
                    "language": languages.get(card.language, card.language),
                    "batch": f"{card.batch.run}/{card.batch.batch}",
                    "pack": card.pack,
                    "sequence": card.sequence,
                }
            )
        sheets.append(sheet)
    html = render_to_string(
        "callcards/cards_print.html",
        {
            "sheets": sheets,
            "marks_url": _marks_url(),
            "company": companies[0],
            "title": f"{len(chosen)}",
            "columns": COLUMNS,
            "rows": ROWS,
        },
    )
    from weasyprint import HTML  # a second to import: loaded when a PDF is made, not with the admin

    pdf = HTML(string=html).write_pdf()
    with transaction.atomic():
        result = cards_transition(
            cards=Card.objects.filter(pk__in=[card.pk for card in chosen]),
            to=Status.PRINT,
            user=user,
            note="printed",
        )
        if result.refused:
            # Changed between the check and now: the PDF is not handed out, nothing moves.
            raise PrintRefused(
                f"{result.refused} of the cards changed status while the PDF was made: nothing was printed."
            )
    return pdf
