"""SMS providers: how a ticket's text reaches a technician's mobile, per the company's SmsSettings.

One interface, `SmsProvider.send(to=, text=, credentials=)`, returns the gateway's answer (its
reference for the message and its word on it) or raises SmsFailed, which says whether another try
later may help (a timeout, a 5xx, no connection) or not (a 4xx: the request itself is wrong).

- `http`: one configurable HTTP gateway (URL, GET / POST form / POST JSON, no auth / basic /
  bearer, a parameter template): covers most SMS gateways. The URL is a company's, so it is
  opened as webhooks are (telephony.services.webhooks.public_url_open): public addresses only
  unless WEBHOOK_ALLOW_PRIVATE_TARGETS, checked again at each send, no proxy, no redirect.
- `console`: writes the SMS to the worker's log (`make run`), sends nothing.
- `none`: the company sends no SMS.
"""

import base64
import json
import logging
import re
import urllib.error
import uuid
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError

from telephony.services.webhooks import WebhookTargetRefused, public_url_open
from tickets.models import SmsSettings, Technician

logger = logging.getLogger(__name__)

PLACEHOLDERS = ("to", "text", "sender", "username", "password")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_ANY_BRACES = re.compile(r"\{([^{}]*)\}")
_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_.\[\]-]{1,60}")
USER_AGENT = "callcenter-sms/1"
# A gateway's answer is a few hundred bytes; more is not read (a misconfigured URL serving a page).
MAX_ANSWER_BYTES = 64 * 1024
# Where gateways put their message id and status in a JSON answer (Twilio's sid, Vonage's
# messages[0]["message-id"], many `id` / `message_id` / `status`); the first found is kept.
REFERENCE_KEYS = (
    "message_id",
    "message-id",
    "messageId",
    "sms_id",
    "smsId",
    "sid",
    "id",
    "reference",
    "uuid",
)
STATUS_KEYS = ("status", "state", "message_status", "result")
NESTED_KEYS = ("messages", "data", "result", "message")


@dataclass(frozen=True)
class SmsSent:
    """The gateway took the message: its reference for it ("" when it gives none) and its word."""

    reference: str
    status: str


@dataclass(frozen=True)
class SmsCredentials:
    username: str
    password: str


class SmsFailed(Exception):
    """Not sent. `transient`: another try later may succeed; `status`: the gateway's answer, if any."""

    def __init__(self, message: str, *, transient: bool, status: str = ""):
        super().__init__(message)
        self.transient = transient
        self.status = status


class SmsProvider(Protocol):
    def send(self, *, to: str, text: str, credentials: SmsCredentials) -> SmsSent: ...


def sms_credentials(*, settings: SmsSettings, technician: Technician | None) -> SmsCredentials:
    """The technician's own credentials at the gateway when set (the seed's per-user SMSUser and
    SMSPassword: a provider billing per sender), the company's otherwise."""
    if technician is not None and (technician.sms_username or technician.sms_password):
        return SmsCredentials(technician.sms_username, technician.sms_password)
    return SmsCredentials(settings.username, settings.secret)


def international_number(number: str, country_prefix: str) -> str:
    """The number as the gateway gets it. With a country prefix (the seed's SMSprefix.txt, 39):
    digits in international form without + or 00 (+39347..., 0039347... and 347... -> 39347...; a
    national number's one leading trunk 0 is dropped, as dialing from abroad does). Without: as stored."""
    if not country_prefix:
        return number
    if number.startswith("+"):
        return number[1:]
    if number.startswith("00"):
        return number[2:]
    if number.startswith("0"):
        number = number[1:]
    return f"{country_prefix}{number}"


