"""Cards: batches generated, and status changes. Every writer of a status goes through
`card_status_set` (one card) or `cards_transition` (a selection), which follow the table in
callcards.lifecycle and record who and when.

A batch's cards are made in chunks of CHUNK, one short transaction each with the batch's progress:
the PINs are drawn and sealed (Fernet, the costly part) outside the transaction, so SQLite's write
lock is held only for the chunk's insert and a waiting writer (the pbx process's lease) gets in
between two chunks. A generation stopped midway (a worker killed) resumes from the cards that
exist when run again; running it twice makes no card twice.
"""

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from callcards import lifecycle, pins
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, CardEvent

logger = logging.getLogger(__name__)

# Batches of this many cards or more are made by a Celery job; smaller ones at once.
BACKGROUND_FROM = 2000
CHUNK = 5000
# A chunk refused by the database (another batch took one of its PINs or card ids between the
# check and the insert) is drawn again; this many times in a row means something else is wrong.
CHUNK_ATTEMPTS = 5

# The seed's who-and-when columns each status change fills.
_STAMPS = {
    Status.ACTIVE: ("activate_user", "activate_time"),
    Status.USED: ("used_user", "used_time"),
    Status.VOID: ("void_user", "void_time"),
}


def card_status_set(
    *, card: Card, to: str, user: str = "", note: str = "", at: dt.datetime | None = None
) -> CardEvent:
    """Move a card (locked by the caller's transaction) to `to`, as the status table allows, and
    record it; `user` empty means the platform (a call's billing). Raises TransitionRefused."""
    if not lifecycle.allowed(card.status, to, card.held_from):
        raise lifecycle.TransitionRefused(card.card_id, card.status, to)
    at = at or timezone.now()
    old = card.status
    fields = ["status", "held_from", "updated_at"]
    card.held_from = old if to == Status.HOLD else ""
    card.status = to
    stamp = _STAMPS.get(to)
    if stamp:
        setattr(card, stamp[0], user)
        setattr(card, stamp[1], at)
        fields += list(stamp)
    card.save(update_fields=fields)
    return CardEvent.objects.create(
        card=card, at=at, user=user, old_status=old, new_status=to, note=note[:200]
    )


def _username(user) -> str:
    if user is None:
        return ""
    return user if isinstance(user, str) else user.get_username()


# -- batches --------------------------------------------------------------------------------------


def batch_create(
    *,
    company,
    user=None,
    run: str,
    batch: str,
    count: int,
    pack_size: int = 100,
    initial_minutes: int,
    initial_value: Decimal | int | str = 0,
    warning_minutes: int = 1,
    language: str = "en",
    did: str = "",
    queue=None,
    purchase_order: str = "",
    printer: str = "",
    background: bool | None = None,
    progress: Callable[[CardBatch], None] | None = None,
) -> CardBatch:
    """A new batch of `count` cards: made at once when small, by a Celery job (queued on commit)
    from BACKGROUND_FROM cards, or as `background` says. Raises ValidationError for a bad value,
    a queue of another company, or a run/batch the company has already."""
    card_batch = CardBatch(
        company=company,
        run=run,
        batch=batch,
        count=count,
        pack_size=pack_size,
        initial_minutes=initial_minutes,
        initial_value=initial_value,
        warning_minutes=warning_minutes,
        language=language,
        did=did,
        queue=queue,
        purchase_order=purchase_order,
        printer=printer,
        created_by=user if user is not None and not isinstance(user, str) else None,
    )
    card_batch.full_clean()
    if queue is not None and queue.company_id != company.pk:
        raise ValidationError({"queue": "A queue of the batch's company."}, code="queue_company")
    try:
        with transaction.atomic():
            card_batch.save()
    except IntegrityError:  # the same run and batch saved meanwhile
        raise ValidationError(
            "This company has a batch with this run and batch already.", code="card_batch_unique"
        ) from None
    if background is None:
        background = count >= BACKGROUND_FROM
    if background:
        from callcards.tasks import generate_batch  # the tasks import this module

        generate_batch.delay_on_commit(card_batch.pk)
    else:
        card_batch = batch_generate(batch_id=card_batch.pk, progress=progress)
    return card_batch


class GenerationStopped(Exception):
    """The batch's cards could not all be made; the batch's error says why and how far it got."""


