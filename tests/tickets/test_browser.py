"""The ticket pages in Debian's chromium at 1280 and 375 px: the log (the seed's lines, `_END`,
answered or not, what was sent, a call's page with its recording playing), and the technicians page
(put in charge with one click, reorder, the hunt order that results); nothing clipped, no word broken."""

import datetime as dt

import pytest

from tests.factories import CompanyFactory, UserFactory
from tests.portal_checks import assert_no_word_broken, assert_nothing_clipped
from tests.tickets.factories import TechnicianFactory, TicketCallFactory, TicketHopFactory, TicketLineFactory
from tickets.models import TicketCall, TicketLine, TicketMessage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PARIS = dt.timezone(dt.timedelta(hours=1))


def wav(seconds=1, rate=8000):
    """A real 8 kHz mono 16-bit WAV of silence a browser plays."""
    data = b"\x00\x00" * rate * seconds
    header = b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt "
    header += (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    header += rate.to_bytes(4, "little") + (rate * 2).to_bytes(4, "little") + (2).to_bytes(2, "little")
    header += (16).to_bytes(2, "little") + b"data" + len(data).to_bytes(4, "little")
    return header + data


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")


@pytest.fixture
def gasco(settings, tmp_path):
    settings.TICKETS_RECORDING_DIR = tmp_path
    company = CompanyFactory(name="GasCo Distribuzione", slug="gasco", time_zone="Europe/Rome")
    UserFactory(company=company, username="giulia")
    line = TicketLineFactory(company=company, name="Gas emergency", number="720")
    TicketLine.objects.filter(pk=line.pk).update(next_ticket=1234)
    techs = [
        TechnicianFactory(line=line, name="Tech1", internal="731", mobile="+393471111111", position=0),
        TechnicianFactory(line=line, name="Tech2", internal="732", mobile="+393472222222", position=1),
        TechnicianFactory(line=line, name="Tech3 Bartolomeo-Santangelo", internal="PJSIP/733", position=2),
    ]
    TicketLine.objects.filter(pk=line.pk).update(in_charge=techs[1])
    start = dt.datetime(2026, 12, 4, 22, 10, 5, tzinfo=PARIS)
    calls = []
    for n in range(12):
        began = start - dt.timedelta(hours=n * 7)
        answered = n % 3 != 1
        call = TicketCallFactory(
            line=line, caller="03472619287" if n != 2 else "=HYPERLINK(\"x\")", started_at=began,
            state=TicketCall.State.ANSWERED if answered else TicketCall.State.ABANDONED,
            ended_at=began + dt.timedelta(minutes=3), answered_by=techs[0] if answered else None,
            note="" if answered else "the caller hung up while Tech1 was ringing",
        )  # fmt: skip
        TicketHopFactory(
            call=call, technician=techs[1], sequence=1, started_at=began, dial_status="NOANSWER",
            ended_at=began + dt.timedelta(seconds=20),
        )  # fmt: skip
        last = TicketHopFactory(
            call=call, technician=techs[0], sequence=2, started_at=began + dt.timedelta(seconds=20),
            ended_at=began + dt.timedelta(minutes=3), dial_status="ANSWER" if answered else "CANCEL",
            answered=answered, last=True,
        )  # fmt: skip
        TicketMessage.objects.create(
            call=call, hop=last, technician=techs[0], channel="sms", to="+393471111111", body="x",
            state=TicketMessage.State.SENT, delivery_status="DELIVRD",
        )  # fmt: skip
        TicketMessage.objects.create(
            call=call, hop=last, technician=techs[0], channel="im", to="pjsip:731", body="x",
            state=TicketMessage.State.FAILED if n == 0 else TicketMessage.State.SENT,
            last_error="Message technology not found." if n == 0 else "",
        )  # fmt: skip
        calls.append(call)
    relative = "gasco/2026/12/ticket-1-1257.wav"
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_bytes(wav())
    TicketCall.objects.filter(pk=calls[0].pk).update(recording=relative)
    return company, line, techs, calls


@pytest.mark.parametrize("width", [1280, 375])
def test_the_log_and_a_calls_page(live_server, browser, screenshot_dir, gasco, width):
    company, line, techs, calls = gasco
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    log_in(page, live_server, "giulia")

    page.goto(f"{live_server.url}/portal/gasco/tickets/")
    rows = page.locator("table.ticket-log tbody tr")
    assert rows.count() == 24
    assert page.locator("tr.hop-end").count() == 12
    newest = rows.first.inner_text()
    assert "04.12.2026_22.10_04.12.2026_22.13_Ticket_1235_Caller_03472619287_Called_731_END" in newest
    assert "Message technology not found." in newest
    page.screenshot(path=screenshot_dir / f"tickets-log-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.ticket-log td")

    page.select_option("select[name=answered]", "no")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("table.ticket-log tbody tr").count() == 12 + 4
    assert page.locator("tr.hop-answered").count() == 0

    # A call going on: its row follows the hunt without a reload (static/js/live_sections.js).
    ringing = TicketCallFactory(line=line, caller="0399", state=TicketCall.State.HUNTING)
    hop = TicketHopFactory(call=ringing, technician=techs[1], sequence=1, started_at=ringing.started_at)
    page.goto(f"{live_server.url}/portal/gasco/tickets/?caller=0399")
    assert page.locator(f'tr[data-ticket="{hop.ticket}"]').inner_text().count("ringing") == 1
    page.evaluate("window.notReloaded = true")
    hop.answered, hop.ended_at, hop.dial_status, hop.last = True, ringing.started_at, "ANSWER", True
    hop.save()
    page.wait_for_selector(f'tr[data-ticket="{hop.ticket}"].hop-answered', timeout=6000)
    assert page.evaluate("window.notReloaded") is True

    page.goto(f"{live_server.url}/portal/gasco/tickets/calls/{calls[0].pk}/")
    assert page.locator("table.ticket-hops tbody tr").count() == 2
    duration = page.evaluate(
        """() => new Promise((resolve) => {
               const audio = document.querySelector('audio');
               audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
               audio.addEventListener('error', () => resolve(-1));
               audio.preload = 'metadata';
               audio.load();
           })"""
    )
    assert duration == pytest.approx(1, abs=0.05)
    page.screenshot(path=screenshot_dir / f"tickets-call-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.ticket-hops td, table.ticket-messages td")
    context.close()


@pytest.mark.parametrize("width", [1280, 375])
def test_the_technicians_page_sets_who_is_in_charge_and_the_order(
    live_server, browser, screenshot_dir, gasco, width
):
    company, line, techs, _ = gasco
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    log_in(page, live_server, "giulia")

    page.goto(f"{live_server.url}/portal/gasco/tickets/lines/{line.pk}/technicians/")

    def hunt():
        return page.locator("ol.hunt li").evaluate_all("items => items.map(li => li.dataset.huntName)")

    assert hunt() == ["Tech2", "Tech3 Bartolomeo-Santangelo", "Tech1"]
    page.screenshot(path=screenshot_dir / f"tickets-technicians-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.technicians td")

    page.locator('tr[data-technician="Tech1"]').get_by_role("button", name="Put in charge").click()
    page.wait_for_selector("text=Tech1 is in charge: rung first.")
    assert hunt() == ["Tech1", "Tech2", "Tech3 Bartolomeo-Santangelo"]
    line.refresh_from_db()
    assert line.in_charge_id == techs[0].pk

    page.get_by_role("button", name="Move Tech3 Bartolomeo-Santangelo up").click()
    page.wait_for_selector("ol.hunt li:nth-child(2)[data-hunt-name^=Tech3]")
    assert hunt() == ["Tech1", "Tech3 Bartolomeo-Santangelo", "Tech2"]
    names = page.locator("table.technicians tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.technician)"
    )
    assert names == ["Tech1", "Tech3 Bartolomeo-Santangelo", "Tech2"]
    page.screenshot(path=screenshot_dir / f"tickets-technicians-after-{width}.png", full_page=True)
    assert_nothing_clipped(page)

    page.goto(f"{live_server.url}/portal/gasco/tickets/lines/")
    assert "Tech1" in page.locator("table.ticket-lines").inner_text()
    page.screenshot(path=screenshot_dir / f"tickets-lines-{width}.png", full_page=True)
    assert_nothing_clipped(page)
    assert_no_word_broken(page, "table.ticket-lines td")
    for path, name in ((f"lines/{line.pk}", "line-settings"), ("sms", "sms")):
        page.goto(f"{live_server.url}/portal/gasco/tickets/{path}/")
        page.screenshot(path=screenshot_dir / f"tickets-{name}-{width}.png", full_page=True)
        assert_nothing_clipped(page)
    context.close()
