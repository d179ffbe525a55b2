"""A carrier's table into a tariff, as a Celery job that never holds the database for long.

A table of 10^5 rates written in one transaction held SQLite's write lock for 20 to 39 s: the pbx
process could not renew its lease and a banner POST waited 12 s. So an import runs in two passes:

1. it checks every row (no write): one bad row refuses the file and the tariff is left as it was,
   with the problems listed by the spreadsheet's row number;
2. it writes the new and changed rates in batches of BATCH_ROWS, one short transaction each
   (an upsert on the tariff's prefix), the job's progress committed with each batch.

From the user's view it stays all or nothing for every fault in the file; only a fault of the
platform itself (a database gone, a worker killed) can stop it between two batches, and then the
job says so, how many rates were written, and that sending the same file again finishes it (the
rates already written are unchanged rows, skipped). While the batches run, a call is rated with
a rate either as it was or as the file says, never a mix within one prefix.
"""

import logging
import time
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from click2call.models import Rate, RateImport, Tariff
from click2call.resources import UnreadableFile, rate_table

logger = logging.getLogger(__name__)

BATCH_ROWS = 2000
MAX_PROBLEMS_SHOWN = 50
# A job with no progress for this long lost its worker (killed, the machine restarted): the job's
# own time limit is far shorter (click2call.tasks.rate_import_run).
STALE_AFTER = timedelta(minutes=20)
# SQLite's busy handler tries a waiting writer again at most every 100 ms: the gap between two
# batches is microseconds, so without a pause a waiting writer (the pbx process's lease) can miss
# every gap of a long import. PostgreSQL's row locks need none.
SQLITE_PAUSE_SECONDS = 0.12


class ImportStopped(Exception):
    """The job was ended by someone else (found stale) while it ran."""


def rate_import_start(*, tariff: Tariff, file_name: str, content: bytes, user=None) -> RateImport:
    """Queue the file's import into the tariff; one import at a time per tariff (a job left with no
    progress for STALE_AFTER is marked stopped first, so a killed worker never blocks the tariff)."""
    rate_imports_stale_stop(tariff=tariff)
    try:
        with transaction.atomic():
            job = RateImport.objects.create(
                tariff=tariff, file_name=file_name[:200], content=content, requested_by=user
            )
    except IntegrityError:
        raise ValidationError(
            "An import into this tariff is under way: wait for its end.", code="import_under_way"
        ) from None
    from click2call.tasks import rate_import_run  # the tasks import this module

    rate_import_run.delay_on_commit(job.pk)
    return job


def rate_imports_stale_stop(*, tariff: Tariff) -> int:
    """Active imports of the tariff with no progress for STALE_AFTER end as FAILED."""
    stale = RateImport.objects.filter(
        tariff=tariff, status__in=RateImport.ACTIVE_STATUSES, updated_at__lt=timezone.now() - STALE_AFTER
    )
    return stale.update(
        status=RateImport.Status.FAILED,
        problems=["The import stopped making progress (its worker was stopped)."],
        content=b"",
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def rate_import_run(*, rate_import_id: int) -> None:
    """Check the queued import's file, then write its rates in batches; the job row says how it
    ended. A job not queued any more (run already, or a duplicate delivery) is left alone."""
    claimed = RateImport.objects.filter(pk=rate_import_id, status=RateImport.Status.QUEUED).update(
        status=RateImport.Status.CHECKING, updated_at=timezone.now()
    )
    if not claimed:
        return
    job = RateImport.objects.select_related("tariff").get(pk=rate_import_id)
    try:
        table = rate_table(bytes(job.content), file_name=job.file_name, max_problems=MAX_PROBLEMS_SHOWN)
    except UnreadableFile as exc:
        _finish(job, RateImport.Status.REFUSED, problems=[str(exc)], problem_count=1)
        return
    except Exception:
        failure = "Stopped by a fault of the platform: nothing was written."
        _finish(job, RateImport.Status.FAILED, problems=[failure])
        raise
    if table.problems:
        _finish(job, RateImport.Status.REFUSED, problems=table.problems, problem_count=table.problem_count)
        return
    rates = Rate.objects.filter(tariff=job.tariff).values_list("prefix", "destination", "price")
    stored = {prefix: (destination, price) for prefix, destination, price in rates}
    writes = [
        Rate(tariff=job.tariff, prefix=rate.prefix, destination=rate.destination, price=rate.price)
        for rate in table.rates
        if stored.get(rate.prefix) != (rate.destination, rate.price)
    ]
    created = sum(1 for rate in writes if rate.prefix not in stored)
    _update(job, status=RateImport.Status.WRITING, rows=len(table.rates), to_write=len(writes))
    try:
        for start in range(0, len(writes), BATCH_ROWS):
            _write_batch(job, writes[start : start + BATCH_ROWS])
            if connection.vendor == "sqlite" and start + BATCH_ROWS < len(writes):
                time.sleep(SQLITE_PAUSE_SECONDS)
    except ImportStopped:
        return
    except Exception:
        logger.exception("Rate import %s stopped while writing", job.pk)
        job.refresh_from_db(fields=["written"])
        _finish(
            job,
            RateImport.Status.FAILED,
            problems=[
                f"Stopped by a fault of the platform after {job.written} of {len(writes)} new or changed "
                "rates were written: those are in the tariff, the others not yet. Send the same file "
                "again to finish (what is already in the tariff is skipped)."
            ],
        )
        raise
    _finish(job, RateImport.Status.DONE, created_count=created, changed_count=len(writes) - created)


def _write_batch(job: RateImport, rates: list[Rate]) -> None:
    # The progress and the rates commit together: `written` is what the tariff really has.
    with transaction.atomic():
        still_ours = RateImport.objects.filter(pk=job.pk, status=RateImport.Status.WRITING).update(
            written=F("written") + len(rates), updated_at=timezone.now()
        )
        if not still_ours:
            raise ImportStopped
        # An upsert, so a rate a person saved since the check (same prefix) is overwritten, not a
        # unique-constraint failure halfway.
        Rate.objects.bulk_create(
            rates,
            update_conflicts=True,
            unique_fields=["tariff", "prefix"],
            update_fields=["destination", "price"],
        )


def _update(job: RateImport, **values) -> None:
    values["updated_at"] = timezone.now()
    RateImport.objects.filter(pk=job.pk).update(**values)
    for name, value in values.items():
        setattr(job, name, value)


def _finish(job: RateImport, status: str, **values) -> None:
    # The file is not kept once read: up to 20 MB a job.
    _update(job, status=status, finished_at=timezone.now(), content=b"", **values)
