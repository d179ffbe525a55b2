"""The usage report's chart, drawn on the server as SVG (config.charts):
per batch, one bar of its minutes (used, remaining, lost on cards cancelled, voided or emptied by
hand) and one of its cards by status.

Bars are drawn in a 1000-unit wide box stretched to the page's width, so a phone shows the same
chart narrower; the words and figures are HTML beside them, which wraps and stays readable.
"""

from dataclasses import dataclass

from callcards.lifecycle import Status
from callcards.selectors import BatchUsage
from config.charts import WIDTH, Segment, segments

MINUTE_COLOURS = {"used": "#0b5cad", "remaining": "#7fb3e6", "lost": "#c9ced6"}
MINUTE_WORDS = {"used": "Used", "remaining": "Remaining", "lost": "Lost (cancelled, void)"}
STATUS_COLOURS = {
    Status.GENERATE: "#d9dee7",
    Status.PRINT: "#b9c3d3",
    Status.SHIP: "#8e9bb0",
    Status.ACTIVE: "#1e7a3c",
    Status.USED: "#6cbf84",
    Status.HOLD: "#e0a526",
    Status.EMPTY: "#5b6678",
    Status.CANCEL: "#c98a85",
    Status.VOID: "#b3261e",
}


@dataclass(frozen=True)
class BatchBars:
    usage: BatchUsage
    minutes: list[Segment]
    cards: list[Segment]


def usage_chart(usage: list[BatchUsage]) -> list[BatchBars]:
    """The bars of each batch: minutes scaled to the batch of the most minutes, so batches compare;
    cards as shares of the batch's cards, so its statuses compare."""
    rows = []
    for row in usage:
        lost = max(0, row.minutes_sold - row.minutes_used - row.minutes_remaining)
        rows.append((row, [("used", row.minutes_used), ("remaining", row.minutes_remaining), ("lost", lost)]))
    longest = max((sum(value for _, value in parts) for _, parts in rows), default=0)
    bars = []
    for row, parts in rows:
        total = sum(value for _, value in parts)
        length = WIDTH * total / longest if longest else 0.0
        minutes = segments(
            [(key, MINUTE_WORDS[key], value, MINUTE_COLOURS[key]) for key, value in parts], total, length
        )
        cards = segments(
            [(status, Status(status).label, n, STATUS_COLOURS[status]) for status, n in row.statuses],
            row.cards,
        )
        bars.append(BatchBars(row, minutes, cards))
    return bars


def legend() -> dict:
    return {
        "minutes": [(MINUTE_WORDS[key], colour) for key, colour in MINUTE_COLOURS.items()],
        "statuses": [(Status(status).label, colour) for status, colour in STATUS_COLOURS.items()],
    }
