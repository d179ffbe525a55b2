"""Charts drawn on the server as SVG: nothing fetched by the browser, no script.

Shapes are computed here in a box WIDTH units wide, stretched to the page's width by the template's
`viewBox` and `preserveAspectRatio="none"`, so a phone shows the same chart narrower; words and
figures are HTML beside them, which wraps and stays readable.
"""

from dataclasses import dataclass

WIDTH = 1000


@dataclass(frozen=True)
class Segment:
    """A part of a horizontal bar."""

    key: str
    label: str
    value: int
    x: float
    width: float
    colour: str


def segments(parts: list[tuple[str, str, int, str]], total: int, length: float = WIDTH) -> list[Segment]:
    """(key, label, value, colour) laid end to end along `length`, each its share of `total`;
    parts of no value are left out."""
    laid, x = [], 0.0
    for key, label, value, colour in parts:
        if value <= 0:
            continue
        width = length * value / total if total else 0.0
        laid.append(Segment(key, label, value, round(x, 2), round(width, 2), colour))
        x += width
    return laid


@dataclass(frozen=True)
class Block:
    """A part of a column, from the top of the box (y) down (height)."""

    key: str
    label: str
    value: int
    y: float
    height: float
    colour: str


@dataclass(frozen=True)
class Column:
    label: str
    x: float
    width: float
    total: int
    blocks: list[Block]


def stacked_columns(
    points: list[tuple[str, list[tuple[str, str, int, str]]]], *, height: float = 200, gap: float = 0.2
) -> list[Column]:
    """One column per (label, parts), parts stacked from the bottom, every column scaled to the
    tallest so that they compare; `gap` is the share of each slot left empty between columns."""
    tallest = max((sum(part[2] for part in parts) for _, parts in points), default=0)
    slot = WIDTH / len(points) if points else 0.0
    columns = []
    for index, (label, parts) in enumerate(points):
        total = sum(value for _, _, value, _ in parts)
        bottom, blocks = height, []
        for key, part_label, value, colour in parts:
            if value <= 0:
                continue
            size = height * value / tallest
            bottom -= size
            blocks.append(Block(key, part_label, value, round(bottom, 2), round(size, 2), colour))
        columns.append(
            Column(label, round(index * slot + slot * gap / 2, 2), round(slot * (1 - gap), 2), total, blocks)
        )
    return columns
