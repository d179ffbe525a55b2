"""Hostile input as data, and the assertions every API's hostile-input tests share.

A hostile-input test module per API (tests/<app>/test_api_hostile.py) sends these
payloads and asserts with `assert_rejects_cleanly` (a 4xx whose JSON body says what
was wrong) or `assert_answers_cleanly` (any answer but a 5xx, for values a service may
take or refuse). A 500 is always a failure; so is an error body that is not JSON.
"""

import json

from django.conf import settings

# Bodies that are not the JSON they claim to be; each must be a 400.
MALFORMED_JSON = {
    "empty object missing its end": b"{",
    "trailing comma": b'{"a": 1,}',
    "single quotes": b"{'a': 1}",
    "bare word": b"ringing",
    "two documents": b"{}{}",
    "NaN": b'{"a": NaN}',
    "Infinity": b'{"a": -Infinity}',
    "number too large for a double": b'{"a": 1e400}',
    "integer of 5000 digits": b'{"a": ' + b"9" * 5000 + b"}",
    "duplicate key": b'{"a": 1, "a": 2}',
    "not UTF-8": b'{"a": "\xff\xfe"}',
    "UTF-16": '{"a": 1}'.encode("utf-16"),
    "unpaired surrogate": b'{"a": "\\ud800"}',
    "NUL byte outside a string": b'{"a": 1}\x00',
}

# 1,500 nested arrays, 3 KB: Python's json recurses once per level.
DEEP_NESTING = b"[" * 1500 + b"]" * 1500

# Values of the wrong JSON type for a field that takes a string or a number.
WRONG_TYPES = {
    "null": None,
    "true": True,
    "list": ["a"],
    "object": {"a": 1},
    "negative": -1,
    "float": 1.5,
    "huge integer": 10**30,
}

# Times no call ever had: a service takes or refuses them, never fails on them.
ABSURD_TIMES = {
    "last second of year 9999": "9999-12-31 23:59:59",
    "year 1": "0001-01-01 00:00:00",
    "year 9000": "9000-06-15 12:00:00",
    "epoch year 9000": "221845392000",
    "epoch beyond any calendar": "99999999999999999999",
    "epoch with a dot": "1795422307.5",
    "negative epoch": "-1",
    "epoch in Arabic-Indic digits": "١٧٩٥٤٢٢٣٠٧",
    "ISO with offset": "2026-11-23T10:00:00+14:00",
    "month 13": "2026-13-01 00:00:00",
    "empty": "",
}

# Strings a field stores or refuses; never a 500, and what is stored comes back as sent.
HOSTILE_STRINGS = {
    "Arabic-Indic digits": "٥٥٥١٠٠١",
    "RTL marks": "\u200f5551001\u200e",
    "RTL override": "\u202e1005551",
    "emoji": "📞☎️👩🏽‍💻",
    "NUL": "555\x001001",
    "CR LF": "555\r\n1001",
    "commas and quotes": '555,1001,"x"',
    "formula =": '=HYPERLINK("http://x","y")',
    "formula +": "+15551001",
    "formula -": "-2+3",
    "formula @": "@SUM(A1)",
    "formula tab": "\t=1+1",
    "formula CR": "\r=1+1",
    "very long": "x" * 10_000,
}

# Text that reads otherwise than it is: every field a person reads (names, destinations, notes)
# refuses these (config.validators.validate_plain_text).
HIDDEN_CHARACTERS = {
    "BEL": "ring\x07",
    "ESC": "\x1b[31mred",
    "RTL override": "\u202eevil",
    "zero-width space": "e\u200bvil",
    "line separator": "a\u2028b",
}

# Values for an integer query parameter (limit, offset, page ...) that must be a 400;
# add the values beyond the parameter's own maximum.
BAD_INTEGER_QUERY_VALUES = {
    "null": "null",
    "word": "abc",
    "negative": "-1",
    "float": "1.5",
    "spaces": " 1",
    "underscore": "1_0",
    "hex": "0x10",
    "Arabic-Indic digits": "١٢",
    "empty": "",
    "beyond 64 bits": "99999999999999999999999",
}


def oversize_body() -> bytes:
    """Valid JSON one byte over the body limit (DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    padding = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1 - len(b'{"pad": ""}')
    return b'{"pad": "' + b"x" * padding + b'"}'


def send(client, method, url, body=None, *, content_type="application/json", headers=None):
    """One request through Django's test client; a body that is not bytes is sent as JSON."""
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return client.generic(method.upper(), url, body or b"", content_type=content_type, headers=headers or {})


def assert_rejects_cleanly(client, method, url, body=None, *, status=None, **kwargs):
    """The request is refused with a 4xx (or exactly `status`) and a JSON body saying why."""
    response = send(client, method, url, body, **kwargs)
    where = f"{method.upper()} {url}"
    if status is None:
        assert 400 <= response.status_code < 500, f"{where} answered {response.status_code}, expected a 4xx"
    else:
        assert response.status_code == status, f"{where} answered {response.status_code}, expected {status}"
    assert_error_body(response)
    return response


def assert_answers_cleanly(client, method, url, body=None, **kwargs):
    """Any answer but a server error; a refusal says why in JSON."""
    response = send(client, method, url, body, **kwargs)
    assert response.status_code < 500, f"{method.upper()} {url} answered {response.status_code}"
    if response.status_code >= 400:
        assert_error_body(response)
    return response


def assert_error_body(response):
    """The API's one error shape: {"code": "...", "detail": "..."}, and `fields` for a refused body
    or query: {"field": ["message", ...], ...}."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    for field, messages in body.get("fields", {}).items():
        assert isinstance(messages, list | dict) and messages, (field, messages)