def batch_generate(*, batch_id: int, progress: Callable[[CardBatch], None] | None = None) -> CardBatch:
    """Make the batch's missing cards, chunk by chunk, each chunk committed with the batch's
    progress; resumes after the last card made, and does nothing on a finished batch."""
    batch = CardBatch.objects.select_related("created_by").get(pk=batch_id)
    if batch.job == CardBatch.Job.DONE and batch.generated >= batch.count:
        return batch
    with transaction.atomic():
        CardBatch.objects.select_for_update().get(pk=batch.pk)
        done = Card.objects.filter(batch=batch).count()  # the truth, whatever stopped a run before
        CardBatch.objects.filter(pk=batch.pk).update(job=CardBatch.Job.RUNNING, generated=done, error="")
    batch.job = CardBatch.Job.RUNNING
    try:
        while True:
            if not _chunk_make(batch):
                break
            if progress is not None:
                progress(batch)
    except Exception as exc:
        # Never str(exc): a database's message may quote a row's values (a digest, a sealed PIN).
        done = Card.objects.filter(batch=batch).count()
        error = (
            f"Stopped after {done} of {batch.count} cards ({type(exc).__name__}); "
            "generate it again to finish."
        )
        CardBatch.objects.filter(pk=batch.pk).update(job=CardBatch.Job.FAILED, generated=done, error=error)
        logger.error(
            "Card batch %s stopped after %s of %s cards: %s", batch.pk, done, batch.count, type(exc).__name__
        )
        raise GenerationStopped(error) from None
    CardBatch.objects.filter(pk=batch.pk).update(job=CardBatch.Job.DONE, generated=batch.count, error="")
    batch.refresh_from_db()
    return batch


def _chunk_make(batch: CardBatch) -> int:
    """The next chunk of the batch's cards; how many were made (0: the batch is complete)."""
    for _attempt in range(CHUNK_ATTEMPTS):
        # `generated` is committed with each chunk's cards: it is their count (no count(*) of a
        # growing batch per chunk).
        start = CardBatch.objects.values_list("generated", flat=True).get(pk=batch.pk)
        size = min(CHUNK, batch.count - start)
        if size <= 0:
            return 0
        cards = _cards_draw(batch, start, size)
        try:
            with transaction.atomic():
                # Another run of the same batch (a duplicate delivery of its task) made cards meanwhile:
                # its cards stand, this chunk is drawn again after them.
                locked = CardBatch.objects.select_for_update().get(pk=batch.pk)
                if locked.generated != start:
                    continue
                _cards_insert(cards)
                locked.generated = start + size
                locked.job = CardBatch.Job.RUNNING
                locked.save(update_fields=["generated", "job"])
        except IntegrityError:
            continue  # a card id or live PIN taken since the check: drawn again
        batch.generated = start + size
        return size
    raise GenerationStopped(f"chunk refused {CHUNK_ATTEMPTS} times in a row")


# The columns a new card fills, in the order of the rows _cards_draw makes.
_INSERT_FIELDS = (
    "company", "batch", "card_id", "pin_sealed", "pin_digest", "pack", "sequence", "status",
    "held_from", "balance_minutes", "warning_minutes", "queue", "did", "language", "name", "email",
    "comments", "create_user", "create_time", "activate_user", "used_user", "void_user", "updated_at",
)  # fmt: skip


def _cards_insert(rows: list[tuple]) -> None:
    """The chunk's cards in one statement: bulk_create's per-value preparation was 2/3 of the time
    of a batch (the values here are plain strings and integers, times adapted once)."""
    quote = connection.ops.quote_name
    columns = [Card._meta.get_field(name).column for name in _INSERT_FIELDS]
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(Card._meta.db_table), ", ".join(quote(c) for c in columns), ", ".join(["%s"] * len(columns))
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY: an executemany of 5,000 INSERTs took 0.9 s on PostgreSQL, COPY a tenth of it.
            copy_sql = "COPY {} ({}) FROM STDIN".format(
                quote(Card._meta.db_table), ", ".join(quote(c) for c in columns)
            )
            with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(sql, rows)


def _cards_draw(batch: CardBatch, start: int, size: int) -> list[tuple]:
    """Rows of `size` cards after the `start` first: card ids and PINs unique within the chunk and
    against the cards stored (ids among all, PINs among the live ones)."""
    card_ids = _unique_draw(size, pins.card_id_draw, _taken_card_ids)
    pin_by_digest: dict[str, str] = {}

    def digests_draw(n: int) -> list[str]:
        drawn = []
        for _ in range(n):
            pin = pins.pin_draw()
            digest = pins.pin_digest(pin)
            pin_by_digest[digest] = pin
            drawn.append(digest)
        return drawn

    digests = _unique_draw(size, None, _taken_digests, draw_many=digests_draw)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    username = _username(batch.created_by)
    rows = []
    for offset, (card_id, digest) in enumerate(zip(card_ids, digests, strict=True)):
        sequence = start + offset + 1
        rows.append(
            (
                batch.company_id,
                batch.pk,
                card_id,
                pins.pin_seal(pin_by_digest[digest]),
                digest,
                (sequence - 1) // batch.pack_size + 1,
                sequence,
                Status.GENERATE.value,
                "",
                batch.initial_minutes,
                batch.warning_minutes,
                batch.queue_id,
                batch.did,
                batch.language,
                "",
                "",
                "",
                username,
                now,
                "",
                "",
                "",
                now,
            )  # fmt: skip
        )
    return rows


