"""The ticket lines API: the company's rows only (another company's are 404), the settings a company
changes with the rules the portal applies, the technician in charge, technicians with write-only SMS
credentials and their hunt order, the hop log with the seed's line, calls with hops and messages."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from accounts.models import Company
from tests.factories import UserFactory
from tests.tenancy import assert_other_company_gets_404
from tests.tickets.factories import (
    TechnicianFactory,
    TicketCallFactory,
    TicketHopFactory,
    TicketLineFactory,
)
from tickets.models import Technician, TicketCall, TicketLine, TicketMessage

pytestmark = pytest.mark.django_db

API = "/api/tickets"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def api(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def line(company):
    company.time_zone = "Europe/Paris"
    company.save()
    return TicketLineFactory(company=company, name="Gas", number="5557000")


@pytest.fixture
def techs(line):
    return [
        TechnicianFactory(line=line, name="Tech 731", internal="731", mobile="03470000731", position=1),
        TechnicianFactory(line=line, name="Tech 732", internal="732", mobile="03470000732", position=2),
    ]


def a_call(line, techs, *, answered=True, at=dt.datetime(2012, 10, 12, 14, 0, tzinfo=PARIS)):
    """The seed's example: 732 rung first, then 731, who answered (or was the last rung)."""
    call = TicketCallFactory(line=line, caller="03472619287", started_at=at, state=TicketCall.State.ANSWERED)
    TicketHopFactory(
        call=call,
        technician=techs[1],
        sequence=1,
        started_at=at,
        ended_at=at + dt.timedelta(seconds=20),
        dial_status="NOANSWER",
    )
    TicketHopFactory(
        call=call,
        technician=techs[0],
        sequence=2,
        started_at=at + dt.timedelta(seconds=20),
        ended_at=at + dt.timedelta(minutes=2),
        dial_status="ANSWER" if answered else "NOANSWER",
        answered=answered,
        last=True,
    )
    return call


# -- tenancy and permissions -------------------------------------------------------------------------


def test_every_object_of_another_company_is_a_404(client, company_user, line, techs):
    call = a_call(line, techs)
    for url in [f"{API}/lines/{line.pk}/", f"{API}/technicians/{techs[0].pk}/", f"{API}/calls/{call.pk}/"]:
        assert_other_company_gets_404(client, url, owner=company_user)
    assert_other_company_gets_404(
        client, f"{API}/lines/{line.pk}/", owner=company_user, method="patch", data={"ring_seconds": 30}
    )
    assert_other_company_gets_404(
        client,
        f"{API}/lines/{line.pk}/hunt-order/",
        owner=company_user,
        method="post",
        data={"technicians": [techs[1].pk, techs[0].pk]},
    )
    assert_other_company_gets_404(
        client, f"{API}/technicians/{techs[0].pk}/", owner=company_user, method="patch", data={"name": "Ann"}
    )
    assert_other_company_gets_404(
        client, f"{API}/technicians/{techs[1].pk}/", owner=company_user, method="delete"
    )
    assert TicketLine.objects.get().ring_seconds == 30
    assert Technician.objects.get(pk=techs[0].pk).name == "Ann"
    assert not Technician.objects.get(pk=techs[1].pk).active


@pytest.mark.parametrize("path", ["lines/", "technicians/", "log/", "calls/"])
def test_lists_show_only_the_companys_rows(api, line, techs, path):
    a_call(line, techs)
    stranger_line = TicketLineFactory()
    a_call(stranger_line, [TechnicianFactory(line=stranger_line), TechnicianFactory(line=stranger_line)])
    rows = api.get(f"{API}/{path}").json()["results"]
    expected = {"lines/": 1, "technicians/": 2, "log/": 2, "calls/": 1}[path]
    assert len(rows) == expected
    assert TicketCall.objects.count() == 2


@pytest.mark.parametrize("path", ["lines/", "technicians/", "log/", "calls/", "lines/{pk}/"])
def test_only_users_of_an_active_company_get_in(client, line, path, staff_user):
    url = f"{API}/{path.format(pk=line.pk)}"
    response = client.get(url)
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    client.force_login(staff_user)  # staff belong to no company: the admin is theirs
    assert client.get(url).status_code == 403
    member = UserFactory(company=line.company)
    Company.objects.filter(pk=line.company_id).update(active=False)
    client.force_login(member)
    response = client.get(url)
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert client.patch(url, {"ring_seconds": 30}, content_type="application/json").status_code in (403, 405)
    assert TicketLine.objects.get().ring_seconds == 5


