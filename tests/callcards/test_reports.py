"""The usage report per batch (minutes sold, used, remaining, cards by status, calls and talk time),
its server-drawn chart, and the batches page with its progress while cards are being made."""

import re

import pytest
from django.urls import reverse

from callcards import charts
from callcards.lifecycle import Status
from callcards.models import CardBatch, CardCall
from callcards.selectors import batches_with_usage
from tests.callcards.factories import CardBatchFactory, CardCallFactory, CardFactory, callcard_admin

pytestmark = pytest.mark.django_db


def url(name, company):
    return reverse(f"callcards:{name}", kwargs={"company_slug": company.slug})


@pytest.fixture
def logged_in(client, company):
    client.force_login(callcard_admin(company))
    return client


@pytest.fixture
def batch(company):
    """4 cards of 10 minutes: one untouched, one used (2 calls, 3 min), one emptied, one voided."""
    batch = CardBatchFactory(company=company, run="R1", batch="B1", count=4, initial_minutes=10)
    fresh = CardFactory(company=company, batch=batch, balance_minutes=10, status=Status.ACTIVE)
    used = CardFactory(company=company, batch=batch, balance_minutes=7, status=Status.USED)
    empty = CardFactory(company=company, batch=batch, balance_minutes=0, status=Status.EMPTY)
    CardFactory(company=company, batch=batch, balance_minutes=10, status=Status.VOID)
    CardCallFactory(card=used, agent_talk_sec=61)  # 2 minutes billed
    CardCallFactory(card=used, agent_talk_sec=30)  # 1
    CardCallFactory(card=empty, agent_talk_sec=600)  # 10
    # Still waiting in the queue: neither a call nor talk time yet.
    CardCallFactory(card=fresh, state=CardCall.State.QUEUED, agent_talk_sec=0, agent_time=None)
    return batch


def test_a_batchs_usage(company, batch):
    CardBatchFactory(company=company, run="R2", batch="B2", count=0)  # nothing made yet
    [empty_batch, row] = batches_with_usage(company=company)  # newest first
    assert (row.batch, row.cards, row.minutes_sold) == (batch, 4, 40)
    assert (row.minutes_used, row.minutes_remaining) == (13, 17)
    assert (row.calls, row.talk_seconds) == (3, 691)
    assert row.statuses == [(Status.ACTIVE, 1), (Status.USED, 1), (Status.EMPTY, 1), (Status.VOID, 1)]
    assert (empty_batch.cards, empty_batch.minutes_sold, empty_batch.minutes_used, empty_batch.statuses) == (
        0, 0, 0, [],
    )  # fmt: skip


def test_another_companys_cards_and_calls_count_nowhere(company, batch):
    stranger = CardFactory(balance_minutes=99)
    CardCallFactory(card=stranger, agent_talk_sec=6000)
    [row] = batches_with_usage(company=company)
    assert (row.cards, row.minutes_used, row.minutes_remaining, row.calls) == (4, 13, 17, 3)
    assert batches_with_usage(company=company, batches=CardBatch.objects.filter(pk=stranger.batch_id)) == []


def test_the_chart_stacks_minutes_and_cards(company, batch):
    small = CardBatchFactory(company=company, run="R0", batch="S", count=1, initial_minutes=20)
    CardFactory(company=company, batch=small, balance_minutes=20)
    bars = {bar.usage.batch.pk: bar for bar in charts.usage_chart(batches_with_usage(company=company))}

    big = bars[batch.pk]
    assert [(s.key, s.value) for s in big.minutes] == [("used", 13), ("remaining", 17), ("lost", 10)]
    # The longest batch fills the width; the segments follow each other.
    assert sum(s.width for s in big.minutes) == pytest.approx(charts.WIDTH)
    assert big.minutes[1].x == pytest.approx(big.minutes[0].width)
    assert [(s.key, s.value) for s in big.cards] == [("ACTIVE", 1), ("USED", 1), ("EMPTY", 1), ("VOID", 1)]
    assert [s.width for s in big.cards] == [250.0] * 4
    # 20 minutes against 40: half as long.
    assert sum(s.width for s in bars[small.pk].minutes) == pytest.approx(charts.WIDTH / 2)


def test_the_chart_of_no_minutes_draws_nothing(company):
    CardBatchFactory(company=company, count=0)
    [bar] = charts.usage_chart(batches_with_usage(company=company))
    assert bar.minutes == [] and bar.cards == []


def test_the_usage_page_draws_its_chart_itself(logged_in, company, batch):
    response = logged_in.get(url("usage", company))
    body = response.content.decode()
    assert response.status_code == 200
    row = body.split(f'<tr data-batch="{batch.pk}">')[1].split("</tr>")[0]
    for figure, value in [
        ("sold", "40"),
        ("used", "13"),
        ("remaining", "17"),
        ("calls", "3"),
        ("talk", "11:31"),
    ]:
        assert f'data-figure="{figure}">{value}<' in row
    assert "Active 1" in row and "Void 1" in row
    svg = body.split('<section class="card usage-chart"')[1].split("</section>")[0]
    assert (
        svg.count('data-segment="used"') == 1 and 'aria-label="Minutes of R1/B1: Used 13, Remaining 17' in svg
    )
    # Nothing fetched at run time: no script, no address to load anything from.
    assert "<script" not in body
    assert not re.search(r"(src|href)=\"(https?:)?//", body)


def test_the_batches_page_shows_progress_while_generating(logged_in, company, batch):
    CardBatchFactory(
        company=company, run="R9", batch="BIG", count=1000, generated=250, job=CardBatch.Job.RUNNING
    )
    body = logged_in.get(url("batches", company)).content.decode()
    assert "Generating: 250 of 1000" in body and '<progress max="1000" value="250"' in body
    assert "js/live_sections.js" in body and 'data-live-section="batches"' in body
    row = body.split(f'<tr data-batch="{batch.pk}">')[1].split("</tr>")[0]
    assert ">40<" in row and ">13<" in row and ">17<" in row


def test_the_batches_page_stops_refreshing_when_every_batch_is_made(logged_in, company, batch):
    CardBatchFactory(company=company, job=CardBatch.Job.FAILED, error="the worker ran out of PINs")
    body = logged_in.get(url("batches", company)).content.decode()
    assert "live_sections.js" not in body
    assert "Failed" in body and "the worker ran out of PINs" in body


def test_the_usage_pages_are_paginated_by_batch(logged_in, company):
    for n in range(30):
        CardBatchFactory(company=company, run="R1", batch=f"P{n}")
    first = logged_in.get(url("usage", company))
    last = logged_in.get(url("usage", company), {"page": "99999999999"})
    assert len(first.context["usage"]) == 25 and len(last.context["usage"]) == 5
    assert len(first.context["chart"]) == 25


def test_the_usage_is_two_queries_whatever_the_batches(company, batch, django_assert_num_queries):
    for n in range(5):
        extra = CardBatchFactory(company=company, run="R3", batch=f"E{n}")
        CardCallFactory(card=CardFactory(company=company, batch=extra))
    with django_assert_num_queries(2):
        assert len(batches_with_usage(company=company)) == 6
