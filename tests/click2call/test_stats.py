"""click2call.stats on crafted data: figures per leg and campaign, directions, the company's days
(midnight and DST), empty periods, comparisons, the chart's series, live counts, pinned queries."""

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from click2call import stats
from click2call.models import CallRequest
from tests.click2call.factories import CampaignFactory
from tests.click2call.stats_data import COMPANY, VISITOR, attempt_with_legs, request_at

pytestmark = pytest.mark.django_db
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
Status = CallRequest.Status


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


@pytest.fixture
def campaign(company):
    return CampaignFactory(company=company, name="Spring")


@pytest.fixture
def history(company, campaign):
    """On 2026-03-10 (Paris): a completed call (visitor first), a call whose visitor did not answer,
    one whose two operators did not answer, one completed company first, one still pending."""
    day = paris(2026, 3, 10, 9)
    done = request_at(campaign, day)
    attempt_with_legs(done, first_ring=4, second_rings=(6,), talk=60)
    no_visitor = request_at(campaign, day, status=Status.FAILED_USER, country="BE", carrier="Proximus")
    attempt_with_legs(no_visitor, first_ring=None)
    no_company = request_at(campaign, day, status=Status.FAILED_COMPANY)
    attempt_with_legs(no_company, first_ring=2, second_rings=(None, None))
    company_first = request_at(campaign, day)
    attempt_with_legs(company_first, first_party=COMPANY, first_ring=10, second_rings=(2,), talk=30)
    request_at(campaign, day, status=Status.PENDING)
    return campaign


def test_figures_of_a_day_per_status_and_per_leg(company, history):
    figures = stats.period_figures(company=company, start=dt.date(2026, 3, 10), end=dt.date(2026, 3, 10))
    counts = (figures.requests, figures.completed, figures.failed_user, figures.failed_company, figures.open)
    assert counts == (5, 2, 1, 1, 1)
    assert figures.completion_rate == 40.0
    # Visitor legs: first legs of 3 visitor-first tries (4 s, unanswered, 2 s) and the dialed leg of
    # the company-first try (2 s, talked 30 s).
    visitor = figures.visitor
    assert (visitor.legs, visitor.answered, visitor.answer_rate) == (4, 3, 75.0)
    assert visitor.average_time_to_answer == round((4 + 2 + 2) / 3, 1)
    assert visitor.talk_seconds == 60 + 30
    # Company legs: the operators dialed (6 s answered, two unanswered) and the company-first leg (10 s).
    company_legs = figures.company
    assert (company_legs.legs, company_legs.answered, company_legs.answer_rate) == (4, 2, 50.0)
    assert company_legs.average_time_to_answer == 8.0
    assert company_legs.talk_seconds == 60 + 30
    assert company_legs.longest_talk == 60


def test_a_campaign_counts_only_its_own_requests_and_legs(company, history):
    other = CampaignFactory(company=company, name="Autumn")
    attempt_with_legs(request_at(other, paris(2026, 3, 10, 12)), first_ring=1, second_rings=(1,), talk=5)
    day = dt.date(2026, 3, 10)
    assert stats.period_figures(company=company, start=day, end=day).requests == 6
    figures = stats.period_figures(company=company, start=day, end=day, campaign=other)
    assert (figures.requests, figures.visitor.legs, figures.company.legs) == (1, 1, 1)
    by_campaign = {row.name: row.requests for row in stats.campaigns(company=company, start=day, end=day)}
    assert by_campaign == {"Spring": 5, "Autumn": 1}


def test_another_company_is_never_counted(company, history):
    stranger = CampaignFactory()
    attempt_with_legs(request_at(stranger, paris(2026, 3, 10, 9)), first_ring=1)
    day = dt.date(2026, 3, 10)
    assert stats.period_figures(company=company, start=day, end=day).requests == 5
    assert stats.period_figures(company=stranger.company, start=day, end=day).visitor.legs == 1


def test_days_are_the_company_days_across_midnight(company, campaign):
    # 23:30 in Paris on the 9th is 22:30 UTC; 00:30 on the 10th is 23:30 UTC on the 9th.
    request_at(campaign, paris(2026, 3, 9, 23, 30))
    request_at(campaign, paris(2026, 3, 10, 0, 30))
    request_at(campaign, paris(2026, 3, 10, 23, 59))
    day = dt.date(2026, 3, 10)
    assert stats.period_figures(company=company, start=day, end=day).requests == 2
    series = stats.series(company=company, start=dt.date(2026, 3, 9), end=day)
    assert [(point.at, point.requests) for point in series] == [(dt.date(2026, 3, 9), 1), (day, 2)]


