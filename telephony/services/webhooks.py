"""Call events POSTed to the companies' webhooks: signed, retried, never twice at once."""

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Company, generate_webhook_secret, validate_webhook_url, webhook_address_is_public
from telephony.events import CallEvent, CallSnapshot
from telephony.models import WebhookDelivery
from telephony.rows import rows_of

log = logging.getLogger(__name__)


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
    urls = dict(
        Company.objects.filter(pk__in={e.record.company_id for e in events}, active=True)
        .exclude(webhook_url="")
        .values_list("pk", "webhook_url")
    )
    items = [
        (
            e.record.company_id,
            e.webhook_event,
            urls[e.record.company_id],
            call_event_payload(e.record, e.webhook_event),
        )
        for e in events
        if e.record.company_id in urls
    ]
    if items:
        _deliver_on_commit(_deliveries_insert(items))


# A delivery as written: whose, which event, where, what; the rest starts at its defaults.
_DELIVERY_FIELDS = ["company", "event", "url", "payload", "status", "attempts", "last_error", "created_at"]


def _deliveries_insert(items: list[tuple[int, str, str, dict]]) -> list[int]:
    """Pending deliveries of (company id, event, url, payload), in one INSERT ... RETURNING id:
    the fold writes hundreds a batch, and bulk_create prepared each value through its field."""
    if not connection.features.can_return_rows_from_bulk_insert:  # SQLite before 3.35
        created = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(company_id=company, event=event, url=url, payload=payload)
            for company, event, url, payload in items
        )
        return [delivery.pk for delivery in created]
    now, pending = timezone.now(), WebhookDelivery.Status.PENDING
    rows = rows_of(WebhookDelivery, _DELIVERY_FIELDS)
    return rows.insert(rows.adapt([(*item, pending, 0, "", now) for item in items]), returning="id")


def _deliver_on_commit(delivery_ids: list[int]):
    from telephony.tasks import deliver_webhooks  # tasks import this module

    # One publish for the whole batch: a broker round trip per delivery, on the fold's thread, was
    # 40 % of its time with a webhook. robust: a broker hiccup is logged and leaves the deliveries
    # pending (never attempted), for requeue_webhooks to find.
    transaction.on_commit(lambda: deliver_webhooks.delay(delivery_ids), robust=True)


def webhook_deliveries_add(*, company: Company, items: list[tuple[str, dict]]):
    """Queue one signed POST per (event, payload) for the company, if it has a webhook URL: the
    same deliveries as call events, for the events an app keeps of its own (queue events)."""
    if not (company.active and company.webhook_url and items):
        return
    _deliver_on_commit(
        _deliveries_insert([(company.pk, event, company.webhook_url, payload) for event, payload in items])
    )


def webhook_secret_rotate(*, company: Company) -> str:
    """Give the company a new webhook signing secret and return it, to be shown once; every POST
    from now on, retries of older deliveries included, is signed with it."""
    secret = generate_webhook_secret()
    Company.objects.filter(pk=company.pk).update(webhook_secret=secret)
    company.webhook_secret = secret
    return secret


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookTransientError(Exception):
    """The receiver is unreachable or answered 429/5xx: worth another try later."""

    def __init__(self, message: str, *, attempts: int = 0):
        super().__init__(message)
        self.attempts = attempts  # of the delivery so far, this one included


WEBHOOK_TIMEOUT = 10
WEBHOOK_MAX_ATTEMPTS = 8
WEBHOOK_LEASE = dt.timedelta(seconds=WEBHOOK_TIMEOUT * 6)


class WebhookTargetRefused(OSError):
    """The URL leads to an address webhooks may not reach (WEBHOOK_ALLOW_PRIVATE_TARGETS is off)."""


def _webhook_connect(address, timeout=WEBHOOK_TIMEOUT, source_address=None, **kwargs):
    """socket.create_connection that checks every address the host resolves to, then connects to
    those very addresses: a name cannot resolve to a public address for the check and to a
    private one for the connection."""
    host, port = address
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for *_, sockaddr in infos:
            if not webhook_address_is_public(sockaddr[0]):
                raise WebhookTargetRefused(f"{host} is at {sockaddr[0]}, not a public address")
    error = OSError(f"{host} resolves to no address")
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


class _WebhookHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _webhook_connect


class _WebhookHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _webhook_connect


class _WebhookHTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_WebhookHTTPConnection, req, **kwargs)


