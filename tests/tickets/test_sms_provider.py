"""The HTTP SMS provider against a real HTTP server on 127.0.0.1 (tests.tickets.sms_gateway): each
method and auth, the parameters filled and URL-encoded, per-technician credentials, the gateway's
answers (reference, 4xx, 5xx, slow, refused), and its URL held to the webhooks' rule."""

import base64
import json
import logging
import socket

import pytest
from django.core.exceptions import ValidationError

from telephony.services import webhooks
from tests.tickets.sms_gateway import gateway_running
from tickets.models import SmsSettings, Technician
from tickets.sms import (
    ConsoleSmsProvider,
    HttpSmsProvider,
    SmsCredentials,
    SmsFailed,
    SmsSent,
    gateway_answer,
    international_number,
    parameters_check,
    sms_credentials,
    sms_provider,
    validate_sms_parameters,
)

# What a caller ID or a template can put in a text: accents and a euro sign, CR/LF, commas, & and =.
HOSTILE = "Fuga di gas, via Città 3 & 4 = urgente €\r\nTicket_12"
COMPANY = SmsCredentials("acme", "s3cret&=")


@pytest.fixture
def gateway(settings):
    with gateway_running(settings) as running:
        yield running


def http_settings(gateway, **fields) -> SmsSettings:
    values = {
        "provider": SmsSettings.Provider.HTTP,
        "url": gateway.url,
        "method": SmsSettings.Method.POST_FORM,
        "parameters": "to={to}\ntext={text}",
        "timeout_seconds": 5,
    }
    return SmsSettings(**(values | fields))


def send(settings, to="393471112233", text="Ticket_1", credentials=COMPANY) -> SmsSent:
    return HttpSmsProvider(settings).send(to=to, text=text, credentials=credentials)


def test_get_puts_every_parameter_url_encoded_in_the_query(gateway):
    settings = http_settings(
        gateway,
        url=gateway.url + "?api=2",
        method=SmsSettings.Method.GET,
        parameters="user={username}\npass={password}\nfrom={sender}\nto={to}\nmsg={text}\nflash=0",
        sender="Gas Co",
    )
    sent = send(settings, text=HOSTILE)
    (request,) = gateway.received
    assert request.method == "GET" and request.body == b""
    assert request.query == [
        ("api", "2"),
        ("user", "acme"),
        ("pass", "s3cret&="),
        ("from", "Gas Co"),
        ("to", "393471112233"),
        ("msg", HOSTILE),
        ("flash", "0"),
    ]
    # Nothing of the text leaks into the query's syntax: each separator is escaped.
    raw = request.raw_query
    assert "%2C" in raw and "%26" in raw and "%3D" in raw and "%0D%0A" in raw and "%E2%82%AC" in raw
    assert raw.count("&") == 6 and "\r" not in raw and " " not in raw
    assert sent == SmsSent(reference="gw-1", status="queued")


def test_post_form_sends_the_parameters_as_a_form_body(gateway):
    send(http_settings(gateway, parameters="to={to}\r\ntext = {text}\r\n\r\ntype=text"), text=HOSTILE)
    (request,) = gateway.received
    assert request.method == "POST" and request.path == "/send"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert request.form == [("to", "393471112233"), ("text", HOSTILE), ("type", "text")]


def test_post_json_sends_the_parameters_as_a_json_object(gateway):
    send(http_settings(gateway, method=SmsSettings.Method.POST_JSON, sender="Gas Co"), text=HOSTILE)
    (request,) = gateway.received
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.body) == {"to": "393471112233", "text": HOSTILE}


def test_a_value_holding_a_field_name_is_not_filled_in_again(gateway):
    send(http_settings(gateway, parameters="text={text}\nkey={password}"), text="call {password} now")
    assert gateway.received[0].form == [("text", "call {password} now"), ("key", "s3cret&=")]


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (SmsSettings.Auth.NONE, None),
        (SmsSettings.Auth.BASIC, "Basic " + base64.b64encode(b"acme:s3cret&=").decode()),
        (SmsSettings.Auth.BEARER, "Bearer s3cret&="),
    ],
)
def test_each_auth_sends_its_header(gateway, auth, expected):
    send(http_settings(gateway, auth=auth))
    assert gateway.received[0].headers.get("Authorization") == expected


