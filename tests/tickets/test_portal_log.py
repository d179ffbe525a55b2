"""The portal's ticket log (one row per hop in the seed's format, `_END` on a call's last hop,
answered or not, what was sent), its filters in the company's days, paging and CSV, a call's page,
and its recording: played and downloaded by the company's users only, from inside the recording
directory only."""

import csv
import datetime as dt
import io
import os

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import CompanyFactory, UserFactory
from tests.hostile import HOSTILE_STRINGS
from tests.tenancy import assert_other_company_gets_404
from tests.tickets.factories import TechnicianFactory, TicketCallFactory, TicketHopFactory, TicketLineFactory
from tickets.models import TicketCall, TicketLine, TicketMessage

pytestmark = pytest.mark.django_db

PARIS = dt.timezone(dt.timedelta(hours=1))  # Europe/Paris in October 2012 was +2, in December +1
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 28 + b"data" + b"\x01\x02" * 50


def url(name, company, **kwargs):
    return reverse(f"tickets:{name}", kwargs={"company_slug": company.slug, **kwargs})


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def line(company):
    line = TicketLineFactory(company=company, name="Gas emergency", number="720")
    TicketLine.objects.filter(pk=line.pk).update(next_ticket=1234)
    line.refresh_from_db()
    return line


@pytest.fixture
def seed_call(line):
    """The seed's example: 732 rung first, not answering; then 731, who answers (the END hop)."""
    tech2 = TechnicianFactory(line=line, name="Tech2", internal="732")
    tech1 = TechnicianFactory(line=line, name="Tech1", internal="731", mobile="+393471111111")
    start = dt.datetime(2012, 12, 12, 14, 0, 5, tzinfo=PARIS)
    call = TicketCallFactory(
        line=line, caller="03472619287", started_at=start, state=TicketCall.State.ANSWERED,
        ended_at=start + dt.timedelta(minutes=2), answered_by=tech1,
    )  # fmt: skip
    first = TicketHopFactory(
        call=call, technician=tech2, sequence=1, started_at=start, ended_at=start + dt.timedelta(seconds=20),
        dial_status="NOANSWER",
    )  # fmt: skip
    last = TicketHopFactory(
        call=call, technician=tech1, sequence=2, started_at=start + dt.timedelta(seconds=20),
        ended_at=start + dt.timedelta(minutes=2), dial_status="ANSWER", answered=True, last=True,
    )  # fmt: skip
    TicketMessage.objects.create(
        call=call, hop=last, technician=tech1, channel="im", to="pjsip:731", body="x",
        state=TicketMessage.State.FAILED, last_error="Message technology not found.",
    )  # fmt: skip
    TicketMessage.objects.create(
        call=call, hop=last, technician=tech1, channel="sms", to="+393471111111", body="x",
        state=TicketMessage.State.SENT, delivery_status="DELIVRD",
    )  # fmt: skip
    return call, first, last


# The log


def test_the_log_has_one_row_per_hop_in_the_seeds_format(logged_in, company, seed_call):
    call, first, last = seed_call
    response = logged_in.get(url("log", company))
    assert response.status_code == 200
    body = response.content.decode().replace("<wbr>", "")
    assert "12.12.2012_14.00_12.12.2012_14.00_Ticket_1234_Caller_03472619287_Called_732<" in body
    assert "12.12.2012_14.00_12.12.2012_14.02_Ticket_1235_Caller_03472619287_Called_731_END<" in body
    rows = body.split("<tbody>")[1].split("</tbody>")[0].split("<tr ")[1:]
    assert len(rows) == 2
    newest, oldest = rows
    assert 'data-ticket="1235"' in newest and "hop-end" in newest and "hop-answered" in newest
    assert ">answered<" in newest and ">END<" in newest
    assert 'data-ticket="1234"' in oldest and "not answered" in oldest and "did not answer" in oldest
    assert "hop-end" not in oldest and ">END<" not in oldest
    # What was sent, on the hop it was sent for: the IM failed with Asterisk's answer, the SMS delivered.
    assert "Message technology not found." in newest and "delivery: DELIVRD" in newest
    assert 'data-message="sms"' in newest and 'data-message="im"' in newest
    assert "data-message" not in oldest


