"""How a card changes status: the one table every writer goes through (the admin's bulk actions,
the portal, the dial-in's billing, the command line).

GENERATE -> PRINT -> SHIP -> ACTIVE -> USED -> EMPTY is a card's life: made, printed, handed to a
shop, sold and activated, used by a first call, used up. HOLD stops a card for a while (a dispute,
a lost parcel) and lets it back where it was; CANCEL withdraws a card never sold; VOID kills a card
that was live (stolen, refunded). EMPTY, CANCEL and VOID are final.
"""

from django.db import models


class Status(models.TextChoices):
    GENERATE = "GENERATE", "Generated"
    PRINT = "PRINT", "Printed"
    SHIP = "SHIP", "Shipped"
    HOLD = "HOLD", "On hold"
    ACTIVE = "ACTIVE", "Active"
    USED = "USED", "Used"
    EMPTY = "EMPTY", "Empty"
    CANCEL = "CANCEL", "Cancelled"
    VOID = "VOID", "Void"


# status -> the statuses it may go to.
ALLOWED: dict[str, frozenset[str]] = {
    Status.GENERATE: frozenset({Status.PRINT, Status.HOLD, Status.CANCEL, Status.VOID}),
    Status.PRINT: frozenset({Status.PRINT, Status.SHIP, Status.HOLD, Status.CANCEL, Status.VOID}),
    Status.SHIP: frozenset({Status.ACTIVE, Status.HOLD, Status.CANCEL, Status.VOID}),
    # HOLD goes back to any status short of USED it could have come from; the card keeps its balance.
    Status.HOLD: frozenset(
        {Status.GENERATE, Status.PRINT, Status.SHIP, Status.ACTIVE, Status.USED, Status.CANCEL, Status.VOID}
    ),
    Status.ACTIVE: frozenset({Status.USED, Status.EMPTY, Status.HOLD, Status.VOID}),
    Status.USED: frozenset({Status.EMPTY, Status.HOLD, Status.VOID}),
    Status.EMPTY: frozenset(),
    Status.CANCEL: frozenset(),
    Status.VOID: frozenset(),
}

# A caller may dial in on these.
DIALABLE = frozenset({Status.ACTIVE, Status.USED})
# Cards whose PIN still opens something: a PIN is unique among them.
LIVE = frozenset({Status.GENERATE, Status.PRINT, Status.SHIP, Status.HOLD, Status.ACTIVE, Status.USED})
FINAL = frozenset(s for s, targets in ALLOWED.items() if not targets)


class TransitionRefused(ValueError):
    """The card cannot go from its status to the one asked."""

    def __init__(self, card_id: str, current: str, wanted: str):
        super().__init__(f"card {card_id} is {current}: it cannot become {wanted}")
        self.card_id, self.current, self.wanted = card_id, current, wanted


def allowed(current: str, wanted: str, held_from: str = "") -> bool:
    """Whether a card may go from `current` to `wanted`; a card on HOLD goes back only to the status
    it was held from (or is cancelled or voided)."""
    if wanted not in ALLOWED[current]:
        return False
    if current == Status.HOLD and wanted not in (Status.CANCEL, Status.VOID):
        return wanted == held_from
    if wanted == Status.CANCEL and current == Status.HOLD:
        return held_from in (Status.GENERATE, Status.PRINT, Status.SHIP)
    return True


def sources(wanted: str) -> frozenset[str]:
    """The statuses from which a card may become `wanted` (a bulk update's filter)."""
    return frozenset(s for s, targets in ALLOWED.items() if wanted in targets)