class _WebhookHTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        return super().do_open(_WebhookHTTPSConnection, req, **kwargs)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead anywhere, a private address included: it is an answer, not followed.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxy from the environment either: the checked address must be the one connected to.
_webhook_opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}), _WebhookHTTPHandler, _WebhookHTTPSHandler, _NoRedirects
)


def public_url_open(url: str, *, method: str, data: bytes | None, headers: dict[str, str], timeout: float):
    """Open a URL a company gave (its webhook, its SMS gateway) the way webhooks are sent: the URL
    checked again first (ValidationError: it may predate the rule, or the setting changed since),
    every address its host resolves to checked at connect (a URLError whose reason is a
    WebhookTargetRefused), no proxy, no redirect followed (an HTTPError 3xx). Returns the response."""
    validate_webhook_url(url)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    return _webhook_opener.open(request, timeout=timeout)


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """POST one delivery, signed with the company's secret. Raises WebhookTransientError when
    another attempt may succeed; a 3xx or 4xx answer (but 429) or a URL leading to a non-public
    address fails the delivery for good."""
    # The lease: of two tasks for one delivery (a retry and a redelivered task, or the requeue
    # schedule), one POSTs; the other returns. It outlasts the POST's timeout.
    now = timezone.now()
    lease = now + WEBHOOK_LEASE
    taken = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
        .update(leased_until=lease, attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if not taken:
        return None
    delivery = WebhookDelivery.objects.select_related("company").get(pk=delivery_id)
    body = webhook_body(delivery.payload)
    status, error, refused = None, "", False
    try:
        response = public_url_open(
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
            timeout=WEBHOOK_TIMEOUT,
        )
        with response:
            status = response.status
    except ValidationError as exc:
        refused, error = True, f"refused: {' '.join(exc.messages)}"
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
        if 300 <= exc.code < 400:
            error += ": redirects are not followed, set the final URL"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        refused = isinstance(reason, WebhookTargetRefused)
        error = f"refused: {reason}" if refused else f"unreachable: {reason}"
    delivery.last_status_code = status
    delivery.last_error = error[:300]
    transient = not refused and (status is None or status == 429 or status >= 500)
    if status is not None and 200 <= status < 300:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    elif not transient or delivery.attempts >= WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    # Written only while the lease is still ours: a worker stalled past it (its POST answered late)
    # must not overwrite what the task that took the delivery over wrote, nor clear that task's lease.
    kept = WebhookDelivery.objects.filter(pk=delivery.pk, leased_until=lease).update(
        status=delivery.status,
        delivered_at=delivery.delivered_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        leased_until=None,
    )
    if not kept:
        log.warning(
            "Webhook delivery %s: lease lost during its POST, its outcome left to the new owner", delivery.pk
        )
        return None
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise WebhookTransientError(error or f"HTTP {status}", attempts=delivery.attempts)
    return delivery


# A batch's deliveries are POSTed one after the other; past this, the rest are handed to a task
# each, run side by side, so receivers that time out cannot keep a batch past its time limit.
WEBHOOK_BATCH_BUDGET_SECONDS = WEBHOOK_TIMEOUT * 3


@dataclass
class WebhookBatchOutcome:
    retry: list[tuple[int, int]] = field(default_factory=list)  # (delivery id, attempts so far)
    left: list[int] = field(default_factory=list)  # not attempted within the budget


def webhook_deliveries_attempt(
    *, delivery_ids: list[int], budget: float = WEBHOOK_BATCH_BUDGET_SECONDS
) -> WebhookBatchOutcome:
    """POST the deliveries of a batch in turn (webhook_delivery_attempt: each leased, so never
    twice). One failing holds back none of the others: a transient failure comes back in `retry`,
    to be retried on its own with its backoff; another error is logged and left to the requeue.
    What the budget did not reach comes back in `left`."""
    outcome = WebhookBatchOutcome()
    deadline = time.monotonic() + budget
    for number, delivery_id in enumerate(delivery_ids):
        if time.monotonic() > deadline:
            outcome.left = list(delivery_ids[number:])
            break
        try:
            webhook_delivery_attempt(delivery_id=delivery_id)
        except WebhookTransientError as exc:
            outcome.retry.append((delivery_id, exc.attempts))
        except Exception:
            # Its lease runs out and webhook_deliveries_lost finds it again: not lost, not doubled.
            log.exception("Webhook delivery %s: attempt failed", delivery_id)
    return outcome


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
