"""The portal's statistics page: periods, campaign, comparison, charts, CSV, live counts, tenancy,
hostile input and its pinned queries."""

import csv
import datetime as dt
import io
import re
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from click2call.models import CallRequest
from tests.click2call.factories import CampaignFactory
from tests.click2call.stats_data import COMPANY, attempt_with_legs, request_at
from tests.hostile import HOSTILE_STRINGS
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
Status = CallRequest.Status


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def stats_url(company, name="stats"):
    return reverse(f"click2call:{name}", args=[company.slug])


@pytest.fixture
def campaign(company):
    return CampaignFactory(company=company, name="Spring")


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def history(campaign):
    done = request_at(campaign, paris(2026, 3, 10, 9))
    attempt_with_legs(done, first_ring=4, second_rings=(6,), talk=60)
    failed = request_at(
        campaign, paris(2026, 3, 10, 23, 30), status=Status.FAILED_USER, carrier="=cmd|'/C calc'!A0"
    )
    attempt_with_legs(failed, first_ring=None)
    company_first = request_at(campaign, paris(2026, 3, 9, 12))
    attempt_with_legs(company_first, first_party=COMPANY, first_ring=10, second_rings=(2,), talk=30)
    return campaign


def figure(html: str, key: str) -> str:
    match = re.search(rf'data-figure="{key}">([^<]*)<', html)
    return match and match[1]


def test_a_day_shows_its_figures_legs_chart_and_the_day_before(logged_in, company, history):
    response = logged_in.get(stats_url(company), {"kind": "day", "day": "2026-03-10"})
    html = response.content.decode()
    assert response.status_code == 200
    assert (figure(html, "requests"), figure(html, "completed"), figure(html, "failed_user")) == (
        "2",
        "1",
        "1",
    )
    assert figure(html, "visitor_legs") == "2" and figure(html, "company_legs") == "1"
    assert figure(html, "visitor_answer_rate") == "50.0&nbsp;%"
    # 24 columns, one per hour, drawn on the server; 09h and 23h have a request each.
    assert html.count("<g data-column=") == 24
    assert 'data-column="09h"><title>09h: 1 request</title>' in html
    # Compared with the 9th: 1 request then, 2 now.
    row = re.search(r'<tr data-delta="requests">(.*?)</tr>', html, re.S)[1]
    assert re.findall(r'class="num">([^<]*)<', row) == ["2", "1", "+1", "+100.0&nbsp;%"]
    assert "2026-03-09 – 2026-03-09" in html


def test_a_comparison_from_zero_says_new(logged_in, company, history):
    html = logged_in.get(
        stats_url(company),
        {
            "kind": "custom",
            "start": "2026-03-10",
            "end": "2026-03-10",
            "compare": "custom",
            "compare_start": "2026-02-01",
            "compare_end": "2026-02-02",
        },
    ).content.decode()
    row = re.search(r'<tr data-delta="requests">(.*?)</tr>', html, re.S)[1]
    assert re.findall(r'class="num">([^<]*)<', row) == ["2", "0", "+2", "new"]


def test_today_by_default(logged_in, company, campaign):
    request_at(campaign, timezone.now())
    html = logged_in.get(stats_url(company)).content.decode()
    today = timezone.now().astimezone(PARIS).date()
    assert f"From {today} to {today} included, Europe/Paris" in html
    assert html.count("<g data-column=") in (23, 24, 25)
    assert figure(html, "requests") == "1"


def test_a_month_with_days_and_campaigns(logged_in, company, history):
    other = CampaignFactory(company=company, name="Autumn")
    request_at(other, paris(2026, 3, 20, 10))
    html = logged_in.get(stats_url(company), {"kind": "month", "day": "2026-03-15"}).content.decode()
    assert "From 2026-03-01 to 2026-03-31 included, Europe/Paris" in html
    assert html.count("<g data-column=") == 31
    assert figure(html, "requests") == "4"
    assert ">Spring</a>" in html and ">Autumn</a>" in html
    query = {"kind": "month", "day": "2026-03-15", "campaign": other.pk}
    html = logged_in.get(stats_url(company), query).content.decode()
    assert figure(html, "requests") == "1"
    assert "campaign Autumn" in html


def test_a_period_with_no_calls(logged_in, company, campaign):
    html = logged_in.get(stats_url(company), {"kind": "week", "day": "2026-03-10"}).content.decode()
    assert figure(html, "requests") == "0"
    assert "No request in this period." in html
    assert figure(html, "visitor_answer_rate") == "—"


