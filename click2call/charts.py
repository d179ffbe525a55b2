"""The statistics page's charts (config.charts): requests per day (or hour) stacked by outcome, and
each party's legs answered and not."""

import datetime as dt

from click2call.stats import LegFigures, Point
from config.charts import Column, Segment, segments, stacked_columns

HEIGHT = 200
OUTCOMES = [
    ("completed", "COMPLETED", "#1e7a3c"),
    ("failed_user", "FAILED CALLING TO USER", "#e0a526"),
    ("failed_company", "FAILED CALLING TO COMPANY", "#b3261e"),
    ("open", "Still open", "#7fb3e6"),
]
LEG_COLOURS = {"answered": "#0b5cad", "unanswered": "#c9ced6"}


def _label(at: dt.date | dt.datetime) -> str:
    return f"{at:%H}h" if isinstance(at, dt.datetime) else f"{at:%d/%m}"


def series_chart(points: list[Point]) -> dict:
    """Columns of the requests of each day (hour), and the few labels an axis shows under them."""
    columns: list[Column] = stacked_columns(
        [
            (_label(p.at), [(key, label, getattr(p, key), colour) for key, label, colour in OUTCOMES])
            for p in points
        ],
        height=HEIGHT,
    )
    # At most ~8 labels under the chart, evenly spread, so a phone can read them.
    step = max(1, -(-len(points) // 8))
    ticks = [(column.label, round(column.x + column.width / 2, 2)) for column in columns[::step]]
    return {
        "columns": columns,
        "ticks": ticks,
        "height": HEIGHT,
        "tallest": max((column.total for column in columns), default=0),
        "legend": [(label, colour) for _, label, colour in OUTCOMES],
    }


def leg_bars(legs: LegFigures) -> list[Segment]:
    """A party's legs as one bar: answered, then not."""
    return segments(
        [
            ("answered", "answered", legs.answered, LEG_COLOURS["answered"]),
            ("unanswered", "not answered", legs.legs - legs.answered, LEG_COLOURS["unanswered"]),
        ],
        legs.legs,
    )
