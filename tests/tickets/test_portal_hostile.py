"""Hostile input on every ticket form of the portal: sizes, unicode, CR/LF, commas, formulas, hidden
characters, absurd numbers, dial strings that would add Dial() targets or options. Each is stored as
sent or refused with a form error (a 400), never a server error."""

import pytest
from django.urls import reverse

from tests.hostile import HIDDEN_CHARACTERS, HOSTILE_STRINGS
from tests.tickets.factories import TechnicianFactory, TicketLineFactory
from tickets.models import SmsSettings, Technician, TicketLine

pytestmark = pytest.mark.django_db

ABSURD_NUMBERS = {
    "negative": "-1",
    "zero": "0",
    "float": "1.5",
    "huge": str(10**30),
    "beyond 64 bits": "99999999999999999999999",
    "word": "abc",
    "formula": "=1+1",
    "empty": "",
    "CR LF": "5\r\n6",
}
TEXTS = {**HOSTILE_STRINGS, **HIDDEN_CHARACTERS}


def url(name, company, **kwargs):
    return reverse(f"tickets:{name}", kwargs={"company_slug": company.slug, **kwargs})


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def line(company):
    return TicketLineFactory(company=company)


@pytest.fixture
def tech(line):
    return TechnicianFactory(line=line, name="Tech1", internal="731", mobile="+393471111111")


def line_data(line, **changes):
    return {
        "announcement_sound": "hello-world",
        "confirm_digit": "1",
        "confirm_seconds": 5,
        "record": "on",
        "ring_seconds": 20,
        "wrap": "on",
        "rounds": 2,
        "message_template": line.message_template,
        "retention_days": 90,
        "next_ticket": line.next_ticket,
        "next_ticket_shown": line.next_ticket,
        **changes,
    }


def tech_data(**changes):
    return {"name": "Tech1", "internal": "731", "mobile": "+393471111111", "active": "on", **changes}


def sms_data(**changes):
    return {
        "provider": "console", "method": "POST", "auth": "none", "parameters": "to={to}\ntext={text}",
        "timeout_seconds": 10, **changes,
    }  # fmt: skip


def assert_stored_or_refused(response, stored, sent):
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 302:
        assert stored == sent.strip()  # a text box drops the spaces, tabs and line ends around it
    else:
        assert (
            'class="errorlist"' in response.content.decode() or 'class="errors"' in response.content.decode()
        )


# A line's settings


@pytest.mark.parametrize("field", ["announcement_sound", "message_template", "confirm_digit"])
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_hostile_text_in_a_lines_settings(logged_in, company, line, field, name):
    response = logged_in.post(url("line", company, pk=line.pk), line_data(line, **{field: TEXTS[name]}))
    line.refresh_from_db()
    assert_stored_or_refused(response, getattr(line, field), TEXTS[name])


@pytest.mark.parametrize(
    "field", ["confirm_seconds", "ring_seconds", "rounds", "retention_days", "next_ticket"]
)
@pytest.mark.parametrize("name", sorted(ABSURD_NUMBERS))
def test_absurd_numbers_in_a_lines_settings_are_refused(logged_in, company, line, field, name):
    before = TicketLine.objects.values().get(pk=line.pk)
    response = logged_in.post(
        url("line", company, pk=line.pk), line_data(line, **{field: ABSURD_NUMBERS[name]})
    )
    assert response.status_code == 400
    assert TicketLine.objects.values().get(pk=line.pk) == before


def test_digits_of_another_script_are_read_as_the_number(logged_in, company, line):
    response = logged_in.post(url("line", company, pk=line.pk), line_data(line, ring_seconds="١٢"))
    assert response.status_code == 302
    line.refresh_from_db()
    assert line.ring_seconds == 12


@pytest.mark.parametrize("value", ["1", "*", "#"])
def test_a_confirm_key_may_be_a_digit_star_or_hash(logged_in, company, line, value):
    assert (
        logged_in.post(url("line", company, pk=line.pk), line_data(line, confirm_digit=value)).status_code
        == 302
    )


@pytest.mark.parametrize("sound", ["../../etc/passwd", "/var/lib/x", "a b", "x.wav", "a//b", "a;b"])
def test_a_sound_name_that_is_no_sound_name_is_refused(logged_in, company, line, sound):
    assert (
        logged_in.post(
            url("line", company, pk=line.pk), line_data(line, announcement_sound=sound)
        ).status_code
        == 400
    )


