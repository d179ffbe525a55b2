"""The portal's ticket line pages: who opens them (the company's users, nobody else), a line's
settings (the next ticket never at a number used, the template checked, the server and the DID the
operator's), the technicians (add, edit, deactivate, reorder, put in charge, the hunt order shown,
the SMS password write only) and the SMS settings (the secret write only)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.factories import CompanyFactory, UserFactory
from tests.tenancy import assert_other_company_gets_404
from tests.tickets.factories import (
    SmsSettingsFactory,
    TechnicianFactory,
    TicketCallFactory,
    TicketHopFactory,
    TicketLineFactory,
)
from tickets.models import SmsSettings, Technician, TicketLine

pytestmark = pytest.mark.django_db

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 28


def url(name, company, **kwargs):
    return reverse(f"tickets:{name}", kwargs={"company_slug": company.slug, **kwargs})


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def line(company):
    return TicketLineFactory(company=company, name="Gas emergency", number="5557000")


@pytest.fixture
def techs(line):
    return [
        TechnicianFactory(line=line, name=name, internal=internal, position=n)
        for n, (name, internal) in enumerate([("Tech1", "731"), ("Tech2", "732"), ("Tech3", "PJSIP/733")])
    ]


def line_data(line, **changes):
    data = {
        "announcement_sound": line.announcement_sound,
        "confirm_digit": line.confirm_digit,
        "confirm_seconds": line.confirm_seconds,
        "record": "on" if line.record else "",
        "ring_seconds": line.ring_seconds,
        "wrap": "on" if line.wrap else "",
        "rounds": line.rounds,
        "message_template": line.message_template,
        "retention_days": line.retention_days,
        "next_ticket": line.next_ticket,
        "next_ticket_shown": line.next_ticket,
    }
    return {**data, **changes}


def tech_data(**changes):
    return {"name": "Tech4", "internal": "734", "mobile": "+393471234567", "active": "on", **changes}


# Who opens what


def test_every_page_is_the_companys_own(client, company_user, line, techs):
    call = TicketHopFactory(call=TicketCallFactory(line=line), technician=techs[0]).call
    pages = [
        url("log", line.company),
        url("lines", line.company),
        url("sms", line.company),
        url("line", line.company, pk=line.pk),
        url("technicians", line.company, pk=line.pk),
        url("technician", line.company, pk=techs[0].pk),
        url("call", line.company, pk=call.pk),
    ]
    for page in pages:
        assert_other_company_gets_404(client, page, owner=company_user)
    for name in ("technician-deactivate", "technician-move", "technician-in-charge"):
        assert_other_company_gets_404(
            client, url(name, line.company, pk=techs[1].pk), owner=company_user, method="post"
        )


def test_another_companys_objects_are_a_404_under_ones_own_slug(logged_in, company, line):
    stranger_line = TicketLineFactory(name="Their line")
    stranger = TechnicianFactory(line=stranger_line, name="Eve", internal="999")
    call = TicketHopFactory(call=TicketCallFactory(line=stranger_line), technician=stranger).call
    gets = [("line", stranger_line.pk), ("technicians", stranger_line.pk), ("technician", stranger.pk)]
    gets += [("call", call.pk), ("call-recording", call.pk)]
    for name, pk in gets:
        assert logged_in.get(url(name, company, pk=pk)).status_code == 404
    posts = {
        "line": (stranger_line.pk, line_data(stranger_line, ring_seconds=99, next_ticket=500)),
        "technicians": (stranger_line.pk, tech_data()),
        "technician": (stranger.pk, tech_data(name="Mallory")),
        "technician-deactivate": (stranger.pk, {}),
        "technician-move": (stranger.pk, {"direction": "up"}),
        "technician-in-charge": (stranger.pk, {}),
    }
    for name, (pk, data) in posts.items():
        assert logged_in.post(url(name, company, pk=pk), data).status_code == 404
    stranger_line.refresh_from_db()
    stranger.refresh_from_db()
    assert (stranger_line.ring_seconds, stranger_line.next_ticket, stranger_line.in_charge_id) == (5, 2, None)
    assert (stranger.name, stranger.active) == ("Eve", True)
    assert Technician.objects.filter(line=stranger_line).count() == 1


def test_the_sms_settings_post_of_an_outsider_changes_only_their_own(client, company):
    SmsSettingsFactory(company=company, provider=SmsSettings.Provider.CONSOLE, sender="Ours")
    outsider = UserFactory()
    client.force_login(outsider)
    response = client.post(url("sms", company), {"provider": "none", "sender": "Theirs"})
    assert response.status_code == 404
    assert SmsSettings.objects.get(company=company).sender == "Ours"


@pytest.mark.parametrize("name", ["log", "lines", "sms"])
def test_an_anonymous_visitor_is_sent_to_log_in(client, company, name):
    response = client.get(url(name, company))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("name", ["log", "lines", "sms"])
def test_staff_and_users_of_an_inactive_company_get_404(client, company, staff_user, name):
    client.force_login(staff_user)
    assert client.get(url(name, company)).status_code == 404
    closed = CompanyFactory(active=False)
    client.force_login(UserFactory(company=closed))
    assert client.get(url(name, closed)).status_code == 404


@pytest.mark.parametrize(
    "name,method",
    [("technician-in-charge", "get"), ("technician-move", "get"), ("technician-deactivate", "get")],
)
def test_a_change_is_a_post(logged_in, company, techs, name, method):
    assert getattr(logged_in, method)(url(name, company, pk=techs[0].pk)).status_code == 405


def test_the_navigation_has_the_tickets_section(logged_in, company):
    body = logged_in.get(reverse("portal:home", kwargs={"company_slug": company.slug})).content.decode()
    assert f'href="{url("log", company)}"' in body


# Lines


def test_the_lines_list_shows_each_line_with_its_technicians_and_counter(logged_in, company, line, techs):
    TicketLine.objects.filter(pk=line.pk).update(in_charge=techs[1], next_ticket=120)
    TicketLineFactory(company=company, name="Water", number="5557001")
    body = logged_in.get(url("lines", company)).content.decode()
    assert "Gas emergency" in body and "Water" in body and "Their" not in body
    assert "Tech2" in body and "3 active of 3" in body and ">120<" in body


def test_the_lines_list_reads_a_fixed_number_of_queries(logged_in, company, django_assert_num_queries):
    TechnicianFactory.create_batch(2, line=TicketLineFactory(company=company))
    # session, user, company, permissions (the user's and its groups', for the menu), the lines
    with django_assert_num_queries(6):
        logged_in.get(url("lines", company))
    for _ in range(5):
        TechnicianFactory.create_batch(2, line=TicketLineFactory(company=company))
    with django_assert_num_queries(6):
        logged_in.get(url("lines", company))


def test_a_lines_settings_are_saved(logged_in, company, line):
    data = line_data(
        line,
        announcement_sound="custom/emergency",
        confirm_digit="5",
        confirm_seconds=9,
        record="",
        ring_seconds=30,
        wrap="",
        rounds=3,
        message_template="Ticket {ticket} from {caller} at {start_time}",
        retention_days=30,
    )
    response = logged_in.post(url("line", company, pk=line.pk), data)
    assert response.status_code == 302
    line.refresh_from_db()
    assert (line.announcement_sound, line.confirm_digit, line.confirm_seconds, line.record) == (
        "custom/emergency", "5", 9, False,
    )  # fmt: skip
    assert (line.ring_seconds, line.wrap, line.rounds, line.retention_days) == (30, False, 3, 30)
    assert line.message_template == "Ticket {ticket} from {caller} at {start_time}"


def test_the_server_and_the_did_are_not_the_companys_to_change(logged_in, company, line):
    other_server = TicketLineFactory().server
    data = line_data(line, number="5550666", server=other_server.pk, route="evil", active="", company=1)
    assert logged_in.post(url("line", company, pk=line.pk), data).status_code == 302
    line.refresh_from_db()
    assert (line.number, line.server_id == other_server.pk, line.route, line.active) == (
        "5557000", False, "default", True,
    )  # fmt: skip
    body = logged_in.get(url("line", company, pk=line.pk)).content.decode()
    assert 'name="number"' not in body and 'name="server"' not in body


def test_an_uploaded_wav_announcement_is_kept(logged_in, company, line, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = line_data(line, announcement_file=SimpleUploadedFile("advice.wav", WAV, "audio/wav"))
    assert logged_in.post(url("line", company, pk=line.pk), data).status_code == 302
    line.refresh_from_db()
    assert line.announcement_file.name.startswith("tickets/announcements/advice")
    assert (tmp_path / line.announcement_file.name).read_bytes() == WAV


@pytest.mark.parametrize(
    "name,content",
    [("advice.wav", b"<?php echo 1; ?>" * 4), ("advice.mp3", WAV), ("advice.wav", b"")],
)
def test_an_announcement_that_is_no_wav_is_refused(
    logged_in, company, line, settings, tmp_path, name, content
):
    settings.MEDIA_ROOT = tmp_path
    data = line_data(line, announcement_file=SimpleUploadedFile(name, content, "audio/wav"))
    response = logged_in.post(url("line", company, pk=line.pk), data)
    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode()
    line.refresh_from_db()
    assert not line.announcement_file


def test_the_next_ticket_restarts_the_numbering(logged_in, company, line):
    assert (
        logged_in.post(url("line", company, pk=line.pk), line_data(line, next_ticket=100)).status_code == 302
    )
    line.refresh_from_db()
    assert line.next_ticket == 100


@pytest.mark.parametrize("wanted,said", [(2, "ticket 2 is already used"), (1, "tickets up to 3 are")])
def test_the_next_ticket_is_never_a_number_used_on_the_line(logged_in, company, line, techs, wanted, said):
    TicketLine.objects.filter(pk=line.pk).update(next_ticket=2)
    call = TicketCallFactory(line=line)
    TicketHopFactory(call=call, technician=techs[0], sequence=1)  # ticket 2
    TicketHopFactory(call=call, technician=techs[1], sequence=2)  # ticket 3
    line.refresh_from_db()
    response = logged_in.post(
        url("line", company, pk=line.pk), line_data(line, next_ticket=wanted, ring_seconds=45)
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert said in body and "Choose 4 or more." in body
    line.refresh_from_db()
    assert (line.next_ticket, line.ring_seconds) == (4, 5)


def test_a_save_that_leaves_the_counter_as_shown_keeps_where_calls_moved_it(logged_in, company, line, techs):
    shown = line_data(line, ring_seconds=40)  # the page showed next ticket 1
    TicketHopFactory(call=TicketCallFactory(line=line), technician=techs[0])  # a call takes 1 meanwhile
    assert logged_in.post(url("line", company, pk=line.pk), shown).status_code == 302
    line.refresh_from_db()
    assert (line.next_ticket, line.ring_seconds) == (2, 40)


@pytest.mark.parametrize(
    "template",
    ["{ticket} {caller.__class__}", "{ticket!r}", "{ticket:>99999}", "{0}", "{secret}", "{ticket", "}{"],
)
def test_a_template_with_unknown_fields_is_refused(logged_in, company, line, template):
    response = logged_in.post(url("line", company, pk=line.pk), line_data(line, message_template=template))
    assert response.status_code == 400
    assert 'class="errorlist"' in response.content.decode()
    line.refresh_from_db()
    assert line.message_template.startswith("{start_date}")


# Technicians


def test_the_technicians_page_shows_the_hunt_from_the_one_in_charge(logged_in, company, line, techs):
    TicketLine.objects.filter(pk=line.pk).update(in_charge=techs[1], rounds=2)
    response = logged_in.get(url("technicians", company, pk=line.pk))
    assert [t.name for t in response.context["hunt"].technicians] == ["Tech2", "Tech3", "Tech1"]
    assert "2 rounds in all" in response.content.decode()


def test_without_wrap_the_hunt_ends_with_the_list(logged_in, company, line, techs):
    TicketLine.objects.filter(pk=line.pk).update(in_charge=techs[1], wrap=False)
    response = logged_in.get(url("technicians", company, pk=line.pk))
    assert [t.name for t in response.context["hunt"].technicians] == ["Tech2", "Tech3"]
    assert "does not wrap" in response.content.decode()


def test_an_inactive_technician_in_charge_is_said_and_skipped(logged_in, company, line, techs):
    TicketLine.objects.filter(pk=line.pk).update(in_charge=techs[1])
    Technician.objects.filter(pk=techs[1].pk).update(active=False)
    response = logged_in.get(url("technicians", company, pk=line.pk))
    assert [t.name for t in response.context["hunt"].technicians] == ["Tech3", "Tech1"]
    assert "is in charge but inactive" in response.content.decode()


def test_no_active_technician_is_said(logged_in, company, line):
    body = logged_in.get(url("technicians", company, pk=line.pk)).content.decode()
    assert "No active technician" in body


def test_a_technician_is_added_at_the_end_of_the_hunt(logged_in, company, line, techs):
    data = tech_data(sms_number="+393479999999", sms_username="tech4", new_sms_password="s3cret-Pass")
    response = logged_in.post(url("technicians", company, pk=line.pk), data)
    assert response.status_code == 302
    added = Technician.objects.get(name="Tech4")
    assert (added.line, added.position, added.internal, added.sms_password) == (line, 3, "734", "s3cret-Pass")
    body = logged_in.get(url("technicians", company, pk=line.pk)).content.decode()
    assert "s3cret-Pass" not in body


def test_the_sms_password_is_write_only(logged_in, company, line, techs):
    tech = techs[0]
    Technician.objects.filter(pk=tech.pk).update(sms_username="t1", sms_password="stored-Secret")
    body = logged_in.get(url("technician", company, pk=tech.pk)).content.decode()
    assert "stored-Secret" not in body and "leave empty to keep it" in body
    data = tech_data(name="Tech1 renamed", internal="731", sms_username="t1", new_sms_password="")
    assert logged_in.post(url("technician", company, pk=tech.pk), data).status_code == 302
    tech.refresh_from_db()
    assert (tech.name, tech.sms_password) == ("Tech1 renamed", "stored-Secret")
    data["new_sms_password"] = "new-Secret"
    assert logged_in.post(url("technician", company, pk=tech.pk), data).status_code == 302
    tech.refresh_from_db()
    assert tech.sms_password == "new-Secret"
    data.update(new_sms_password="", clear_sms_password="on")
    assert logged_in.post(url("technician", company, pk=tech.pk), data).status_code == 302
    tech.refresh_from_db()
    assert tech.sms_password == ""


def test_a_technician_is_deactivated_and_kept(logged_in, company, line, techs):
    response = logged_in.post(url("technician-deactivate", company, pk=techs[0].pk))
    assert response.status_code == 302
    techs[0].refresh_from_db()
    assert not techs[0].active
    page = logged_in.get(url("technicians", company, pk=line.pk))
    assert [t.name for t in page.context["hunt"].technicians] == ["Tech2", "Tech3"]
    assert "Tech1" in page.content.decode()


def test_technicians_move_up_and_down_the_hunt(logged_in, company, line, techs):
    Technician.objects.filter(pk=techs[2].pk).update(position=7)  # gaps are renumbered
    logged_in.post(url("technician-move", company, pk=techs[2].pk), {"direction": "up"})
    assert [t.name for t in Technician.objects.filter(line=line)] == ["Tech1", "Tech3", "Tech2"]
    assert list(Technician.objects.filter(line=line).values_list("position", flat=True)) == [0, 1, 2]
    logged_in.post(url("technician-move", company, pk=techs[0].pk), {"direction": "down"})
    assert [t.name for t in Technician.objects.filter(line=line)] == ["Tech3", "Tech1", "Tech2"]
    logged_in.post(url("technician-move", company, pk=techs[2].pk), {"direction": "up"})  # first: stays
    assert [t.name for t in Technician.objects.filter(line=line)] == ["Tech3", "Tech1", "Tech2"]


@pytest.mark.parametrize("direction", ["", "left", "-1", "up\r\n", "x" * 5000])
def test_a_move_of_no_direction_moves_nobody(logged_in, company, line, techs, direction):
    response = logged_in.post(url("technician-move", company, pk=techs[1].pk), {"direction": direction})
    assert response.status_code == 302
    assert [t.name for t in Technician.objects.filter(line=line)] == ["Tech1", "Tech2", "Tech3"]


def test_one_click_puts_a_technician_in_charge(logged_in, company, line, techs):
    assert logged_in.post(url("technician-in-charge", company, pk=techs[2].pk)).status_code == 302
    line.refresh_from_db()
    assert line.in_charge == techs[2]
    page = logged_in.get(url("technicians", company, pk=line.pk))
    assert [t.name for t in page.context["hunt"].technicians] == ["Tech3", "Tech1", "Tech2"]


def test_an_inactive_technician_is_not_put_in_charge(logged_in, company, line, techs):
    Technician.objects.filter(pk=techs[2].pk).update(active=False)
    response = logged_in.post(url("technician-in-charge", company, pk=techs[2].pk), follow=True)
    assert "is inactive" in response.content.decode()
    line.refresh_from_db()
    assert line.in_charge is None


def test_the_technicians_page_reads_a_fixed_number_of_queries(
    logged_in, company, line, techs, django_assert_num_queries
):  # fmt: skip
    # session, user, company, permissions (two), the line, its technicians
    with django_assert_num_queries(7):
        logged_in.get(url("technicians", company, pk=line.pk))
    TechnicianFactory.create_batch(5, line=line)
    with django_assert_num_queries(7):
        logged_in.get(url("technicians", company, pk=line.pk))


# SMS settings


def test_the_sms_settings_are_saved_and_the_secret_is_write_only(logged_in, company):
    data = {
        "provider": "http",
        "url": "https://sms.example.com/send",
        "method": "POST",
        "auth": "basic",
        "username": "gasco",
        "new_secret": "gateway-Secret",
        "parameters": "to={to}\ntext={text}\nfrom={sender}",
        "sender": "GasCo",
        "country_prefix": "39",
        "timeout_seconds": 15,
    }
    assert logged_in.post(url("sms", company), data).status_code == 302
    stored = SmsSettings.objects.get(company=company)
    assert (stored.provider, stored.url, stored.secret, stored.country_prefix) == (
        "http", "https://sms.example.com/send", "gateway-Secret", "39",
    )  # fmt: skip
    body = logged_in.get(url("sms", company)).content.decode()
    assert "gateway-Secret" not in body and "leave empty to keep it" in body
    data.update(new_secret="", sender="Gas Co")
    assert logged_in.post(url("sms", company), data).status_code == 302
    stored.refresh_from_db()
    assert (stored.sender, stored.secret) == ("Gas Co", "gateway-Secret")
    assert SmsSettings.objects.filter(company=company).count() == 1


def test_the_http_gateway_needs_a_public_url(logged_in, company):
    base = {"provider": "http", "method": "GET", "auth": "none", "parameters": "", "timeout_seconds": 10}
    for address, said in [("", "needs its send URL"), ("http://127.0.0.1:8000/send", "not a public address")]:
        response = logged_in.post(url("sms", company), {**base, "url": address})
        assert response.status_code == 400
        assert said in response.content.decode()
    assert not SmsSettings.objects.filter(company=company).exists()


@pytest.mark.parametrize(
    "parameters",
    [
        "to={to}\ntext={text.__class__}",
        "just words",
        "to={to}\n={text}",
        "to={0}",
        "text={text",
        "x={secret}",
    ],
)
def test_sms_parameters_with_unknown_fields_are_refused(logged_in, company, parameters):
    data = {
        "provider": "console",
        "method": "GET",
        "auth": "none",
        "parameters": parameters,
        "timeout_seconds": 5,
    }
    response = logged_in.post(url("sms", company), data)
    assert response.status_code == 400
    assert "Line " in response.content.decode()