def _unique_draw(size, draw_one, taken, *, draw_many=None) -> list[str]:
    """`size` distinct values none of which `taken` finds stored; collisions drawn again."""
    draw_many = draw_many or (lambda n: [draw_one() for _ in range(n)])
    values: list[str] = []
    seen: set[str] = set()
    while len(values) < size:
        fresh = [v for v in dict.fromkeys(draw_many(size - len(values))) if v not in seen]
        stored = taken(fresh)
        for value in fresh:
            if value not in stored:
                seen.add(value)
                values.append(value)
    return values


def _stored(column: str, values: list[str], *, live_only: bool) -> set[str]:
    """Which of the values a card has in `column` (among the live cards only, if asked)."""
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        # One array parameter: psycopg spent 0.1 s composing a query of 5,000 parameters.
        sql, params = (
            f"SELECT {quote(column)} FROM {quote(Card._meta.db_table)} WHERE {quote(column)} = ANY(%s)",
            [values],
        )
    else:
        marks = ", ".join(["%s"] * len(values))
        sql, params = (
            f"SELECT {quote(column)} FROM {quote(Card._meta.db_table)} WHERE {quote(column)} IN ({marks})",
            values,
        )
    if live_only:
        # Written out as the partial unique index's predicate is, so the index serves the lookup
        # (with the statuses as parameters, SQLite scanned the table: minutes for a million cards).
        statuses = ", ".join(f"'{status}'" for status in sorted(lifecycle.LIVE))
        sql += f" AND {quote('status')} IN ({statuses})"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _taken_card_ids(values: list[str]) -> set[str]:
    return _stored("card_id", values, live_only=False)


def _taken_digests(values: list[str]) -> set[str]:
    return _stored("pin_digest", values, live_only=True)


# -- bulk status changes --------------------------------------------------------------------------

# `to` of cards_transition for "back where it was held from" (each card its own held_from).
RELEASE = "RELEASE"


@dataclasses.dataclass(frozen=True)
class TransitionResult:
    changed: int
    refused: int


def _target(status: str, held_from: str, to: str) -> str | None:
    """Where a card of (status, held_from) goes when asked `to`; None when the table refuses it."""
    if to == RELEASE:
        return (
            held_from if status == Status.HOLD and lifecycle.allowed(status, held_from, held_from) else None
        )
    return to if lifecycle.allowed(status, to, held_from) else None


def cards_transition_preview(*, cards, to: str) -> TransitionResult:
    """How many of the cards `cards_transition` would change now, and how many it would refuse."""
    changed = refused = 0
    groups = cards.order_by().values_list("status", "held_from").annotate(n=Count("id"))
    for status, held_from, n in groups:
        if _target(status, held_from, to):
            changed += n
        else:
            refused += n
    return TransitionResult(changed=changed, refused=refused)


def cards_transition(*, cards, to: str, user, note: str = "") -> TransitionResult:
    """Move every card of the queryset the table lets go to `to` (RELEASE: each card on HOLD back
    to its held_from), recording an event per card; the others are counted as refused. The cards
    are locked for the change, so a concurrent change is either seen or waited for."""
    username = _username(user)
    now = timezone.now()
    changed = refused = 0
    with transaction.atomic():
        selected = Card.objects.filter(pk__in=cards.order_by().values("pk"))
        rows = list(selected.select_for_update().order_by().values_list("pk", "status", "held_from"))
        groups: dict[tuple[str, str], list[int]] = {}
        for pk, status, held_from in rows:
            groups.setdefault((status, held_from), []).append(pk)
        events = []
        for (status, held_from), ids in groups.items():
            target = _target(status, held_from, to)
            if target is None:
                refused += len(ids)
                continue
            values = {
                "status": target,
                "held_from": status if target == Status.HOLD else "",
                "updated_at": now,
            }
            stamp = _STAMPS.get(target)
            if stamp:
                values |= {stamp[0]: username, stamp[1]: now}
            group = selected.filter(status=status, held_from=held_from)
            updated = group.update(**values)
            if updated != len(ids):  # the rows are locked: only a bug in the locking gets here
                raise RuntimeError(f"{updated} of {len(ids)} cards changed while locked")
            changed += updated
            events += [
                CardEvent(
                    card_id=pk, at=now, user=username, old_status=status, new_status=target, note=note[:200]
                )
                for pk in ids
            ]
        CardEvent.objects.bulk_create(events, batch_size=1000)
    return TransitionResult(changed=changed, refused=refused)