def test_csv_has_the_figures_deltas_and_is_formula_safe(logged_in, company, history):
    response = logged_in.get(stats_url(company), {"kind": "day", "day": "2026-03-10", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "c2c-stats-" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    requests = next(row for row in rows if row["section"] == "figures" and row["measure"] == "Requests")
    assert (requests["value"], requests["compared period"], requests["delta"], requests["delta %"]) == (
        "2",
        "1",
        "1",
        "100.0",
    )
    directions = [row["item"] for row in rows if row["section"] == "direction"]
    # "FR =cmd...": a cell starting with FR is no formula, and is left as it was.
    assert "FR =cmd|'/C calc'!A0" in directions
    assert all(not row["item"].startswith(("=", "+", "-", "@")) for row in rows)
    assert sum(1 for row in rows if row["section"] == "series") == 24 * 4


def test_csv_escapes_a_direction_starting_like_a_formula(logged_in, company, campaign):
    request_at(campaign, paris(2026, 3, 10, 9), country="", carrier="x")
    CallRequest.objects.update(country="=1")
    response = logged_in.get(stats_url(company), {"kind": "day", "day": "2026-03-10", "format": "csv"})
    items = {row["item"] for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert "'=1 x" in items


def test_live_counts_are_on_the_page_and_their_own_url(logged_in, company, campaign):
    now = timezone.now()
    request_at(campaign, now, status=Status.DIALING)
    retry = request_at(campaign, now, status=Status.PENDING)
    CallRequest.objects.filter(pk=retry.pk).update(next_try_at=now + dt.timedelta(minutes=1))
    request_at(campaign, now, status=Status.FAILED_COMPANY)
    html = logged_in.get(stats_url(company)).content.decode()
    assert 'data-live-section="live"' in html and "js/live_sections.js" in html
    assert f'data-live-url="{stats_url(company, "stats-live")}"' in html
    live = logged_in.get(stats_url(company, "stats-live"))
    assert live["Cache-Control"].startswith("max-age=0")
    body = live.content.decode()
    assert 'data-live="in_progress">1<' in body
    assert 'data-live="retries_waiting">1<' in body
    assert 'data-live="failed_waiting">1<' in body
    # A call that ends shows on the next poll.
    CallRequest.objects.filter(status=Status.DIALING).update(status=Status.COMPLETED)
    assert 'data-live="in_progress">0<' in logged_in.get(stats_url(company, "stats-live")).content.decode()


@pytest.mark.parametrize("name", ["stats", "stats-live"])
def test_another_company_gets_404(client, company_user, name):
    assert_other_company_gets_404(client, stats_url(company_user.company, name), owner=company_user)


def test_another_company_campaign_is_no_filter(logged_in, company, history):
    stranger = CampaignFactory()
    request_at(stranger, paris(2026, 3, 10, 9))
    response = logged_in.get(stats_url(company), {"campaign": stranger.pk})
    assert response.status_code == 400
    assert stranger.name not in response.content.decode()


@pytest.mark.parametrize(
    "query, words",
    [
        ({"kind": "custom", "start": "2026-03-10", "end": "2026-03-01"}, "ends before it starts"),
        ({"kind": "custom", "start": "2024-01-01", "end": "2026-03-01"}, "at most 366 days"),
        ({"kind": "custom", "start": "1900-01-01", "end": "1900-01-02"}, "A date from"),
        ({"day": "2026-02-30"}, "valid date"),
        ({"kind": "year"}, "valid choice"),
        ({"compare": "custom"}, "both dates"),
        ({"campaign": "1 OR 1=1"}, "valid choice"),
    ],
)
def test_bad_periods_are_400_with_a_message(logged_in, company, query, words):
    response = logged_in.get(stats_url(company), query)
    assert response.status_code == 400
    assert words in response.content.decode()


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
def test_hostile_input_never_500(logged_in, company, value):
    for name in ("kind", "day", "start", "campaign", "compare", "compare_end", "format"):
        response = logged_in.get(stats_url(company), {name: value})
        assert response.status_code in (200, 400), (name, value)


def test_the_page_takes_a_fixed_number_of_queries(logged_in, company, history, django_assert_num_queries):
    # Session, user, company, the menu's permissions (2), then: the series (whose days add up to the
    # period's counts), the legs, compared (2), directions, campaigns, live, and the campaigns of the
    # filter's choices.
    with django_assert_num_queries(13):
        logged_in.get(stats_url(company), {"kind": "month", "day": "2026-03-10"})
    for _ in range(5):
        attempt_with_legs(request_at(CampaignFactory(company=company), paris(2026, 3, 11, 9)), first_ring=1)
    with django_assert_num_queries(13):
        logged_in.get(stats_url(company), {"kind": "month", "day": "2026-03-10"})


def test_anonymous_goes_to_sign_in(client, company):
    response = client.get(stats_url(company))
    assert response.status_code == 302
