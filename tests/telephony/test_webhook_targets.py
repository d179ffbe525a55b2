"""Webhooks reach the internet only: http(s), public addresses, no redirects (unless the operator allows)."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.exceptions import ValidationError

from accounts import services as account_services
from accounts.models import Company
from telephony.events import CallEnded, CallSnapshot
from telephony.models import WebhookDelivery
from telephony.services import webhooks
from tests.telephony.factories import CallRecordFactory

pytestmark = pytest.mark.django_db


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint on this machine: what a private target would be."""

    hits: list[tuple[str, str]] = []
    redirect_to = ""

    def do_POST(self):
        Receiver.hits.append(("POST", self.path))
        self.rfile.read(int(self.headers["Content-Length"]))
        if Receiver.redirect_to:
            self.send_response(302)
            self.send_header("Location", Receiver.redirect_to)
        else:
            self.send_response(204)
        self.end_headers()

    def do_GET(self):
        Receiver.hits.append(("GET", self.path))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_port():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.hits, Receiver.redirect_to = [], ""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def delivery_to(company, url):
    # Saved without validation: a URL from before the rule, or one the setting allowed then.
    Company.objects.filter(pk=company.pk).update(webhook_url=url)
    record = CallRecordFactory(company=company)
    webhooks.webhook_deliveries_create(events=[CallEnded(record=CallSnapshot.of(record))])
    return WebhookDelivery.objects.get()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://metadata.google.internal/",
    ],
)
def test_company_refuses_non_http_and_non_public_webhook_urls(url):
    with pytest.raises(ValidationError) as error:
        account_services.company_create(name="Hooked", webhook_url=url)
    assert set(error.value.message_dict) == {"webhook_url"}


def test_public_webhook_urls_are_taken_and_private_ones_only_when_allowed(settings):
    account_services.company_create(name="Public", webhook_url="https://hooks.example.com/calls")
    account_services.company_create(name="Public IP", webhook_url="http://93.184.216.34/calls")
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    account_services.company_create(name="On premises", webhook_url="http://10.1.2.3/calls")
    with pytest.raises(ValidationError):
        account_services.company_create(name="Ftp", webhook_url="ftp://10.1.2.3/calls")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_delivery_to_a_private_address_is_refused_for_good_and_sends_nothing(company, local_port, host):
    delivery = delivery_to(company, f"http://{host}:{local_port}/hook")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("refused")
    assert Receiver.hits == []


def test_a_name_is_checked_at_delivery_against_every_address_it_resolves_to(company, monkeypatch):
    # The one fake: DNS saying a public-looking name is the metadata service.
    monkeypatch.setattr(
        webhooks.socket,
        "getaddrinfo",
        lambda host, port, **kw: [
            (2, 1, 6, "", ("93.184.216.34", port)),
            (2, 1, 6, "", ("169.254.169.254", port)),
        ],
    )
    delivery = delivery_to(company, "http://hooks.example.com/x")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (
        "failed",
        "refused: hooks.example.com is at 169.254.169.254, not a public address",
    )


def test_an_ftp_url_from_before_the_rule_is_refused_at_delivery(company):
    delivery = delivery_to(company, "ftp://127.0.0.1/x")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("failed", "refused: Use an http:// or https:// URL.")


def test_redirects_are_not_followed(company, local_port, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    Receiver.redirect_to = f"http://127.0.0.1:{local_port}/metadata"
    delivery = delivery_to(company, f"http://127.0.0.1:{local_port}/hook")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert Receiver.hits == [("POST", "/hook")]
    assert (delivery.status, delivery.last_status_code) == ("failed", 302)
    assert "redirects are not followed" in delivery.last_error


def test_private_receiver_is_reached_when_the_operator_allows_it(company, local_port, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    delivery = delivery_to(company, f"http://localhost:{local_port}/hook")
    webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, Receiver.hits) == ("delivered", [("POST", "/hook")])


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("EUR", True),
        ("JPY", True),
        ("XOF", True),
        ("XYZ", False),
        ("DEM", False),
        ("XAU", False),
        ("eur", False),
    ],
)
def test_currency_is_an_iso_4217_code_in_use(code, valid):
    if valid:
        assert account_services.company_create(name=f"Co {code}", currency=code).currency == code
    else:
        with pytest.raises(ValidationError) as error:
            account_services.company_create(name=f"Co {code}", currency=code)
        assert set(error.value.message_dict) == {"currency"}
