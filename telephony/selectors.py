import datetime as dt

from django.utils import timezone

from telephony.models import CallRecord, PbxServer, WebhookDelivery


def pbx_servers_enabled(*, names: list[str] | None = None) -> list[PbxServer]:
    servers = PbxServer.objects.filter(enabled=True)
    if names is not None:
        servers = servers.filter(name__in=names)
    return list(servers)


def pbx_server_is_up(server: PbxServer) -> bool:
    """Connected, by a pbx process whose lease still runs: a dead process cannot leave a server looking up."""
    return (
        server.state == PbxServer.State.CONNECTED
        and server.lease_expires_at is not None
        and server.lease_expires_at > timezone.now()
    )


# A call longer than this is taken for one whose end was lost.
LONGEST_PLAUSIBLE_CALL = dt.timedelta(hours=4)


def call_records_stale_open(*, server: PbxServer) -> int:
    """Open records older than the longest plausible call: ends the platform missed."""
    return (
        CallRecord.objects.filter(server=server, started_at__lt=timezone.now() - LONGEST_PLAUSIBLE_CALL)
        .exclude(state=CallRecord.State.ENDED)
        .count()
    )


def call_records_for_company(*, company):
    return CallRecord.objects.filter(company=company).order_by("-started_at", "-id")


def webhook_deliveries_for_company(*, company):
    return WebhookDelivery.objects.filter(company=company).order_by("-created_at", "-id")
