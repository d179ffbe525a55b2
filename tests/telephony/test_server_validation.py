"""What a PBX server, a dial route and an Originate refuse before anything reaches Asterisk: the model,
the admin's add form (field errors, never a 500), and the checks of an Originate's variables."""

import pytest
from django.core.exceptions import ValidationError

from telephony.handle import OriginateRequest, originate_check
from telephony.models import CallRecord, DialRoute, PbxServer
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "pbx-paris",
    "ami_host": "pbx1.example.com",
    "ami_port": 5038,
    "ami_username": "platform",
    "ami_secret": "platform-secret",
    "agi_bind_host": "0.0.0.0",
    "agi_bind_port": 4573,
    "outbound_caller_id": '"Support" <5550000>',
}


def errors_of(**fields) -> dict:
    server = PbxServer(**{**GOOD, **fields})
    with pytest.raises(ValidationError) as refused:
        server.full_clean()
    return refused.value.message_dict


def test_a_good_server_is_accepted():
    PbxServer(**GOOD).full_clean()


@pytest.mark.parametrize("field", ["ami_port", "agi_bind_port"])
@pytest.mark.parametrize("port", [0, 70000, 70001])
def test_ports_out_of_range_are_refused(field, port):
    assert field in errors_of(**{field: port})


@pytest.mark.parametrize("field", ["ami_host", "agi_bind_host"])
@pytest.mark.parametrize("host", ["pbx\r\nAction: Originate", "pbx\n", "pbx one", "a..b", " pbx", ""])
def test_hosts_that_are_no_host_are_refused(field, host):
    assert field in errors_of(**{field: host})


@pytest.mark.parametrize("field", ["ami_username", "ami_secret", "outbound_caller_id"])
@pytest.mark.parametrize("value", ["a\r\nAction: Originate", "a\nb", "a\x00b"])
def test_header_values_with_line_breaks_or_nul_are_refused(field, value):
    assert "Control characters" in " ".join(errors_of(**{field: value})[field])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("PJSIP/{number:>999999999}@carrier", "no format spec"),
        ("PJSIP/{number!r}@carrier", "no format spec or conversion"),
        ("PJSIP/{other}@carrier", "exactly one placeholder"),
        ("PJSIP/{number}@{number}", "exactly one placeholder"),
        ("PJSIP/carrier", "exactly one placeholder"),
        ("PJSIP/{number@carrier", "Not a valid template"),
        ("PJSIP/{number}@carrier\r\nAction: Originate", "Control characters"),
    ],
)
def test_dial_templates_that_could_hurt_are_refused(template, message):
    route = DialRoute(server=PbxServerFactory(), name="mobile", template=template)
    with pytest.raises(ValidationError) as refused:
        route.full_clean()
    assert message in " ".join(refused.value.message_dict["template"])


def test_a_good_dial_template_is_accepted():
    route = DialRoute(server=PbxServerFactory(), name="mobile", template="PJSIP/{number}@carrier")
    route.full_clean()
    assert route.dial_string("5551001") == "PJSIP/5551001@carrier"


def admin_add(client, **fields):
    data = {
        **GOOD,
        "enabled": "on",
        "routes-TOTAL_FORMS": "1",
        "routes-INITIAL_FORMS": "0",
        "routes-MIN_NUM_FORMS": "0",
        "routes-MAX_NUM_FORMS": "1000",
        "routes-0-name": "default",
        "routes-0-template": "PJSIP/{number}@carrier",
        **fields,
    }
    return client.post("/admin/telephony/pbxserver/add/", data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ami_port": "70000"}, "less than or equal to 65535"),
        ({"agi_bind_port": "0"}, "greater than or equal to 1"),
        ({"ami_host": "a..b"}, "is neither an IP address nor a host name"),
        ({"agi_bind_host": "pbx one"}, "is neither an IP address nor a host name"),
        ({"ami_username": "a\r\nAction: Originate"}, "Control characters"),
        ({"outbound_caller_id": "x\r\nAction: Originate"}, "Control characters"),
        ({"ami_secret": "x\x00"}, "Null characters are not allowed"),
        ({"routes-0-template": "PJSIP/{number:>999999999}"}, "no format spec"),
        ({"routes-0-template": "PJSIP/{other}"}, "exactly one placeholder"),
    ],
)
def test_the_admin_add_form_answers_with_field_errors(client, staff_user, fields, message):
    client.force_login(staff_user)
    response = admin_add(client, **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PbxServer.objects.exists()


def test_the_admin_add_form_saves_a_good_server(client, staff_user):
    client.force_login(staff_user)
    response = admin_add(client)
    assert response.status_code == 302
    server = PbxServer.objects.get(name="pbx-paris")
    assert server.routes.get().template == "PJSIP/{number}@carrier"


def request(**fields):
    return OriginateRequest(
        server=PbxServer(**GOOD), channel_id="t-check", number="5551001", context="platform-hold", **fields
    )


def test_a_variable_with_a_comma_is_refused():
    # Asterisk would read the comma as the start of another variable: PLATFORM_HOLD_MAX=1.
    with pytest.raises(ValueError, match="variable PLATFORM_CALL: a comma in the value would set another"):
        originate_check(request(variables={"PLATFORM_CALL": "visitor,PLATFORM_HOLD_MAX=1"}))


def test_a_huge_variable_is_refused():
    with pytest.raises(ValueError, match="variable PLATFORM_CALL is longer than 900 characters"):
        originate_check(request(variables={"PLATFORM_CALL": "x" * 100_000}))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"PLATFORM_CALL": "visitor,PLATFORM_HOLD_MAX=1"}, "a comma"),
        ({"PLATFORM_CALL": "x" * 100_000}, "longer than"),
        ({"PLATFORM_CALL": "a\r\nAction: Hangup"}, "line break"),
        ({"BAD NAME": "1"}, "no channel variable name"),
    ],
)
def test_a_refused_originate_claims_nothing_on_the_pbx(server, facade, variables, message):
    with pytest.raises(ValueError, match=message):
        facade.originate(
            server=server,
            channel_id="t-refused",
            number="5551005",
            context="platform-hold",
            variables=variables,
        )
    assert not CallRecord.objects.exists()
    # Nothing was dialed either.
    assert not [c for c in facade.live_channels(server=server) if c["Uniqueid"] == "t-refused"]
