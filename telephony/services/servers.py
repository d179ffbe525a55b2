"""PBX servers: their health as the pbx process sees it, and which process owns each.

A pbx process owns a server through a lease: an owner, an expiry it renews, and an epoch that
grows at each take-over. The epoch is the fencing token: every write the owner makes for the
server (a fold, a reconcile, a health report, an app's `ctx.db` and the PBX handle's claims)
checks owner and epoch in its own transaction (`pbx_server_lease_check`, or a conditional update),
so once a standby took the server over, nothing the old owner still had in hand lands, however
long it was frozen and whatever its clock says. An app's reads (`ctx.read`) are not fenced: what
it does with them goes through a fenced write or the AMI session, which a fenced link closes.
"""

import dataclasses
import datetime as dt
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from telephony.models import PbxServer


class LeaseLost(Exception):
    """Another pbx process took the server over: what this one still had to write for it is dropped."""


@dataclasses.dataclass(frozen=True)
class Lease:
    """A pbx process's hold on one server: its owner name and the epoch of its take-over."""

    server_id: int
    owner: str
    epoch: int


@dataclasses.dataclass(frozen=True)
class LeaseLook:
    """The outcome of a look at a server's lease: the lease now held (None: not ours), and, when
    another process holds it, when that lease lapses unrenewed."""

    lease: Lease | None
    holder_expires_at: dt.datetime | None = None
    waited: float = 0.0


def ami_source(server: PbxServer | int) -> str:
    return f"ami:{server if isinstance(server, int) else server.pk}"


def lease_lock_wait_max() -> float:
    # A look normally waits for one fold transaction at most; longer, the database was busy.
    return settings.PBX_LEASE_RENEW_SECONDS / 2


def _held_by(owner: str, lease: Lease | None) -> dict:
    # The rows a write may touch: the lease's owner and epoch, or (no lease given) the owner alone.
    if lease is None:
        return {"lease_owner": owner}
    return {"lease_owner": lease.owner, "lease_epoch": lease.epoch}


def pbx_server_lease_check(*, lease: Lease):
    """Inside the caller's transaction: raise LeaseLost unless `lease` still holds its server.
    The server's row is held (shared) until the transaction ends, so a take-over, which updates
    it, either committed before (and this sees it) or waits for this transaction to end."""
    if not connection.in_atomic_block:
        raise RuntimeError("a lease is checked inside the transaction it fences")
    table = connection.ops.quote_name(PbxServer._meta.db_table)
    # SQLite: the transaction is BEGIN IMMEDIATE (config.env), the whole database is ours already.
    lock = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT lease_owner, lease_epoch FROM {table} WHERE id = %s{lock}", [lease.server_id])
        row = cursor.fetchone()
    if row is None or (row[0], row[1]) != (lease.owner, lease.epoch):
        holder = f"{row[0] or 'nobody'} (epoch {row[1]})" if row else "nobody (server deleted)"
        raise LeaseLost(f"PBX server {lease.server_id}: lease epoch {lease.epoch} lost; now held by {holder}")


def pbx_server_state_set(
    *,
    server_id: int,
    owner: str,
    state: str,
    error: str = "",
    last_event_at: float | None = None,
    event_lag: int | None = None,
    events_timestamped: bool | None = None,
    lease: Lease | None = None,
) -> bool:
    """Record a server's connection state as its owning pbx process sees it; False when `owner`
    no longer holds the lease (another process took the server over): its word no longer counts."""
    fields = {"state": state, "state_changed_at": timezone.now(), "last_error": error[:300]}
    if last_event_at is not None:
        fields["last_event_at"] = dt.datetime.fromtimestamp(last_event_at, dt.UTC)
    if event_lag is not None:
        fields["event_lag"] = event_lag
    if events_timestamped is not None:
        fields["events_timestamped"] = events_timestamped
    held = _held_by(owner, lease)
    return PbxServer.objects.filter(pk=server_id, **held).update(**fields) == 1


def pbx_server_lease_take(
    *,
    server_id: int,
    owner: str,
    held: Lease | None = None,
    take_over: bool = True,
    take_free: bool = True,
    freed_before: dt.datetime | None = None,
) -> LeaseLook:
    """Renew the lease `held`, or take the server when it is free or its lease lapsed: a take-over
    starts a new epoch. A lapsed lease is not taken when `take_over` is False (the caller's last look
    found the database busy) or when this look itself waited long for the row: a lease that lapsed
    while the database made everybody wait says nothing of its owner, whose renewal may be queued
    behind the same lock. The owner renews as long as nobody took over, lapsed or not.
    A standby (`manage.py pbx --standby`) leaves a free server to the processes that name it: it
    takes one only when `take_free`, and, with `freed_before`, only one released before that time
    (an owner restarting takes its own back first); a lapsed lease (its owner died) it takes as any
    process does."""
    asked = time.monotonic()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A row held by a frozen owner mid-fold (FOR SHARE) would make this look wait forever,
            # and the looks of this process's other servers behind it: past the wait a look allows,
            # it fails (OperationalError), which the caller takes as a busy database.
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{int(lease_lock_wait_max() * 1000)}ms'")
        server = (
            PbxServer.objects.select_for_update()
            .filter(pk=server_id, enabled=True)
            .only("lease_owner", "lease_expires_at", "lease_epoch", "state_changed_at")
            .first()
        )
        waited = time.monotonic() - asked
        if server is None:
            return LeaseLook(None, waited=waited)
        now = timezone.now()
        expires_at = now + dt.timedelta(seconds=settings.PBX_LEASE_SECONDS)
        rows = PbxServer.objects.filter(pk=server_id)
        if held is not None and (server.lease_owner, server.lease_epoch) == (held.owner, held.epoch):
            rows.update(lease_expires_at=expires_at)
            return LeaseLook(held, waited=waited)
        released = not server.lease_owner or server.lease_expires_at is None
        if released and not (
            take_free
            and (
                freed_before is None or not server.state_changed_at or server.state_changed_at <= freed_before
            )
        ):
            return LeaseLook(None, waited=waited)
        lapsed = released or server.lease_expires_at < now
        if not released and (not take_over or waited > lease_lock_wait_max()):
            lapsed = False
        if not lapsed and server.lease_owner != owner:
            return LeaseLook(None, server.lease_expires_at, waited)
        # Free, lapsed, or ours under an epoch this process no longer holds: a new epoch either way.
        epoch = server.lease_epoch + 1
        rows.update(lease_owner=owner, lease_epoch=epoch, lease_expires_at=expires_at)
        return LeaseLook(Lease(server_id, owner, epoch), waited=waited)


def pbx_server_lease_release(*, server_id: int, owner: str, error: str = "", lease: Lease | None = None):
    """Give a server up on a clean stop, so a standby takes it at once, and say it is down."""
    held = _held_by(owner, lease)
    PbxServer.objects.filter(pk=server_id, **held).update(
        lease_owner="",
        lease_expires_at=None,
        state=PbxServer.State.DOWN,
        state_changed_at=timezone.now(),
        last_error=error[:300],
    )