def test_list_queries_are_pinned(api, line, techs, django_assert_num_queries):
    # session, user, company, count, page; the log's hops come with their call and line, and the
    # calls' messages in one more query
    for calls in (1, 3):
        while TicketCall.objects.count() < calls:
            a_call(line, techs)
        for path in ("lines/", "technicians/", "log/", "calls/"):
            with django_assert_num_queries(6 if path == "log/" else 5):
                assert api.get(f"{API}/{path}").status_code == 200
        first = TicketCall.objects.first().pk
        with django_assert_num_queries(6):  # the call, its hops, its messages
            assert api.get(f"{API}/calls/{first}/").status_code == 200


# -- lines -----------------------------------------------------------------------------------------


def test_a_company_changes_its_lines_settings(api, line):
    changes = {
        "ring_seconds": 30,
        "wrap": False,
        "rounds": 3,
        "confirm_digit": "#",
        "confirm_seconds": 8,
        "record": False,
        "message_template": "Ticket {ticket} from {caller} at {start_time}",
        "next_ticket": 100,
        "retention_days": 30,
        "announcement_sound": "custom/gas-emergency",
    }
    response = api.patch(f"{API}/lines/{line.pk}/", changes, content_type="application/json")
    assert response.status_code == 200, response.content
    assert {name: response.json()[name] for name in changes} == changes
    line.refresh_from_db()
    assert {name: getattr(line, name) for name in changes} == changes


def test_what_the_operator_set_is_read_only(api, line):
    body = {"number": "999", "name": "Other", "route": "x", "active": False, "server": "other"}
    response = api.patch(f"{API}/lines/{line.pk}/", body, content_type="application/json")
    assert response.status_code == 200
    line.refresh_from_db()
    assert (line.number, line.name, line.route, line.active, line.server.name) == (
        "5557000",
        "Gas",
        "default",
        True,
        response.json()["server"],
    )
    assert api.put(f"{API}/lines/{line.pk}/", {}, content_type="application/json").status_code == 405


@pytest.mark.parametrize(
    "template",
    ["Ticket {ticket} {foo}", "{ticket.__class__}", "{caller[0]}", "{ticket!r}", "{ticket:>99}", "{"],
)
def test_a_template_that_does_not_parse_is_refused(api, line, template):
    response = api.patch(
        f"{API}/lines/{line.pk}/", {"message_template": template}, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]) == ["message_template"]
    line.refresh_from_db()
    assert line.message_template.startswith("{start_date}")


def test_the_next_ticket_is_never_a_number_already_given(api, line, techs):
    a_call(line, techs)  # tickets 1 and 2
    url = f"{API}/lines/{line.pk}/"
    for taken in (1, 2):
        response = api.patch(url, {"next_ticket": taken}, content_type="application/json")
        assert response.status_code == 400
        assert "Choose 3 or more." in response.json()["fields"]["next_ticket"][0]
    assert api.patch(url, {"next_ticket": 3}, content_type="application/json").status_code == 200
    assert api.patch(url, {"next_ticket": 100}, content_type="application/json").json()["next_ticket"] == 100
    line.refresh_from_db()
    assert line.next_ticket == 100


def test_the_technician_in_charge_is_set_and_cleared(api, line, techs):
    url = f"{API}/lines/{line.pk}/"
    response = api.patch(url, {"in_charge": techs[1].pk}, content_type="application/json")
    assert response.status_code == 200 and response.json()["in_charge"] == techs[1].pk
    line.refresh_from_db()
    assert line.in_charge == techs[1]
    listed = api.get(f"{API}/technicians/").json()["results"]
    assert [t["in_charge"] for t in listed] == [False, True]
    response = api.patch(url, {"in_charge": None}, content_type="application/json")
    assert response.status_code == 200 and response.json()["in_charge"] is None
    line.refresh_from_db()
    assert line.in_charge is None


