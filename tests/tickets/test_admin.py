"""The tickets' staff admin: a page for every model, secrets written and never shown back, the line's
rules (template, next ticket, who is in charge), the log exported formula-safe with the seed's line,
calls, hops and messages read only."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tests.factories import UserFactory
from tests.tickets.factories import (
    SmsSettingsFactory,
    TechnicianFactory,
    TicketCallFactory,
    TicketHopFactory,
    TicketLineFactory,
)
from tickets.models import SmsSettings, Technician, TicketLine, TicketMessage

pytestmark = pytest.mark.django_db

MODELS = ["ticketline", "technician", "smssettings", "ticketcall", "tickethop", "ticketmessage"]
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def call():
    line = TicketLineFactory(company__time_zone="Europe/Paris", number="720")
    first, second = TechnicianFactory(line=line, internal="732"), TechnicianFactory(line=line, internal="731")
    at = dt.datetime(2012, 10, 12, 14, 0, tzinfo=PARIS)
    call = TicketCallFactory(line=line, caller="=cmd|' /C calc'!A0", started_at=at)
    TicketHopFactory(
        call=call, technician=first, sequence=1, started_at=at, ended_at=at + dt.timedelta(seconds=20)
    )
    TicketHopFactory(
        call=call,
        technician=second,
        sequence=2,
        started_at=at + dt.timedelta(seconds=20),
        ended_at=at + dt.timedelta(minutes=2),
        answered=True,
        last=True,
        dial_status="ANSWER",
    )
    TicketMessage.objects.create(
        call=call, hop=call.hops.get(last=True), channel="im", to="pjsip:731", body="x"
    )
    return call


def staff(*codenames):
    user = UserFactory(company=None, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="tickets", codename__in=codenames)
    )
    return user


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_and_change_page_answers(admin_client, call, model):
    SmsSettingsFactory(company=call.line.company)
    changelist = reverse(f"admin:tickets_{model}_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "731"}).status_code == 200
    row = {
        "ticketline": call.line,
        "technician": Technician.objects.first(),
        "smssettings": SmsSettings.objects.get(),
        "ticketcall": call,
        "tickethop": call.hops.first(),
        "ticketmessage": TicketMessage.objects.get(),
    }[model]
    assert admin_client.get(reverse(f"admin:tickets_{model}_change", args=[row.pk])).status_code == 200


@pytest.mark.parametrize("model", ["ticketcall", "tickethop", "ticketmessage"])
def test_the_platforms_record_is_read_only(admin_client, call, model):
    assert admin_client.get(reverse(f"admin:tickets_{model}_add")).status_code == 403
    row = {"ticketcall": call, "tickethop": call.hops.first(), "ticketmessage": TicketMessage.objects.get()}[
        model
    ]
    assert (
        admin_client.post(
            reverse(f"admin:tickets_{model}_delete", args=[row.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert type(row).objects.filter(pk=row.pk).exists()


def test_the_log_filters_on_the_end_and_the_answer(admin_client, call):
    url = reverse("admin:tickets_tickethop_changelist")
    ends = admin_client.get(url, {"end": "yes"}).context["cl"].result_list
    assert [hop.sequence for hop in ends] == [2]
    went_on = admin_client.get(url, {"end": "no"}).context["cl"].result_list
    assert [hop.sequence for hop in went_on] == [1]
    answered = admin_client.get(url, {"answered__exact": "1"}).context["cl"].result_list
    assert [hop.sequence for hop in answered] == [2]
    page = admin_client.get(url).content.decode()
    assert (
        "12.10.2012_14.00_12.10.2012_14.02_Ticket_2_Caller_=cmd|&#x27; /C calc&#x27;!A0_Called_731_END"
        in page
    )


def test_the_log_exports_the_seeds_lines_formula_safe(admin_client, call):
    from tickets.resources import HOP_COLUMNS

    fields = {f"tickethopresource_{name}": "on" for name in HOP_COLUMNS}
    export = admin_client.post(
        reverse("admin:tickets_tickethop_export"), {"format": "0", "resource": "0", **fields}
    )
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    lines = export.content.decode().splitlines()
    assert lines[0].split(",") == ["technician" if c == "technician_name" else c for c in HOP_COLUMNS]
    assert "'=cmd|' /C calc'!A0" in lines[1]
    # the seed's line as it is: what the caller sent comes after the dates, never first in the cell
    assert lines[1].split(",")[1] == (
        "12.10.2012_14.00_12.10.2012_14.02_Ticket_2_Caller_=cmd|' /C calc'!A0_Called_731_END"
    )
    assert admin_client.get(reverse("admin:tickets_ticketcall_export")).status_code == 200


def test_staff_without_the_view_permission_export_nothing(client, call):
    client.force_login(staff("view_ticketline"))
    assert client.get(reverse("admin:tickets_tickethop_export")).status_code == 403
    assert client.get(reverse("admin:tickets_tickethop_changelist")).status_code == 403


# -- secrets ---------------------------------------------------------------------------------------


def sms_settings_form(settings, **changes):
    return {
        "company": settings.company_id,
        "provider": "http",
        "url": "https://sms.example.com/send",
        "method": "POST",
        "auth": "basic",
        "username": "gas",
        "secret": "",
        "parameters": "to={to}\ntext={text}",
        "sender": "Gas",
        "country_prefix": "39",
        "timeout_seconds": "10",
        **changes,
    }


def test_the_sms_secret_is_written_never_shown(admin_client):
    settings = SmsSettingsFactory(secret="old-secret-123")
    url = reverse("admin:tickets_smssettings_change", args=[settings.pk])
    page = admin_client.get(url).content.decode()
    assert "old-secret-123" not in page and "Set: leave empty to keep it." in page
    assert admin_client.post(url, sms_settings_form(settings)).status_code == 302
    settings.refresh_from_db()
    assert (settings.secret, settings.provider) == ("old-secret-123", "http")  # left empty: kept
    admin_client.post(url, sms_settings_form(settings, secret="new-secret-456"))
    settings.refresh_from_db()
    assert settings.secret == "new-secret-456"
    assert "new-secret-456" not in admin_client.get(url).content.decode()
    admin_client.post(url, sms_settings_form(settings, forget_secrets="on"))
    settings.refresh_from_db()
    assert settings.secret == ""


def test_an_sms_url_to_a_private_address_is_refused(admin_client):
    settings = SmsSettingsFactory()
    url = reverse("admin:tickets_smssettings_change", args=[settings.pk])
    response = admin_client.post(url, sms_settings_form(settings, url="http://127.0.0.1:8000/"))
    assert response.status_code == 200 and "url" in response.context["adminform"].form.errors
    settings.refresh_from_db()
    assert settings.provider == "console"


def technician_form(technician, **changes):
    return {
        "line": technician.line_id,
        "name": technician.name,
        "position": technician.position,
        "internal": technician.internal,
        "mobile": technician.mobile,
        "sms_number": "",
        "im_address": "",
        "sms_username": "",
        "sms_password": "",
        "active": "on",
        **changes,
    }


def test_a_technicians_sms_credentials_are_written_never_shown(admin_client):
    technician = TechnicianFactory(sms_username="user-731", sms_password="pass-731")
    url = reverse("admin:tickets_technician_change", args=[technician.pk])
    page = admin_client.get(url).content.decode()
    assert "user-731" not in page and "pass-731" not in page
    assert admin_client.post(url, technician_form(technician, name="Ann")).status_code == 302
    technician.refresh_from_db()
    assert (technician.name, technician.sms_username, technician.sms_password) == (
        "Ann",
        "user-731",
        "pass-731",
    )
    line_page = admin_client.get(reverse("admin:tickets_ticketline_change", args=[technician.line_id]))
    assert "pass-731" not in line_page.content.decode() and "user-731" not in line_page.content.decode()
    admin_client.post(url, technician_form(technician, sms_password="pass-new"))
    technician.refresh_from_db()
    assert technician.sms_password == "pass-new" and technician.sms_username == "user-731"


def test_staff_who_may_only_view_see_no_secret(client):
    technician = TechnicianFactory(sms_username="user-731", sms_password="pass-731")
    settings = SmsSettingsFactory(secret="old-secret-123")
    client.force_login(staff("view_technician", "view_smssettings", "view_ticketline"))
    pages = [
        reverse("admin:tickets_technician_change", args=[technician.pk]),
        reverse("admin:tickets_smssettings_change", args=[settings.pk]),
        reverse("admin:tickets_ticketline_change", args=[technician.line_id]),
        reverse("admin:tickets_technician_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200
        body = response.content.decode()
        assert "user-731" not in body and "pass-731" not in body and "old-secret-123" not in body


# -- the line's rules ------------------------------------------------------------------------------


def line_form(line, **changes):
    data = {
        "company": line.company_id,
        "server": line.server_id,
        "name": line.name,
        "number": line.number,
        "route": "default",
        "active": "on",
        "announcement_sound": "hello-world",
        "confirm_digit": "1",
        "confirm_seconds": "5",
        "in_charge": "",
        "ring_seconds": "20",
        "wrap": "on",
        "rounds": "2",
        "next_ticket": str(line.next_ticket),
        "message_template": line.message_template,
        "record": "on",
        "retention_days": "90",
        "technicians-TOTAL_FORMS": "0",
        "technicians-INITIAL_FORMS": "0",
        "technicians-MIN_NUM_FORMS": "0",
        "technicians-MAX_NUM_FORMS": "1000",
        **changes,
    }
    return data


def test_the_line_form_keeps_the_rules(admin_client, call):
    line = call.line
    Technician.objects.filter(line=line).delete()  # no inline rows to post
    stranger = TechnicianFactory()
    url = reverse("admin:tickets_ticketline_change", args=[line.pk])
    refused = [
        ({"message_template": "{ticket} {secret}"}, "message_template"),
        ({"next_ticket": "2"}, "next_ticket"),
        ({"in_charge": str(stranger.pk)}, "in_charge"),
    ]
    for changes, field in refused:
        response = admin_client.post(url, line_form(line, **changes))
        assert response.status_code == 200, changes
        assert field in response.context["adminform"].form.errors
    line.refresh_from_db()
    assert (line.next_ticket, line.in_charge) == (3, None)
    assert admin_client.post(url, line_form(line, next_ticket="100", ring_seconds="30")).status_code == 302
    line.refresh_from_db()
    assert (line.next_ticket, line.ring_seconds) == (100, 30)


def test_a_save_never_writes_the_counter_from_the_pages_copy(admin_client, call):
    line = call.line
    Technician.objects.filter(line=line).delete()
    url = reverse("admin:tickets_ticketline_change", args=[line.pk])
    shown = line_form(line, ring_seconds="45")  # the page as loaded: next ticket 3
    TicketHopFactory(call=call, technician=None)  # a call takes 3 meanwhile: the counter is at 4
    assert admin_client.post(url, shown).status_code == 200  # 3 would be given twice: refused
    line.refresh_from_db()
    assert (line.next_ticket, line.ring_seconds) == (4, 5)
    assert admin_client.post(url, line_form(line, ring_seconds="45")).status_code == 302
    line.refresh_from_db()
    assert (line.next_ticket, line.ring_seconds) == (4, 45)


def test_the_one_in_charge_is_chosen_among_the_lines_technicians(admin_client):
    line = TicketLineFactory()
    own = TechnicianFactory(line=line)
    TechnicianFactory()
    page = admin_client.get(reverse("admin:tickets_ticketline_change", args=[line.pk]))
    choices = [pk for pk, _ in page.context["adminform"].form.fields["in_charge"].choices if pk]
    assert [int(str(pk)) for pk in choices] == [own.pk]
    assert TicketLine.objects.count() == 2