def parameters_check(parameters: str) -> None:
    """ValueError unless each non-blank line is name=value, the name plain (letters, digits, _ . - [ ]),
    and every {field} one of PLACEHOLDERS with no stray brace: the SMS settings forms' check (the
    same rule as the send's)."""
    for number, line in enumerate(parameters.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not _PARAMETER_NAME.fullmatch(name.strip()):
            raise ValueError(f"Line {number}: write name=value, a name of letters, digits, _ . - [ ]")
        for field in _ANY_BRACES.findall(value):
            if field not in PLACEHOLDERS:
                fields = " ".join("{" + p + "}" for p in PLACEHOLDERS)
                raise ValueError(f"Line {number}: unknown field {{{field}}}: use {fields}")
        if "{" in _ANY_BRACES.sub("", value) or "}" in _ANY_BRACES.sub("", value):
            raise ValueError(f"Line {number}: a brace outside a field ({{to}}, {{text}} ...)")


def validate_sms_parameters(value: str) -> None:
    """parameters_check as a form or serializer field's validator (the SMS settings' forms)."""
    try:
        parameters_check(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="parameters") from None


def parameters_fill(parameters: str, values: dict[str, str]) -> list[tuple[str, str]]:
    """The template's name=value lines, each {field} replaced once by its value (a text holding
    "{password}" stays that text: values are never filled in again)."""
    filled = []
    for line in parameters.splitlines():
        if not line.strip():
            continue
        name, _, value = line.partition("=")
        filled.append((name.strip(), _PLACEHOLDER.sub(lambda m: values[m.group(1)], value.strip())))
    return filled


class ConsoleSmsProvider:
    """The SMS written to the log, nothing sent: what `make run` shows in the worker's output."""

    def send(self, *, to: str, text: str, credentials: SmsCredentials) -> SmsSent:
        reference = f"console-{uuid.uuid4().hex[:12]}"
        logger.info("SMS to %s (console provider, not sent) %s: %s", to, reference, text)
        return SmsSent(reference=reference, status="logged")


class NoSmsProvider:
    def send(self, *, to: str, text: str, credentials: SmsCredentials) -> SmsSent:
        raise SmsFailed("the company sends no SMS (provider: none)", transient=False)


class HttpSmsProvider:
    """One HTTP request per SMS to the company's gateway, as its settings describe it."""

    def __init__(self, settings: SmsSettings):
        self.settings = settings

    def request(self, *, to: str, text: str, credentials: SmsCredentials) -> tuple[str, bytes | None, dict]:
        """The URL, body and headers of one SMS (GET: the parameters in the query string)."""
        settings = self.settings
        params = parameters_fill(
            settings.parameters,
            {
                "to": to,
                "text": text,
                "sender": settings.sender,
                "username": credentials.username,
                "password": credentials.password,
            },
        )
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json, text/plain;q=0.9, */*;q=0.5"}
        if settings.auth == SmsSettings.Auth.BASIC:
            pair = f"{credentials.username}:{credentials.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif settings.auth == SmsSettings.Auth.BEARER:
            headers["Authorization"] = f"Bearer {credentials.password}"
        url, body = settings.url, None
        if settings.method == SmsSettings.Method.GET:
            parts = urlsplit(url)
            query = "&".join(q for q in (parts.query, urlencode(params)) if q)
            url = urlunsplit(parts._replace(query=query))
        elif settings.method == SmsSettings.Method.POST_JSON:
            body = json.dumps(dict(params), ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            body = urlencode(params).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        return url, body, headers

    def send(self, *, to: str, text: str, credentials: SmsCredentials) -> SmsSent:
        url, body, headers = self.request(to=to, text=text, credentials=credentials)
        method = "GET" if self.settings.method == SmsSettings.Method.GET else "POST"
        try:
            with public_url_open(
                url, method=method, data=body, headers=headers, timeout=self.settings.timeout_seconds
            ) as response:
                return gateway_answer(response.read(MAX_ANSWER_BYTES), response.status)
        except ValidationError as exc:
            raise SmsFailed(f"refused: {' '.join(exc.messages)}", transient=False) from exc
        except urllib.error.HTTPError as exc:
            # 408 and 429: the gateway is busy or slow, not the request wrong.
            transient = exc.code >= 500 or exc.code in (408, 429)
            error = f"HTTP {exc.code} {exc.reason}"
            detail = _answer_detail(exc)
            if 300 <= exc.code < 400:
                error += ": redirects are not followed, set the final URL"
            raise SmsFailed(
                f"{error}: {detail}" if detail else error, transient=transient, status=f"HTTP {exc.code}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, WebhookTargetRefused):
                raise SmsFailed(f"refused: {reason}", transient=False) from exc
            if isinstance(reason, TimeoutError):
                reason = f"no answer within {self.settings.timeout_seconds} s"
            raise SmsFailed(f"unreachable: {reason}", transient=True) from exc


def _answer_detail(error: urllib.error.HTTPError) -> str:
    """The start of a refusal's body (the gateway's reason: "invalid number"), if it can be read."""
    try:
        return _text(error.read(200))[:120] if error.fp else ""
    except OSError:
        return ""


def _text(raw: bytes) -> str:
    return " ".join(raw.decode("utf-8", "replace").split())


def gateway_answer(raw: bytes, code: int) -> SmsSent:
    """The gateway's reference and status from a 2xx answer: a JSON object's (or its first
    message's) id and status, else a one-line plain text taken as the reference."""
    reference, status = "", ""
    try:
        answer = json.loads(raw) if raw.strip() else None
    except ValueError:
        answer = None
    candidates = [answer] if isinstance(answer, dict) else []
    if isinstance(answer, list) and answer:
        candidates.append(answer[0])
    for key in NESTED_KEYS:
        nested = answer.get(key) if isinstance(answer, dict) else None
        if isinstance(nested, list) and nested:
            nested = nested[0]
        if isinstance(nested, dict):
            candidates.append(nested)
    for candidate in candidates:
        if not isinstance(candidate, dict):
            continue
        reference = reference or _first(candidate, REFERENCE_KEYS)
        status = status or _first(candidate, STATUS_KEYS)
    if answer is None and raw.strip():
        text = _text(raw)
        if len(text) <= 100 and "<" not in text:
            reference = text
    return SmsSent(reference=reference[:100], status=(status or f"accepted (HTTP {code})")[:40])


def _first(values: dict, keys: tuple[str, ...]) -> str:
    for key in keys:
        value = values.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            return str(value)
    return ""


def sms_provider(settings: SmsSettings) -> SmsProvider:
    """The provider the company chose."""
    if settings.provider == SmsSettings.Provider.NONE:
        return NoSmsProvider()
    if settings.provider == SmsSettings.Provider.CONSOLE:
        return ConsoleSmsProvider()
    return HttpSmsProvider(settings)
