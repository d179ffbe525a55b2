"""Call events POSTed to the companies' webhooks: signed, retried, never twice at once."""

import datetime as dt
import hashlib
import hmac
import json
import urllib.error
import urllib.request

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Company
from telephony.events import CallEvent, CallSnapshot
from telephony.models import WebhookDelivery


def call_event_payload(record: CallSnapshot, event: str) -> dict:
    """The body of a delivery: the leg as it was at the event (a snapshot), asterCC's field names."""
    when = {"ringing": record.started_at, "answer": record.answered_at, "hangup": record.ended_at}[event]
    return {
        "event": event,
        "sessionid": record.linkedid or record.uniqueid,
        "uniqueid": record.uniqueid,
        "eventTime": when.isoformat() if when else None,
        "calltype": "dialout" if record.direction == "outbound" else "inbound",
        "caller": record.caller,
        "activenum": record.callee,
        "app": record.app,
        "reference": record.app_ref,
        "disposition": record.disposition,
        "duration": record.duration,
        "billsec": record.billsec,
        "hangupCause": record.hangup_cause,
    }


def webhook_deliveries_create(*, events: list[CallEvent]):
    """Queue one signed POST per call event for companies with a webhook URL, sent after commit.
    The payload is built now, from the event's snapshot: what the record was at that transition."""
    events = [e for e in events if e.webhook_event and e.record.company_id]
    if not events:
        return
    companies = {
        c.pk: c
        for c in Company.objects.filter(pk__in={e.record.company_id for e in events}, active=True).exclude(
            webhook_url=""
        )
    }
    deliveries = [
        WebhookDelivery(
            company=companies[e.record.company_id],
            event=e.webhook_event,
            url=companies[e.record.company_id].webhook_url,
            payload=call_event_payload(e.record, e.webhook_event),
        )
        for e in events
        if e.record.company_id in companies
    ]
    if not deliveries:
        return
    created = WebhookDelivery.objects.bulk_create(deliveries)
    from telephony.tasks import deliver_webhook  # tasks import this module

    for delivery in created:
        # robust: a broker hiccup is logged and leaves the delivery pending for requeue_webhooks.
        transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.delay(pk), robust=True)


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookTransientError(Exception):
    """The receiver is unreachable or answered 429/5xx: worth another try later."""


WEBHOOK_TIMEOUT = 10
WEBHOOK_MAX_ATTEMPTS = 8
WEBHOOK_LEASE = dt.timedelta(seconds=WEBHOOK_TIMEOUT * 6)


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """POST one delivery, signed with the company's secret. Raises WebhookTransientError when
    another attempt may succeed; a 4xx answer (but 429) fails the delivery for good."""
    # The lease: of two tasks for one delivery (a retry and a redelivered task, or the requeue
    # schedule), one POSTs; the other returns. It outlasts the POST's timeout.
    now = timezone.now()
    taken = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(leased_until=now + WEBHOOK_LEASE, attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if not taken:
        return None
    delivery = WebhookDelivery.objects.select_related("company").get(pk=delivery_id)
    body = webhook_body(delivery.payload)
    request = urllib.request.Request(
        delivery.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "callcenter-webhooks/1",
            "X-Signature": webhook_signature(delivery.company.webhook_secret, body),
            "X-Event": delivery.event,
            "X-Delivery": str(delivery.pk),
        },
    )
    status, error = None, ""
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        error = f"unreachable: {getattr(exc, 'reason', exc)}"
    delivery.last_status_code = status
    delivery.last_error = error[:300]
    transient = status is None or status == 429 or status >= 500
    if status is not None and 200 <= status < 300:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    elif not transient or delivery.attempts >= WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.leased_until = None
    delivery.save(update_fields=["status", "delivered_at", "last_status_code", "last_error", "leased_until"])
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise WebhookTransientError(error or f"HTTP {status}")
    return delivery


WEBHOOK_LOST_AFTER = dt.timedelta(minutes=5)
# Longer than the longest retry backoff (the task's retry_backoff_max): a retry due then was lost.
WEBHOOK_RETRY_LOST_AFTER = dt.timedelta(minutes=15)


def webhook_deliveries_lost() -> list[int]:
    """Pending deliveries whose task was lost (the broker was down at enqueue, or a retry vanished
    with its worker): never attempted for a while, or not attempted again long after the last try."""
    now = timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .filter(
            Q(attempts=0, created_at__lt=now - WEBHOOK_LOST_AFTER)
            | Q(attempts__gt=0, last_attempt_at__lt=now - WEBHOOK_RETRY_LOST_AFTER)
        )
        .values_list("pk", flat=True)
    )