def test_the_log_is_in_the_companys_time_zone(client, seed_call):
    call, _, _ = seed_call
    company = call.line.company
    company.time_zone = "America/New_York"
    company.save()
    client.force_login(UserFactory(company=company))
    body = client.get(url("log", company)).content.decode().replace("<wbr>", "")
    assert "12.12.2012_08.00_12.12.2012_08.02_Ticket_1235" in body


def test_a_hop_still_ringing_is_said_and_the_page_follows_it(logged_in, company, line):
    call = TicketCallFactory(line=line, state=TicketCall.State.HUNTING)
    TicketHopFactory(call=call, technician=TechnicianFactory(line=line))
    body = logged_in.get(url("log", company)).content.decode().replace("<wbr>", "")
    assert ">ringing<" in body and "live_sections.js" in body


def test_an_ended_log_does_not_poll(logged_in, company, seed_call):
    assert "live_sections.js" not in logged_in.get(url("log", company)).content.decode().replace("<wbr>", "")


def _tickets(response):
    return [hop.ticket for hop, _, _ in response.context["rows"]]


def test_the_log_filters_by_line_technician_answered_and_caller(logged_in, company, line, seed_call):
    call, first, last = seed_call
    water = TicketLineFactory(company=company, name="Water")
    other = TicketHopFactory(call=TicketCallFactory(line=water, caller="+33612345678"))
    assert _tickets(logged_in.get(url("log", company), {"line": line.pk})) == [1235, 1234]
    assert _tickets(logged_in.get(url("log", company), {"line": water.pk})) == [other.ticket]
    assert _tickets(logged_in.get(url("log", company), {"technician": first.technician_id})) == [1234]
    assert _tickets(logged_in.get(url("log", company), {"answered": "yes"})) == [1235]
    assert _tickets(logged_in.get(url("log", company), {"answered": "no"})) == [other.ticket, 1234]
    assert _tickets(logged_in.get(url("log", company), {"caller": "2619"})) == [1235, 1234]
    assert _tickets(logged_in.get(url("log", company), {"caller": "+336"})) == [other.ticket]


def test_the_log_filters_by_the_companys_days(logged_in, company, line):
    tech = TechnicianFactory(line=line)
    paris_midnight = dt.datetime(2026, 3, 10, 0, 0, tzinfo=company.tzinfo)

    def hop_at(moment):
        return TicketHopFactory(
            call=TicketCallFactory(line=line, started_at=moment), technician=tech, started_at=moment
        )

    before = hop_at(paris_midnight - dt.timedelta(seconds=1))  # 9 March, 23:59:59 in Paris
    first = hop_at(paris_midnight)
    last = hop_at(paris_midnight + dt.timedelta(days=2) - dt.timedelta(seconds=1))  # 11 March, 23:59:59
    after = hop_at(paris_midnight + dt.timedelta(days=2))
    response = logged_in.get(url("log", company), {"start": "2026-03-10", "end": "2026-03-11"})
    assert _tickets(response) == [last.ticket, first.ticket]
    assert _tickets(logged_in.get(url("log", company), {"end": "2026-03-09"})) == [before.ticket]
    assert _tickets(logged_in.get(url("log", company), {"start": "2026-03-12"})) == [after.ticket]


@pytest.mark.parametrize(
    "query",
    [
        {"line": "abc"},
        {"line": "99999999999999999999999"},
        {"technician": "-1"},
        {"answered": "maybe"},
        {"start": "2026-13-01"},
        {"start": "0001-01-01"},
        {"end": "9999-12-31"},
        {"start": "2026-03-02", "end": "2026-03-01"},
        {"start": "2020-01-01", "end": "2026-01-01"},
        {"caller": "x" * 41},
        {"caller": "\u202e1005551"},
        {"caller": "555\r\n1001"},
    ],
)
def test_a_hostile_log_filter_is_a_400_that_says_why(logged_in, company, seed_call, query):
    response = logged_in.get(url("log", company), query)
    assert response.status_code == 400
    body = response.content.decode().replace("<wbr>", "")
    assert 'class="errors"' in body and "Ticket_1235" not in body


@pytest.mark.parametrize("name", sorted(HOSTILE_STRINGS))
def test_a_hostile_caller_search_never_fails(logged_in, company, seed_call, name):
    response = logged_in.get(url("log", company), {"caller": HOSTILE_STRINGS[name]})
    assert response.status_code in (200, 400)


