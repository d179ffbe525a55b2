"""PBX servers: their health as the pbx process sees it, and which process owns each."""

import datetime as dt

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from telephony.models import PbxServer


def ami_source(server: PbxServer | int) -> str:
    return f"ami:{server if isinstance(server, int) else server.pk}"


def pbx_server_state_set(
    *,
    server_id: int,
    owner: str,
    state: str,
    error: str = "",
    last_event_at: float | None = None,
    event_lag: int | None = None,
    events_timestamped: bool | None = None,
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
    return PbxServer.objects.filter(pk=server_id, lease_owner=owner).update(**fields) == 1


def pbx_server_lease_take(*, server_id: int, owner: str) -> bool:
    """Take or renew the lease on a server: granted when free, lapsed, or ours already."""
    now = timezone.now()
    return (
        PbxServer.objects.filter(pk=server_id, enabled=True)
        .filter(Q(lease_owner=owner) | Q(lease_owner="") | Q(lease_expires_at__lt=now))
        .update(lease_owner=owner, lease_expires_at=now + dt.timedelta(seconds=settings.PBX_LEASE_SECONDS))
        == 1
    )


def pbx_server_lease_release(*, server_id: int, owner: str, error: str = ""):
    """Give a server up on a clean stop, so a standby takes it at once, and say it is down."""
    PbxServer.objects.filter(pk=server_id, lease_owner=owner).update(
        lease_owner="",
        lease_expires_at=None,
        state=PbxServer.State.DOWN,
        state_changed_at=timezone.now(),
        last_error=error[:300],
    )