def test_a_dst_day_has_23_hours_each_counted_by_the_wall_clock(company, campaign):
    # 2026-03-29: Paris goes from 02:00 to 03:00.
    request_at(campaign, paris(2026, 3, 29, 1, 30))
    request_at(campaign, paris(2026, 3, 29, 3, 30))
    request_at(campaign, paris(2026, 3, 29, 23, 50))
    day = dt.date(2026, 3, 29)
    points = stats.series(company=company, start=day, end=day)
    assert len(points) == 23
    counted = {point.at.hour: point.requests for point in points if point.requests}
    assert counted == {1: 1, 3: 1, 23: 1}
    assert 2 not in [point.at.hour for point in points]
    assert stats.period_figures(company=company, start=day, end=day).requests == 3


def test_a_period_with_no_calls(company, campaign):
    day = dt.date(2026, 3, 10)
    figures = stats.period_figures(company=company, start=day, end=day)
    assert figures.requests == 0
    assert figures.completion_rate is None
    assert figures.visitor.answer_rate is None and figures.company.average_time_to_answer is None
    assert stats.directions(company=company, start=day, end=day) == []
    assert all(point.requests == 0 for point in stats.series(company=company, start=day, end=day))


def test_directions_by_country_and_carrier(company, history):
    day = dt.date(2026, 3, 10)
    rows = stats.directions(company=company, start=day, end=day)
    assert [(row.country, row.carrier, row.requests, row.completed) for row in rows] == [
        ("FR", "Orange", 4, 2),
        ("BE", "Proximus", 1, 0),
    ]
    assert rows[0].completion_rate == 50.0


def test_periods_of_a_week_and_a_month():
    assert stats.period_of("week", dt.date(2026, 3, 12)) == (dt.date(2026, 3, 9), dt.date(2026, 3, 15))
    assert stats.period_of("month", dt.date(2026, 2, 14)) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert stats.period_of("month", dt.date(2026, 12, 31)) == (dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    assert stats.previous_period(dt.date(2026, 3, 1), dt.date(2026, 3, 31), "month") == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    assert stats.previous_period(dt.date(2026, 3, 9), dt.date(2026, 3, 15)) == (
        dt.date(2026, 3, 2),
        dt.date(2026, 3, 8),
    )


def test_a_period_under_way_is_compared_like_for_like():
    # This month so far (the 1st to the 7th) against the 1st to the 7th of the month before.
    month = stats.period_of("month", dt.date(2026, 12, 7))
    assert stats.previous_period(*month, "month", today=dt.date(2026, 12, 7)) == (
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 7),
    )
    # The 31st of a month against a month of 30 days: the whole month before.
    march = stats.period_of("month", dt.date(2026, 3, 30))
    assert stats.previous_period(*march, "month", today=dt.date(2026, 3, 30)) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    week = stats.period_of("week", dt.date(2026, 12, 9))  # a Wednesday
    assert stats.previous_period(*week, "week", today=dt.date(2026, 12, 9)) == (
        dt.date(2026, 11, 30),
        dt.date(2026, 12, 2),
    )
    # A period over is compared whole; so is today, with yesterday.
    assert stats.previous_period(*month, "month", today=dt.date(2027, 1, 3)) == (
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
    )
    today = dt.date(2026, 12, 7)
    assert stats.previous_period(today, today, "day", today=today) == (dt.date(2026, 12, 6),) * 2


def test_comparison_deltas_absolute_and_relative_including_from_zero(company, history):
    this = stats.period_figures(company=company, start=dt.date(2026, 3, 10), end=dt.date(2026, 3, 10))
    before = stats.period_figures(company=company, start=dt.date(2026, 3, 9), end=dt.date(2026, 3, 9))
    deltas = {delta.key: delta for delta in stats.comparison(this, before)}
    requests = deltas["requests"]
    assert (requests.this, requests.other, requests.absolute, requests.relative) == (5, 0, 5, None)
    # A rate against a period without one: no delta at all.
    assert deltas["completion_rate"].absolute is None
    backwards = {delta.key: delta for delta in stats.comparison(before, this)}
    assert (backwards["requests"].absolute, backwards["requests"].relative) == (-5, -100.0)
    assert backwards["completed"].relative == -100.0