def test_another_companys_line_or_technician_is_no_filter(logged_in, company, seed_call):
    stranger = TicketHopFactory()
    for query in ({"line": stranger.line_id}, {"technician": stranger.technician_id}):
        response = logged_in.get(url("log", company), query)
        assert response.status_code == 400
        assert f"Ticket_{stranger.ticket}_" not in response.content.decode().replace("<wbr>", "")


def test_another_companys_hops_are_not_in_the_log(logged_in, company, seed_call):
    stranger = TicketHopFactory(call=TicketCallFactory(caller="0666"))
    body = logged_in.get(url("log", company)).content.decode().replace("<wbr>", "")
    assert "Caller_0666" not in body and stranger.line.name not in body


def test_the_log_is_paged(logged_in, company, line):
    tech = TechnicianFactory(line=line)
    call = TicketCallFactory(line=line)
    for n in range(55):
        TicketHopFactory(
            call=call, technician=tech, sequence=n + 1, started_at=call.started_at + dt.timedelta(seconds=n)
        )
    first = logged_in.get(url("log", company))
    second = logged_in.get(url("log", company), {"page": 2})
    assert len(first.context["rows"]) == 50 and len(second.context["rows"]) == 5
    assert _tickets(first)[0] == 1234 + 54 and _tickets(second)[-1] == 1234
    assert 'rel="next"' in first.content.decode().replace("<wbr>", "")
    for page in ("99999999999999999999999", "-1", "abc", "١"):
        assert logged_in.get(url("log", company), {"page": page}).status_code == 200


def test_the_log_reads_a_fixed_number_of_queries(logged_in, company, line, django_assert_num_queries):
    tech = TechnicianFactory(line=line)

    def add_call():
        call = TicketCallFactory(line=line)
        hops = [TicketHopFactory(call=call, technician=tech, sequence=n) for n in (1, 2)]
        TicketMessage.objects.create(
            call=call, hop=hops[1], technician=tech, channel="im", to="pjsip:1", body="x"
        )

    add_call()
    # session, user, company, permissions (two), the filters' lines and technicians, count, hops, messages
    with django_assert_num_queries(10):
        assert logged_in.get(url("log", company)).status_code == 200
    for _ in range(5):
        add_call()
    with django_assert_num_queries(10):
        assert logged_in.get(url("log", company)).status_code == 200


# The CSV


