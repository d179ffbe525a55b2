"""Hostile input against the ticket lines API: always a clean 4xx in `{"code", "detail"}`, never a 500,
and nothing written that a refusal was about."""

import pytest

from tests import hostile
from tests.tickets.factories import TechnicianFactory, TicketLineFactory
from tickets.models import MAX_TICKET, Technician, TicketLine

pytestmark = pytest.mark.django_db

API = "/api/tickets"


@pytest.fixture
def api(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def line(company):
    return TicketLineFactory(company=company)


@pytest.fixture
def technician(line):
    return TechnicianFactory(line=line, internal="731")


@pytest.mark.parametrize("body", hostile.MALFORMED_JSON.values(), ids=hostile.MALFORMED_JSON)
@pytest.mark.parametrize("where", ["line", "technicians", "hunt-order"])
def test_malformed_json_is_a_400(api, line, where, body):
    method, url = {
        "line": ("patch", f"{API}/lines/{line.pk}/"),
        "technicians": ("post", f"{API}/technicians/"),
        "hunt-order": ("post", f"{API}/lines/{line.pk}/hunt-order/"),
    }[where]
    response = hostile.assert_rejects_cleanly(api, method, url, body, status=400)
    assert response.json()["code"] == "parse_error"


def test_deep_nesting_oversize_and_form_bodies(api, line):
    url = f"{API}/lines/{line.pk}/"
    hostile.assert_rejects_cleanly(api, "patch", url, hostile.DEEP_NESTING, status=400)
    response = hostile.assert_rejects_cleanly(api, "patch", url, hostile.oversize_body(), status=413)
    assert response.json()["code"] == "request_too_large"
    response = hostile.assert_rejects_cleanly(
        api, "patch", url, b"ring_seconds=30", status=415, content_type="application/x-www-form-urlencoded"
    )
    assert response.json()["code"] == "unsupported_media_type"
    assert TicketLine.objects.get().ring_seconds == 5


LINE_FIELDS = [
    "ring_seconds",
    "wrap",
    "rounds",
    "confirm_digit",
    "confirm_seconds",
    "record",
    "next_ticket",
    "message_template",
    "retention_days",
    "in_charge",
]


@pytest.mark.parametrize("field", LINE_FIELDS)
@pytest.mark.parametrize("value", hostile.WRONG_TYPES.values(), ids=hostile.WRONG_TYPES)
def test_wrong_types_for_a_line_are_refused_or_taken(api, line, field, value):
    response = hostile.assert_answers_cleanly(api, "patch", f"{API}/lines/{line.pk}/", {field: value})
    if response.status_code >= 400:
        assert field in response.json()["fields"]


ABSURD_NUMBERS = {
    "ring_seconds": [0, 4, 301, 10**30, -5],
    "rounds": [0, 11, 2**63],
    "confirm_seconds": [0, 61, 2**64],
    "next_ticket": [0, -1, MAX_TICKET + 1, 10**30, "1e3", "٥"],
    "retention_days": [0, 3651, 2**31],
    "in_charge": [0, -1, 2**63, "١"],
}


@pytest.mark.parametrize(
    "field, value", [(field, value) for field, values in ABSURD_NUMBERS.items() for value in values]
)
def test_absurd_numbers_are_a_400(api, line, field, value):
    response = hostile.assert_rejects_cleanly(
        api, "patch", f"{API}/lines/{line.pk}/", {field: value}, status=400
    )
    assert list(response.json()["fields"]) == [field]
    assert TicketLine.objects.filter(pk=line.pk, next_ticket=1, ring_seconds=5, in_charge=None).exists()


@pytest.mark.parametrize("value", hostile.HOSTILE_STRINGS.values(), ids=hostile.HOSTILE_STRINGS)
def test_hostile_templates_and_digits_are_refused(api, line, value):
    for field in ("message_template", "confirm_digit"):
        response = hostile.assert_answers_cleanly(api, "patch", f"{API}/lines/{line.pk}/", {field: value})
        line.refresh_from_db()
        if response.status_code == 200:
            # A plain template a spreadsheet would read as a formula: stored as sent, the spaces around
            # it trimmed (the exports escape it).
            assert field == "message_template" and getattr(line, field) == value.strip()
        else:
            assert field in response.json()["fields"]


@pytest.mark.parametrize("value", hostile.HIDDEN_CHARACTERS.values(), ids=hostile.HIDDEN_CHARACTERS)
def test_hidden_characters_in_a_template_are_refused(api, line, value):
    response = hostile.assert_rejects_cleanly(
        api, "patch", f"{API}/lines/{line.pk}/", {"message_template": f"{{ticket}} {value}"}, status=400
    )
    assert list(response.json()["fields"]) == ["message_template"]


TECHNICIAN_STRINGS = [
    "name",
    "internal",
    "mobile",
    "sms_number",
    "im_address",
    "sms_username",
    "sms_password",
]


@pytest.mark.parametrize("field", TECHNICIAN_STRINGS)
@pytest.mark.parametrize("name", list(hostile.HOSTILE_STRINGS), ids=list(hostile.HOSTILE_STRINGS))
def test_hostile_technician_strings(api, line, field, name):
    value = hostile.HOSTILE_STRINGS[name]
    body = {"line": line.pk, "name": "Tech", "internal": "731", field: value}
    response = hostile.assert_answers_cleanly(api, "post", f"{API}/technicians/", body)
    if response.status_code == 201:
        assert getattr(Technician.objects.get(), field) == value.strip()
    else:
        assert response.status_code == 400 and field in response.json()["fields"]
        assert not Technician.objects.exists()
    # CR/LF, NUL and overlong values never reach a row (an AMI header, an SMS gateway's parameter)
    if name in ("CR LF", "NUL", "very long"):
        assert response.status_code == 400
    if field in ("mobile", "sms_number"):  # a phone number, and a formula to a spreadsheet
        assert (response.status_code == 201) == (name == "formula +")


@pytest.mark.parametrize("field", ["name", "position", "internal", "active", "sms_password", "line"])
@pytest.mark.parametrize("value", hostile.WRONG_TYPES.values(), ids=hostile.WRONG_TYPES)
def test_wrong_types_for_a_technician_are_refused_or_taken(api, technician, field, value):
    response = hostile.assert_answers_cleanly(
        api, "patch", f"{API}/technicians/{technician.pk}/", {field: value}
    )
    if response.status_code >= 400:
        assert field in response.json()["fields"]
    technician.refresh_from_db()
    assert technician.line_id is not None and technician.internal


@pytest.mark.parametrize("value", [*hostile.WRONG_TYPES.values(), [], ["x"], [0], list(range(2000))])
def test_a_hostile_hunt_order_is_a_400(api, line, technician, value):
    response = hostile.assert_rejects_cleanly(
        api, "post", f"{API}/lines/{line.pk}/hunt-order/", {"technicians": value}, status=400
    )
    assert list(response.json()["fields"]) == ["technicians"]


BAD_IDS = {**hostile.BAD_INTEGER_QUERY_VALUES, "zero": "0", "beyond 2**63": str(2**63)}


@pytest.mark.parametrize("path, name", [("technicians", "line"), ("log", "line"), ("log", "technician"),
                                        ("log", "ticket"), ("calls", "line")])  # fmt: skip
@pytest.mark.parametrize("value", BAD_IDS.values(), ids=BAD_IDS)
def test_bad_filter_numbers_are_a_400(api, path, name, value):
    hostile.assert_rejects_cleanly(api, "get", f"{API}/{path}/?{name}={value}", status=400)


@pytest.mark.parametrize(
    "path, query",
    [
        ("log", "answered=maybe"),
        ("log", "last="),
        ("log", "caller=0347%0D%0A1"),
        ("log", "caller=" + "1" * 41),
        ("log", "caller=٠٣٤٧"),
        ("log", "start=0001-01-01"),
        ("log", "start=2026-13-01"),
        ("log", "start=2026-11-24&end=2026-11-23"),
        ("calls", "start=2024-01-01&end=2026-01-01"),
        ("calls", "state=lost"),
        ("calls", "state="),
        ("calls", "limit=0"),
        ("calls", "limit=501"),
        ("log", "offset=-1"),
    ],
)
def test_bad_filters_are_a_400(api, path, query):
    hostile.assert_rejects_cleanly(api, "get", f"{API}/{path}/?{query}", status=400)


@pytest.mark.parametrize(
    "path", ["lines/abc/", "lines/99999999999999999999999/", "calls/-1/", "technicians/٥/"]
)
def test_ids_that_are_no_ids_are_a_404(api, path):
    response = api.get(f"{API}/{path}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
