"""Recordings kept as long as their line says (TicketLine.retention_days), then deleted.

A call's recording is a path relative to TICKETS_RECORDING_DIR. Once its call started more than the
line's retention ago, the file is deleted and the call's recording_deleted_at set; the call and its
hops stay in the log. The file is deleted first and the row marked after, by a conditional update:
two workers running at once delete nothing twice, and a file already gone (deleted by hand, by the
other worker) counts as deleted. A path that leads outside the directory (an absolute one, `..`, a
symbolic link out) is never touched: it is logged and left for someone to look at.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from tickets.models import TicketCall, TicketLine

logger = logging.getLogger(__name__)

CHUNK = 500


def recording_dir() -> Path:
    # The call part's setting; the default it documents until it is there.
    return Path(getattr(settings, "TICKETS_RECORDING_DIR", settings.VAR_DIR / "recordings"))


def recording_path(relative: str, *, root: Path | None = None) -> Path | None:
    """The file of a recording, or None when the path would lead outside the recording directory."""
    root = (root or recording_dir()).resolve()
    if not relative or Path(relative).is_absolute():
        return None
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path != root else None


@dataclass
class Expired:
    deleted: list[int] = field(default_factory=list)  # call ids whose file was deleted, or already gone
    refused: list[int] = field(default_factory=list)  # a path outside the directory: left alone
    failed: list[int] = field(default_factory=list)  # the file could not be deleted: tried again next run


def recordings_expire(*, now: dt.datetime | None = None) -> Expired:
    """Delete the recordings older than their line's retention (by the call's start) and mark their
    calls; each deletion, refusal and failure is logged."""
    now = now or timezone.now()
    root = recording_dir()
    outcome = Expired()
    days_in_use = TicketLine.objects.values_list("retention_days", flat=True).distinct()
    for days in sorted(set(days_in_use)):
        due = (
            TicketCall.objects.filter(
                line__retention_days=days,
                started_at__lt=now - dt.timedelta(days=days),
                recording_deleted_at__isnull=True,
            )
            .exclude(recording="")
            .values_list("pk", "recording", "line_id")
            .order_by("pk")
        )
        for call_id, relative, line_id in due.iterator(chunk_size=CHUNK):
            _expire_one(call_id, relative, line_id, days, root, now, outcome)
    if outcome.deleted or outcome.refused or outcome.failed:
        logger.info(
            "recordings retention: %d deleted, %d refused (outside %s), %d failed",
            len(outcome.deleted),
            len(outcome.refused),
            root,
            len(outcome.failed),
        )
    return outcome


def _expire_one(call_id, relative, line_id, days, root, now, outcome: Expired) -> None:
    path = recording_path(relative, root=root)
    if path is None:
        logger.warning(
            "recording %r of ticket call %s is outside %s: not deleted, look at it", relative, call_id, root
        )
        outcome.refused.append(call_id)
        return
    try:
        path.unlink()
        how = "deleted"
    except FileNotFoundError:
        how = "already gone"
    except OSError as exc:
        logger.error("recording %s of ticket call %s could not be deleted: %s", path, call_id, exc)
        outcome.failed.append(call_id)
        return
    marked = TicketCall.objects.filter(pk=call_id, recording_deleted_at__isnull=True).update(
        recording_deleted_at=now
    )
    if marked:
        logger.info(
            "recording %s of ticket call %s (line %s, kept %d days) %s", path, call_id, line_id, days, how
        )
        outcome.deleted.append(call_id)