def _csv(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="tickets-log-')
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_csv_has_the_logs_rows_with_their_filters(logged_in, company, seed_call):
    rows = _csv(logged_in.get(url("log", company), {"format": "csv"}))
    assert [row["log"] for row in rows] == [
        "12.12.2012_14.00_12.12.2012_14.02_Ticket_1235_Caller_03472619287_Called_731_END",
        "12.12.2012_14.00_12.12.2012_14.00_Ticket_1234_Caller_03472619287_Called_732",
    ]
    end, first = rows
    assert (end["ticket"], end["answered"], end["last"], end["technician"]) == ("1235", "1", "1", "Tech1")
    assert (first["answered"], first["last"], first["dial_status"]) == ("0", "0", "NOANSWER")
    assert end["started_at"].startswith("2012-12-12 14:00:25")
    assert end["im"] == "failed to pjsip:731: Message technology not found."
    assert end["sms"] == "sent to +393471111111 (DELIVRD)" and first["sms"] == ""
    only = _csv(logged_in.get(url("log", company), {"format": "csv", "answered": "no"}))
    assert [row["ticket"] for row in only] == ["1234"]


@pytest.mark.parametrize("caller", ['=HYPERLINK("http://x","y")', "+15551001", "-2+3", "@SUM(A1)", "\t=1+1"])
def test_a_formula_in_a_caller_id_is_escaped_in_the_csv(logged_in, company, line, caller):
    TicketHopFactory(
        call=TicketCallFactory(line=line, caller=caller),
        technician=TechnicianFactory(line=line, name="=cmd|' /C calc'!A0"),
    )
    (row,) = _csv(logged_in.get(url("log", company), {"format": "csv"}))
    assert row["caller"] == "'" + caller
    assert row["technician"] == "'=cmd|' /C calc'!A0"
    assert row["ticket"] == "1234"  # a number stays a number


def test_a_caller_id_with_commas_quotes_and_line_breaks_stays_in_its_cell(logged_in, company, line):
    caller = '555,1001,"x"\r\n=1'
    TicketHopFactory(
        call=TicketCallFactory(line=line, caller=caller), technician=TechnicianFactory(line=line)
    )
    (row,) = _csv(logged_in.get(url("log", company), {"format": "csv"}))
    assert row["caller"] == caller and row["ticket"] == "1234"


def test_a_download_too_large_is_refused_with_a_word(logged_in, company, seed_call, monkeypatch):
    monkeypatch.setattr("tickets.views.EXPORT_MAX_ROWS", 1)
    response = logged_in.get(
        url("log", company), {"format": "csv", "line": seed_call[0].line_id}, follow=True
    )
    assert response.redirect_chain[0][0] == f"{url('log', company)}?line={seed_call[0].line_id}"
    assert "more than one download holds" in response.content.decode().replace("<wbr>", "")


# A call's page and its recording


@pytest.fixture
def recordings(settings, tmp_path):
    settings.TICKETS_RECORDING_DIR = tmp_path / "recordings"
    settings.TICKETS_RECORDING_DIR.mkdir()
    return settings.TICKETS_RECORDING_DIR


def record(call, recordings, name="ticket-1-1234.wav"):
    relative = f"{call.line.company.slug}/2012/12/{name}"
    (recordings / relative).parent.mkdir(parents=True, exist_ok=True)
    (recordings / relative).write_bytes(WAV)
    TicketCall.objects.filter(pk=call.pk).update(recording=relative)
    call.refresh_from_db()
    return relative


def test_a_calls_page_shows_its_hops_messages_and_recording(logged_in, company, seed_call, recordings):
    call, _, _ = seed_call
    record(call, recordings)
    body = logged_in.get(url("call", company, pk=call.pk)).content.decode().replace("<wbr>", "")
    assert body.index("Ticket_1234_Caller_03472619287_Called_732<") < body.index(
        "Ticket_1235_Caller_03472619287_Called_731_END<"
    )
    assert "Answered</span> by Tech1" in body
    assert "Message technology not found." in body and "delivery: DELIVRD" in body
    audio = f'<audio controls preload="none" src="{url("call-recording", company, pk=call.pk)}">'
    assert audio in body
    assert f'href="{url("call-recording", company, pk=call.pk)}?download=1" download' in body


def test_the_recording_plays_and_downloads(logged_in, company, seed_call, recordings):
    call, _, _ = seed_call
    record(call, recordings)
    played = logged_in.get(url("call-recording", company, pk=call.pk))
    assert played.status_code == 200 and played["Content-Type"] == "audio/wav"
    assert b"".join(played.streaming_content) == WAV
    assert played["Content-Disposition"].startswith("inline")
    assert "no-store" in played["Cache-Control"]
    downloaded = logged_in.get(url("call-recording", company, pk=call.pk), {"download": "1"})
    assert downloaded["Content-Disposition"] == 'attachment; filename="ticket-1-1234.wav"'


def test_the_recording_is_the_companys_own(client, company_user, seed_call, recordings):
    call, _, _ = seed_call
    record(call, recordings)
    assert_other_company_gets_404(
        client, url("call-recording", call.line.company, pk=call.pk), owner=company_user
    )
    assert_other_company_gets_404(client, url("call", call.line.company, pk=call.pk), owner=company_user)


def test_the_recording_by_kind_of_user(client, company, seed_call, recordings, staff_user):
    call, _, _ = seed_call
    record(call, recordings)
    address = url("call-recording", company, pk=call.pk)
    response = client.get(address)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    client.force_login(staff_user)
    assert client.get(address).status_code == 404
    client.force_login(UserFactory(company=company))  # any user of the company
    assert client.get(address).status_code == 200
    company.active = False
    company.save()
    assert client.get(address).status_code == 404
    client.force_login(UserFactory(company=CompanyFactory()))
    assert client.get(address).status_code == 404


@pytest.mark.parametrize(
    "stored", ["../outside.wav", "../recordings-evil/x.wav", "{outside}", ".", "a/../../outside.wav"]
)
def test_a_recording_path_out_of_the_directory_is_never_served(
    logged_in, company, seed_call, recordings, stored
):
    call, _, _ = seed_call
    outside = recordings.parent / "outside.wav"
    outside.write_bytes(b"RIFF secret")
    (recordings.parent / "recordings-evil").mkdir()
    (recordings.parent / "recordings-evil" / "x.wav").write_bytes(b"RIFF secret")
    TicketCall.objects.filter(pk=call.pk).update(recording=stored.format(outside=outside))
    response = logged_in.get(url("call-recording", company, pk=call.pk))
    assert response.status_code == 404
    assert b"secret" not in response.content
    assert "<audio" not in logged_in.get(url("call", company, pk=call.pk)).content.decode().replace(
        "<wbr>", ""
    )


def test_a_link_out_of_the_directory_is_never_followed(logged_in, company, seed_call, recordings):
    call, _, _ = seed_call
    (recordings.parent / "outside.wav").write_bytes(b"RIFF secret")
    os.symlink(recordings.parent / "outside.wav", recordings / "link.wav")
    TicketCall.objects.filter(pk=call.pk).update(recording="link.wav")
    assert logged_in.get(url("call-recording", company, pk=call.pk)).status_code == 404


def test_a_missing_recording_file_is_said(logged_in, company, seed_call, recordings):
    call, _, _ = seed_call
    relative = record(call, recordings)
    (recordings / relative).unlink()
    assert logged_in.get(url("call-recording", company, pk=call.pk)).status_code == 404
    body = logged_in.get(url("call", company, pk=call.pk)).content.decode().replace("<wbr>", "")
    assert "The recording file is missing." in body and "<audio" not in body


def test_a_deleted_recording_is_said_and_not_served(logged_in, company, seed_call, recordings):
    call, _, _ = seed_call
    record(call, recordings)  # a file left behind by a deletion that failed half-way
    TicketCall.objects.filter(pk=call.pk).update(recording_deleted_at=timezone.now())
    assert logged_in.get(url("call-recording", company, pk=call.pk)).status_code == 404
    body = logged_in.get(url("call", company, pk=call.pk)).content.decode().replace("<wbr>", "")
    assert "Deleted on" in body and "kept 90 days" in body and "<audio" not in body


def test_a_call_not_recorded_says_why(logged_in, company, seed_call):
    call, _, _ = seed_call
    TicketCall.objects.filter(pk=call.pk).update(recording_note="the recording directory is not writable")
    body = logged_in.get(url("call", company, pk=call.pk)).content.decode().replace("<wbr>", "")
    assert "None: the recording directory is not writable." in body


def test_without_the_setting_recordings_are_read_under_var(logged_in, company, seed_call, settings):
    call, _, _ = seed_call
    del settings.TICKETS_RECORDING_DIR
    relative = f"{company.slug}/2012/12/ticket-x.wav"
    path = settings.VAR_DIR / "recordings" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WAV)
    try:
        TicketCall.objects.filter(pk=call.pk).update(recording=relative)
        assert logged_in.get(url("call-recording", company, pk=call.pk)).status_code == 200
    finally:
        path.unlink()


def test_a_pending_message_and_a_call_going_on_are_said(logged_in, company, line):
    call = TicketCallFactory(line=line, state=TicketCall.State.HUNTING)
    hop = TicketHopFactory(call=call, technician=TechnicianFactory(line=line))
    body = logged_in.get(url("call", company, pk=call.pk)).content.decode()
    assert "None yet: they are sent after the release." in body and "live_sections.js" in body
    TicketMessage.objects.create(
        call=call, hop=hop, technician=hop.technician, channel="sms", to="+39347", body="x"
    )
    body = logged_in.get(url("call", company, pk=call.pk)).content.decode()
    assert "waiting to be sent" in body


def test_a_calls_page_reads_a_fixed_number_of_queries(
    logged_in, company, seed_call, django_assert_num_queries
):
    call, _, last = seed_call
    # session, user, company, permissions (two), the call, its hops, its messages
    with django_assert_num_queries(8):
        assert logged_in.get(url("call", company, pk=call.pk)).status_code == 200
    for n in range(3, 8):
        TicketHopFactory(call=call, technician=last.technician, sequence=n)
    with django_assert_num_queries(8):
        assert logged_in.get(url("call", company, pk=call.pk)).status_code == 200
