import datetime as dt

from django.utils import timezone

from telephony.models import CallRecord, PbxServer, PushToken, WebhookDelivery

# A pbx process reports each connected server at least this often.
HEARTBEAT_SECONDS = 10
STALE_AFTER = dt.timedelta(seconds=HEARTBEAT_SECONDS * 4)


def pbx_servers_enabled() -> list[PbxServer]:
    return list(PbxServer.objects.filter(enabled=True))


def pbx_server_is_up(server: PbxServer) -> bool:
    """Connected, and said so recently: a dead pbx process cannot leave a server looking up."""
    return (
        server.state == PbxServer.State.CONNECTED
        and server.state_changed_at is not None
        and timezone.now() - server.state_changed_at < STALE_AFTER
    )


def call_records_for_company(*, company):
    return CallRecord.objects.filter(company=company).order_by("-started_at", "-id")


def webhook_deliveries_for_company(*, company):
    return WebhookDelivery.objects.filter(company=company).order_by("-created_at", "-id")


def push_tokens_for_company(*, company):
    return PushToken.objects.filter(company=company).order_by("-active", "-created_at", "-id")


def webhook_secret_hint(*, company) -> str:
    """Enough of the signing secret to tell which one a receiver holds, never enough to sign."""
    return f"{company.webhook_secret[:4]}…"