def test_the_technician_in_charge_is_one_of_the_lines_own(api, company, line, techs):
    other_line = TicketLineFactory(company=company)
    strangers = [TechnicianFactory(line=other_line), TechnicianFactory()]
    for technician in strangers:
        response = api.patch(
            f"{API}/lines/{line.pk}/", {"in_charge": technician.pk}, content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["fields"] == {"in_charge": ["Not a technician of this line."]}
    line.refresh_from_db()
    assert line.in_charge is None


def test_a_refused_change_changes_nothing(api, line, techs):
    body = {"in_charge": techs[0].pk, "ring_seconds": 40, "message_template": "{nope}"}
    assert api.patch(f"{API}/lines/{line.pk}/", body, content_type="application/json").status_code == 400
    line.refresh_from_db()
    assert (line.in_charge, line.ring_seconds) == (None, 5)


# -- technicians -----------------------------------------------------------------------------------


def test_technicians_are_added_last_and_their_sms_credentials_never_shown(api, line, techs):
    body = {
        "line": line.pk,
        "name": "Tech 733",
        "internal": "PJSIP/733",
        "mobile": "+393470000733",
        "sms_username": "user-733",
        "sms_password": "s3cret-733",
    }
    response = api.post(f"{API}/technicians/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["position"] == 3 and created["sms_credentials"] is True and created["in_charge"] is False
    for answer in (response, api.get(f"{API}/technicians/{created['id']}/"), api.get(f"{API}/technicians/")):
        text = answer.content.decode()
        assert "s3cret-733" not in text and "user-733" not in text and '"sms_password"' not in text
    technician = Technician.objects.get(pk=created["id"])
    assert (technician.sms_username, technician.sms_password) == ("user-733", "s3cret-733")
    # written again, or cleared
    api.patch(
        f"{API}/technicians/{technician.pk}/",
        {"sms_username": "", "sms_password": ""},
        content_type="application/json",
    )
    assert api.get(f"{API}/technicians/{technician.pk}/").json()["sms_credentials"] is False


def test_a_technician_goes_to_a_line_of_the_company_only(api, line):
    for line_id in (TicketLineFactory().pk, 2**40):
        body = {"line": line_id, "name": "Intruder", "internal": "733"}
        response = api.post(f"{API}/technicians/", body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["fields"] == {"line": ["No such ticket line in your company."]}
    assert not Technician.objects.exists()


def test_a_technician_changes_but_stays_on_its_line(api, company, line, techs):
    other = TicketLineFactory(company=company)
    body = {"line": other.pk, "name": "Ann", "active": False, "position": 9, "mobile": ""}
    response = api.patch(f"{API}/technicians/{techs[0].pk}/", body, content_type="application/json")
    assert response.status_code == 200, response.content
    techs[0].refresh_from_db()
    assert (techs[0].line, techs[0].name, techs[0].active, techs[0].position, techs[0].mobile) == (
        line,
        "Ann",
        False,
        9,
        "",
    )


def test_a_technician_deleted_leaves_the_hunt_and_stays_in_the_log(api, line, techs):
    call = a_call(line, techs)
    assert api.delete(f"{API}/technicians/{techs[0].pk}/").status_code == 204
    techs[0].refresh_from_db()
    assert not techs[0].active  # as in the portal: out of the hunt, kept in the list and the log
    assert api.get(f"{API}/technicians/{techs[0].pk}/").json()["active"] is False
    hops = api.get(f"{API}/calls/{call.pk}/").json()["hops"]
    assert [(h["technician"], h["technician_name"]) for h in hops] == [
        (techs[1].pk, "Tech 732"),
        (techs[0].pk, "Tech 731"),
    ]


def test_an_inactive_technician_is_not_put_in_charge(api, line, techs):
    api.delete(f"{API}/technicians/{techs[0].pk}/")
    response = api.patch(
        f"{API}/lines/{line.pk}/", {"in_charge": techs[0].pk}, content_type="application/json"
    )
    assert response.status_code == 400 and "inactive" in response.json()["fields"]["in_charge"][0]
    line.refresh_from_db()
    assert line.in_charge is None


def test_the_hunt_order_is_set_in_one_go(api, line, techs):
    third = TechnicianFactory(line=line, position=3)
    order = [third.pk, techs[1].pk, techs[0].pk]
    response = api.post(
        f"{API}/lines/{line.pk}/hunt-order/", {"technicians": order}, content_type="application/json"
    )
    assert response.status_code == 200
    assert [t["id"] for t in response.json()] == order
    listed = api.get(f"{API}/technicians/", {"line": line.pk}).json()["results"]
    assert [(t["id"], t["position"]) for t in listed] == list(zip(order, [0, 1, 2], strict=True))


@pytest.mark.parametrize("order", ["missing one", "twice", "stranger"])
def test_a_hunt_order_names_every_technician_once(api, line, techs, order):
    ids = {
        "missing one": [techs[0].pk],
        "twice": [techs[0].pk, techs[1].pk, techs[0].pk],
        "stranger": [techs[0].pk, techs[1].pk, TechnicianFactory().pk],
    }[order]
    response = api.post(
        f"{API}/lines/{line.pk}/hunt-order/", {"technicians": ids}, content_type="application/json"
    )
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["technicians"]
    assert [t.position for t in Technician.objects.filter(line=line).order_by("pk")][:2] == [1, 2]


# -- the log and the calls -------------------------------------------------------------------------


def test_the_log_has_the_seeds_lines_the_last_one_marked_end(api, line, techs):
    a_call(line, techs)
    rows = api.get(f"{API}/log/").json()["results"]
    assert [(r["ticket"], r["last"], r["answered"], r["log_line"]) for r in rows] == [
        (2, True, True, "12.10.2012_14.00_12.10.2012_14.02_Ticket_2_Caller_03472619287_Called_731_END"),
        (1, False, False, "12.10.2012_14.00_12.10.2012_14.00_Ticket_1_Caller_03472619287_Called_732"),
    ]


def test_the_log_filters(api, company, line, techs):
    a_call(line, techs)
    a_call(line, techs, answered=False, at=dt.datetime(2012, 10, 13, 0, 30, tzinfo=PARIS))
    other_line = TicketLineFactory(company=company)
    a_call(other_line, [TechnicianFactory(line=other_line), TechnicianFactory(line=other_line)])

    def tickets(**query):
        response = api.get(f"{API}/log/", query)
        assert response.status_code == 200, response.content
        return sorted((r["line"], r["ticket"]) for r in response.json()["results"])

    assert tickets(line=line.pk) == [(line.pk, n) for n in (1, 2, 3, 4)]
    assert tickets(line=line.pk, last="true") == [(line.pk, 2), (line.pk, 4)]
    assert tickets(line=line.pk, last="false") == [(line.pk, 1), (line.pk, 3)]
    assert tickets(answered="true", line=line.pk) == [(line.pk, 2)]
    assert tickets(ticket=3, line=line.pk) == [(line.pk, 3)]
    assert tickets(technician=techs[1].pk) == [(line.pk, 1), (line.pk, 3)]
    assert tickets(start="2012-10-13", end="2012-10-13") == [(line.pk, 3), (line.pk, 4)]
    assert tickets(caller="0347", line=line.pk) == [(line.pk, n) for n in (1, 2, 3, 4)]
    assert tickets(caller="0348") == []
    assert tickets(line=TicketLineFactory().pk) == []  # another company's line lists nothing


def test_a_call_with_its_hops_and_messages(api, line, techs):
    call = a_call(line, techs)
    TicketMessage.objects.create(
        call=call, hop=call.hops.get(last=True), technician=techs[0], channel="im", to="pjsip:731", body="x"
    )
    body = api.get(f"{API}/calls/{call.pk}/").json()
    assert (body["caller"], body["state"], body["recorded"], body["line_name"]) == (
        "03472619287",
        "answered",
        False,
        "Gas",
    )
    assert [(h["sequence"], h["called"], h["last"]) for h in body["hops"]] == [
        (1, "732", False),
        (2, "731", True),
    ]
    assert [(m["channel"], m["to"], m["state"]) for m in body["messages"]] == [("im", "pjsip:731", "pending")]


def test_calls_filter(api, line, techs):
    a_call(line, techs)
    TicketCallFactory(line=line, state=TicketCall.State.UNCONFIRMED, caller="0612")
    states = [c["state"] for c in api.get(f"{API}/calls/", {"state": "unconfirmed"}).json()["results"]]
    assert states == ["unconfirmed"]
    assert len(api.get(f"{API}/calls/", {"caller": "0612"}).json()["results"]) == 1
    assert len(api.get(f"{API}/calls/", {"line": line.pk}).json()["results"]) == 2


def test_a_recording_deleted_by_retention_is_no_longer_recorded(api, line):
    kept = TicketCallFactory(line=line, recording="demo/2026/12/ticket-1-1.wav")
    TicketCallFactory(
        line=line, recording="demo/2026/12/ticket-1-2.wav", recording_deleted_at=kept.started_at
    )
    rows = api.get(f"{API}/calls/").json()["results"]
    assert sorted((r["id"] == kept.pk, r["recorded"]) for r in rows) == [(False, False), (True, True)]