def test_relative_delta_between_two_filled_periods(company, campaign):
    for _ in range(4):
        request_at(campaign, paris(2026, 3, 9, 10))
    for _ in range(5):
        request_at(campaign, paris(2026, 3, 10, 10))
    this = stats.period_figures(company=company, start=dt.date(2026, 3, 10), end=dt.date(2026, 3, 10))
    before = stats.period_figures(company=company, start=dt.date(2026, 3, 9), end=dt.date(2026, 3, 9))
    requests = next(delta for delta in stats.comparison(this, before) if delta.key == "requests")
    assert (requests.absolute, requests.relative) == (1, 25.0)
    completion = next(delta for delta in stats.comparison(this, before) if delta.key == "completion_rate")
    assert (completion.this, completion.other, completion.absolute) == (100.0, 100.0, 0.0)


def test_live_counts_dialing_retries_and_failed_waiting(company, campaign):
    now = timezone.now()
    request_at(campaign, now, status=Status.DIALING)
    retry = request_at(campaign, now, status=Status.PENDING)
    CallRequest.objects.filter(pk=retry.pk).update(next_try_at=now + dt.timedelta(seconds=60))
    request_at(campaign, now, status=Status.PENDING)  # a first try, not a retry
    request_at(campaign, now, status=Status.FAILED_USER)
    request_at(campaign, now, status=Status.FAILED_COMPANY)
    request_at(campaign, now, status=Status.COMPLETED)
    request_at(CampaignFactory(), now, status=Status.DIALING)
    figures = stats.live(company=company)
    assert (figures.dialing, figures.retries_waiting, figures.failed_waiting) == (1, 1, 2)
    assert figures.next_retry_at == now + dt.timedelta(seconds=60)
    other = CampaignFactory(company=company)
    assert stats.live(company=company, campaign=other).failed_waiting == 0


def test_every_figure_is_a_fixed_number_of_queries(company, history, django_assert_num_queries):
    day, week = dt.date(2026, 3, 10), dt.date(2026, 3, 16)
    with django_assert_num_queries(2):
        figures = stats.period_figures(company=company, start=day, end=week, campaign=history)
    points = stats.series(company=company, start=day, end=week, campaign=history)
    with django_assert_num_queries(1):
        from_series = stats.period_figures(
            company=company, start=day, end=week, campaign=history, points=points
        )
    assert from_series == figures
    with django_assert_num_queries(1):
        stats.series(company=company, start=day, end=week)
    with django_assert_num_queries(1):
        stats.directions(company=company, start=day, end=week)
    with django_assert_num_queries(1):
        stats.campaigns(company=company, start=day, end=week)
    with django_assert_num_queries(1):
        stats.live(company=company)


def test_party_of_each_leg_follows_the_first_party(company, campaign):
    request = request_at(campaign, paris(2026, 3, 10, 9))
    attempt_with_legs(request, first_party=VISITOR, first_ring=1, second_rings=(None, None, 2), talk=3)
    figures = stats.period_figures(company=company, start=dt.date(2026, 3, 10), end=dt.date(2026, 3, 10))
    assert (figures.visitor.legs, figures.company.legs, figures.company.answered) == (1, 3, 1)


def test_the_chart_scales_columns_to_the_tallest_and_stacks_outcomes():
    from click2call import charts

    points = [
        stats.Point(dt.date(2026, 3, 9), requests=4, completed=3, failed_user=1),
        stats.Point(dt.date(2026, 3, 10), requests=2, completed=1, failed_company=1),
        stats.Point(dt.date(2026, 3, 11)),
    ]
    chart = charts.series_chart(points)
    first, second, empty = chart["columns"]
    assert chart["tallest"] == 4 and [column.label for column in chart["columns"]] == [
        "09/03",
        "10/03",
        "11/03",
    ]
    # Stacked from the bottom of a 200-unit box: 3 completed then 1 failed fill the tallest column.
    assert [(b.key, b.y, b.height) for b in first.blocks] == [
        ("completed", 50.0, 150.0),
        ("failed_user", 0.0, 50.0),
    ]
    assert [(b.key, b.height) for b in second.blocks] == [("completed", 50.0), ("failed_company", 50.0)]
    assert empty.blocks == [] and first.x < second.x < empty.x
    assert charts.leg_bars(stats.LegFigures("visitor", legs=4, answered=3))[0].width == 750.0