def test_a_technicians_own_credentials_replace_the_companys(gateway):
    settings = http_settings(
        gateway,
        auth=SmsSettings.Auth.BASIC,
        username="acme",
        secret="company-secret",
        parameters="to={to}\nuser={username}\npassword={password}",
    )
    own = Technician(sms_username="tech731", sms_password="p@ss:731")
    plain = Technician(sms_username="", sms_password="")
    send(settings, credentials=sms_credentials(settings=settings, technician=own))
    send(settings, credentials=sms_credentials(settings=settings, technician=plain))
    send(settings, credentials=sms_credentials(settings=settings, technician=None))  # technician deleted
    mine, *companys = gateway.received
    assert mine.headers["Authorization"] == "Basic " + base64.b64encode(b"tech731:p@ss:731").decode()
    assert mine.form[1:] == [("user", "tech731"), ("password", "p@ss:731")]
    company_basic = "Basic " + base64.b64encode(b"acme:company-secret").decode()
    for request in companys:
        assert request.form[1:] == [("user", "acme"), ("password", "company-secret")]
        assert request.headers["Authorization"] == company_basic


@pytest.mark.parametrize(
    ("number", "prefix", "expected"),
    [
        ("3471112233", "39", "393471112233"),  # the seed's Italian mobile
        ("+393471112233", "39", "393471112233"),
        ("00393471112233", "39", "393471112233"),
        ("01711234567", "49", "491711234567"),  # a national trunk 0 dropped
        ("+441234567890", "39", "441234567890"),  # a foreign number keeps its own country
        ("3471112233", "", "3471112233"),
        ("+393471112233", "", "+393471112233"),
    ],
)
def test_the_country_prefix_makes_national_numbers_international(number, prefix, expected):
    assert international_number(number, prefix) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b'{"message_id": "abc", "status": "queued"}', SmsSent("abc", "queued")),
        (b'{"sid": "SM123", "status": "accepted"}', SmsSent("SM123", "accepted")),  # Twilio's shape
        (
            b'{"message-count": "1", "messages": [{"message-id": "0A00", "status": "0"}]}',
            SmsSent("0A00", "0"),
        ),  # Vonage's
        (b'{"data": {"id": 42}}', SmsSent("42", "accepted (HTTP 200)")),
        (b"OK 1234567\n", SmsSent("OK 1234567", "accepted (HTTP 200)")),  # a plain-text gateway
        (b"", SmsSent("", "accepted (HTTP 200)")),
        (b"<html><body>" + b"x" * 200 + b"</body></html>", SmsSent("", "accepted (HTTP 200)")),
        (b'{"id": true, "status": {"deep": 1}}', SmsSent("", "accepted (HTTP 200)")),
    ],
)
def test_the_gateways_reference_and_status_are_read_from_its_answer(gateway, answer, expected):
    gateway.answers.append((200, answer))
    assert send(http_settings(gateway)) == expected


def test_a_long_reference_is_cut_to_the_fields_size():
    sent = gateway_answer(json.dumps({"id": "r" * 300, "status": "s" * 80}).encode(), 200)
    assert (len(sent.reference), len(sent.status)) == (100, 40)


@pytest.mark.parametrize(("code", "transient"), [(400, False), (401, False), (404, False), (422, False)])
def test_a_client_error_fails_for_good_with_the_gateways_reason(gateway, code, transient):
    gateway.answers.append((code, b"invalid destination number"))
    with pytest.raises(SmsFailed) as failed:
        send(http_settings(gateway))
    assert failed.value.transient is transient
    assert failed.value.status == f"HTTP {code}"
    assert str(failed.value).endswith(": invalid destination number")


@pytest.mark.parametrize("code", [500, 502, 503, 429, 408])
def test_a_server_error_or_throttling_may_pass(gateway, code):
    gateway.answers.append((code, b""))
    with pytest.raises(SmsFailed) as failed:
        send(http_settings(gateway))
    assert failed.value.transient and str(failed.value).startswith(f"HTTP {code}")


def test_a_redirect_is_not_followed(gateway):
    gateway.answers.append((302, b""))
    with pytest.raises(SmsFailed, match="redirects are not followed") as failed:
        send(http_settings(gateway))
    assert not failed.value.transient and len(gateway.received) == 1


def test_a_gateway_slower_than_the_timeout_is_given_up_and_may_be_tried_again(gateway):
    gateway.slow = 1
    with pytest.raises(SmsFailed) as failed:
        send(http_settings(gateway, timeout_seconds=1))
    assert failed.value.transient
    assert str(failed.value) == "unreachable: no answer within 1 s"
    assert len(gateway.received) == 1  # it got there; the answer did not come back in time