def test_the_hidden_shown_counter_when_tampered_only_asks_for_the_change(logged_in, company, line):
    response = logged_in.post(url("line", company, pk=line.pk), line_data(line, next_ticket_shown="abc"))
    assert response.status_code == 400
    response = logged_in.post(url("line", company, pk=line.pk), line_data(line, next_ticket_shown="7"))
    assert response.status_code == 302  # taken as a change to 1, the counter as it is: nothing used
    line.refresh_from_db()
    assert line.next_ticket == 1


# Technicians


@pytest.mark.parametrize("field", ["name", "internal", "mobile", "sms_number", "im_address", "sms_username"])
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_hostile_text_for_a_technician(logged_in, company, tech, field, name):
    response = logged_in.post(url("technician", company, pk=tech.pk), tech_data(**{field: TEXTS[name]}))
    tech.refresh_from_db()
    assert_stored_or_refused(response, getattr(tech, field), TEXTS[name])


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_a_hostile_sms_password_is_stored_or_refused_and_never_shown(logged_in, company, tech, name):
    response = logged_in.post(url("technician", company, pk=tech.pk), tech_data(new_sms_password=TEXTS[name]))
    tech.refresh_from_db()
    assert_stored_or_refused(response, tech.sms_password, TEXTS[name])
    if TEXTS[name].strip():
        assert TEXTS[name] not in response.content.decode()


@pytest.mark.parametrize(
    "internal",
    [
        "PJSIP/732,,U(evil)",
        "732&PJSIP/999",
        "PJSIP/732)",
        "Local/1@phones/n",
        "PJSIP/",
        "/732",
        "73 2",
        "PJSIP/7\r\n32",
    ],
)
def test_an_internal_phone_that_would_change_the_dial_is_refused(logged_in, company, line, tech, internal):
    response = logged_in.post(
        url("technicians", company, pk=line.pk), tech_data(name="Eve", internal=internal)
    )
    assert response.status_code == 400
    assert "A number (732" in response.content.decode()
    assert not Technician.objects.filter(name="Eve").exists()


@pytest.mark.parametrize(
    "internal", ["732", "+39347123456", "PJSIP/732", "SIP/tech-1", "Local/5552201@phones"]
)
def test_an_internal_phone_is_a_number_or_one_dial_string(logged_in, company, line, internal):
    response = logged_in.post(
        url("technicians", company, pk=line.pk), tech_data(name="Ann", internal=internal)
    )
    assert response.status_code == 302
    assert Technician.objects.get(name="Ann").internal == internal


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_hostile_text_for_a_new_technician(logged_in, company, line, name):
    response = logged_in.post(url("technicians", company, pk=line.pk), tech_data(name=TEXTS[name]))
    stored = Technician.objects.filter(line=line).values_list("name", flat=True).first()
    assert_stored_or_refused(response, stored, TEXTS[name])


# SMS settings


@pytest.mark.parametrize("field", ["url", "username", "parameters", "sender", "country_prefix", "new_secret"])
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_hostile_text_in_the_sms_settings(logged_in, company, field, name):
    response = logged_in.post(url("sms", company), sms_data(**{field: TEXTS[name]}))
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        stored = SmsSettings.objects.get(company=company)
        sent = TEXTS[name] if field == "new_secret" else TEXTS[name].strip()  # a secret is kept as typed
        assert getattr(stored, "secret" if field == "new_secret" else field) == sent
    else:
        assert not SmsSettings.objects.filter(company=company).exists()


@pytest.mark.parametrize("name", sorted(ABSURD_NUMBERS))
def test_an_absurd_sms_timeout_is_refused(logged_in, company, name):
    assert (
        logged_in.post(url("sms", company), sms_data(timeout_seconds=ABSURD_NUMBERS[name])).status_code == 400
    )
    assert not SmsSettings.objects.filter(company=company).exists()


@pytest.mark.parametrize("field,value", [("provider", "smtp"), ("method", "DELETE"), ("auth", "digest")])
def test_a_choice_out_of_the_list_is_refused(logged_in, company, field, value):
    assert logged_in.post(url("sms", company), sms_data(**{field: value})).status_code == 400