def test_a_refused_connection_may_pass(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with socket.socket() as closed:  # bound, never listening: the port refuses connections
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/send"
        with pytest.raises(SmsFailed, match="^unreachable: .*refused") as failed:
            send(SmsSettings(provider="http", url=url, parameters="to={to}", timeout_seconds=5))
    assert failed.value.transient


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_private_gateway_is_refused_for_good_unless_the_operator_allows_it(gateway, settings, host):
    url = f"http://{host}:{gateway.port}/send"
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(SmsFailed, match="^refused: .*not a public address") as failed:
        send(http_settings(gateway, url=url))
    assert not failed.value.transient and gateway.received == []
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    send(http_settings(gateway, url=url))
    assert len(gateway.received) == 1


def test_a_name_resolving_to_a_private_address_is_refused_at_the_send(gateway, settings, monkeypatch):
    """The URL passed the check at save (a public-looking name); at the send its host resolves to
    this machine: refused before connecting."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    # The one fake: DNS pointing the gateway's name at 127.0.0.1 (where the real server listens).
    monkeypatch.setattr(
        webhooks.socket, "getaddrinfo", lambda host, port, **kw: [(2, 1, 6, "", ("127.0.0.1", port))]
    )
    with pytest.raises(SmsFailed, match="^refused: sms.example.com is at 127.0.0.1") as failed:
        send(http_settings(gateway, url=f"http://sms.example.com:{gateway.port}/send"))
    assert not failed.value.transient and gateway.received == []


@pytest.mark.django_db
def test_the_settings_refuse_a_private_or_non_http_url_at_save(company, settings):
    sms = SmsSettings(company=company, provider="http", url="http://192.168.1.10/send")
    with pytest.raises(ValidationError) as error:
        sms.full_clean()
    assert set(error.value.message_dict) == {"url"}
    sms.url = "ftp://sms.example.com/send"
    with pytest.raises(ValidationError):
        sms.full_clean()
    sms.url = "https://sms.example.com/send"
    sms.full_clean()
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    sms.url = "http://192.168.1.10/send"
    sms.full_clean()


def test_the_console_provider_logs_the_sms_and_sends_nothing(caplog):
    provider = sms_provider(SmsSettings(provider=SmsSettings.Provider.CONSOLE))
    assert isinstance(provider, ConsoleSmsProvider)
    with caplog.at_level(logging.INFO, logger="tickets.sms"):
        sent = provider.send(to="393471112233", text="Ticket_7", credentials=COMPANY)
    assert sent.status == "logged" and sent.reference.startswith("console-")
    (record,) = caplog.records
    assert record.getMessage() == (
        f"SMS to 393471112233 (console provider, not sent) {sent.reference}: Ticket_7"
    )
    assert COMPANY.password not in caplog.text


def test_no_provider_fails_for_good():
    with pytest.raises(SmsFailed, match="provider: none") as failed:
        sms_provider(SmsSettings(provider=SmsSettings.Provider.NONE)).send(
            to="1", text="t", credentials=COMPANY
        )
    assert not failed.value.transient


@pytest.mark.parametrize(
    "parameters",
    ["to={to}\ntext={text}", "api_key={password}\nfrom={sender}\n\nto=+{to}\nmsg={text}\nflag=1", ""],
)
def test_parameter_templates_the_settings_form_takes(parameters):
    parameters_check(parameters)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ("to={to}\ntext={body}", "Line 2: unknown field {body}"),
        ("to={to.real}", "Line 1: unknown field {to.real}"),
        ("to={to[0]}", "Line 1: unknown field {to[0]}"),
        ("to={to}\njust text", "Line 2: write name=value"),
        ("={text}", "Line 1: write name=value"),
        ("{to}={text}", "Line 1: write name=value, a name of letters"),
        ("to={to}\ntext={text}\nkey={secret}", "Line 3: unknown field {secret}"),
        ("text={text", "Line 1: a brace outside a field"),
    ],
)
def test_parameter_templates_the_settings_form_refuses(parameters, message):
    with pytest.raises(ValueError, match="^" + message.replace("[", r"\[").replace("{", r"\{")):
        parameters_check(parameters)


def test_the_settings_forms_validator_names_the_line():
    validate_sms_parameters("to={to}\ntext={text}")
    with pytest.raises(ValidationError) as error:
        validate_sms_parameters("to={to}\nmsg={message}")
    assert error.value.messages == [
        "Line 2: unknown field {message}: use {to} {text} {sender} {username} {password}"
    ]
