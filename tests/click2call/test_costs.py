"""What calls cost: a request its COMPLETED price (frozen when it completes), each leg its rate per
started minute, in the company's currency; the calls list totalled on the page and in the CSV."""

import csv
import datetime as dt
import importlib
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.urls import reverse
from django.utils import timezone

from click2call import migrations, selectors
from click2call.models import CallRequest, Campaign, Operator
from click2call.services import dialing
from click2call.services.rating import leg_cost
from tests.click2call.factories import CallAttemptFactory, CallRequestFactory, CampaignFactory
from tests.telephony.factories import CallRecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(company):
    company.currency = "USD"
    company.save()
    return CampaignFactory(company=company, name="Spring sale", price_per_completed=Decimal("1.50"))


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


def dialing_request(campaign, **fields):
    """A request in its last automatic try: a failure leaves it FAILED, no retry."""
    request = CallRequestFactory(campaign=campaign, status="DIALING", tries=3, **fields)
    return request, CallAttemptFactory(request=request, seq=1)


# The request's price


def test_a_completed_request_costs_its_campaign_price_frozen_when_it_completed(campaign):
    request, attempt = dialing_request(campaign)
    dialing.attempt_finish(attempt_id=attempt.pk, status="COMPLETED", detail="bridged")
    request.refresh_from_db()
    assert (request.status, request.price, request.cost) == ("COMPLETED", Decimal("1.50"), Decimal("1.50"))

    Campaign.objects.filter(pk=campaign.pk).update(price_per_completed=Decimal("9.99"))
    request.refresh_from_db()
    assert request.cost == Decimal("1.50")  # the price of the day it completed
    later, attempt = dialing_request(campaign)
    dialing.attempt_finish(attempt_id=attempt.pk, status="COMPLETED", detail="bridged")
    later.refresh_from_db()
    assert later.cost == Decimal("9.99")


@pytest.mark.parametrize("status", ["FAILED_USER", "FAILED_COMPANY", "NOT_DIALED"])
def test_a_request_that_did_not_complete_costs_nothing(campaign, status):
    request, attempt = dialing_request(campaign)
    dialing.attempt_finish(attempt_id=attempt.pk, status=status)
    request.refresh_from_db()
    assert request.status != "COMPLETED"
    assert request.price is None and request.cost == Decimal("0.00")


def test_a_campaign_without_a_price_completes_for_nothing(company):
    request, attempt = dialing_request(CampaignFactory(company=company))  # price_per_completed 0.00
    dialing.attempt_finish(attempt_id=attempt.pk, status="COMPLETED", detail="bridged")
    request.refresh_from_db()
    assert request.cost == Decimal("0.00")


def test_a_call_back_that_completes_is_priced(campaign):
    request = CallRequestFactory(campaign=campaign, status="FAILED_COMPANY")
    attempt = dialing.request_callback(request=request, user=None)
    dialing.attempt_finish(attempt_id=attempt.pk, status="COMPLETED", detail="bridged")
    request.refresh_from_db()
    assert request.cost == Decimal("1.50")


# Legs


@pytest.mark.parametrize(
    ("billsec", "minutes"), [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (120, 2), (3601, 61)]
)
def test_a_leg_is_billed_per_started_minute(billsec, minutes):
    assert leg_cost(billsec=billsec, price_per_minute=Decimal("0.12000")) == Decimal("0.12") * minutes


def test_an_unrated_leg_has_no_cost():
    assert leg_cost(billsec=100, price_per_minute=None) is None


def leg(request, attempt, *, parent=None, callee, billsec=0, ended=True, disposition="ANSWERED"):
    start = timezone.now() - dt.timedelta(minutes=5)
    return CallRecordFactory(
        company=request.company,
        app="click2call",
        app_ref=attempt.app_ref,
        parent=parent,
        callee=callee,
        billsec=billsec,
        disposition=disposition,
        started_at=start,
        ended_at=start + dt.timedelta(seconds=billsec + 10) if ended else None,
    )


@pytest.fixture
def rated_call(campaign):
    """A visitor-first try: the visitor talked 61 s (a French mobile at 0.12/min, the rate the request
    was taken at), one operator was busy, another answered 61 s (a Paris number, 0.02/min in the
    tariff), and a dial string rang 30 s (not rated)."""
    request = CallRequestFactory(
        campaign=campaign,
        number="+33612340001",
        status="COMPLETED",
        price=Decimal("1.50"),
        rate_price=Decimal("0.12000"),
        rate_prefix="336",
    )
    attempt = CallAttemptFactory(request=request, seq=1, status="COMPLETED", detail="bridged")
    first = leg(request, attempt, callee=request.number, billsec=61)
    leg(request, attempt, parent=first, callee="+33612345202", disposition="BUSY")
    leg(request, attempt, parent=first, callee="+33140000000", billsec=61)
    leg(request, attempt, parent=first, callee="PJSIP/reception", billsec=30)
    return request


def test_each_leg_costs_its_rate_per_started_minute(rated_call):
    (item,) = selectors.call_request_attempts(request=rated_call)
    assert (item.first.party, item.first.rate_price, item.first.cost) == (
        "visitor",
        Decimal("0.12000"),
        Decimal("0.24000"),
    )
    costs = [(leg.party, leg.rate_price, leg.cost) for leg in item.seconds]
    assert costs == [
        ("company", Decimal("0.12000"), Decimal("0.00000")),  # busy: rated, nothing talked
        ("company", Decimal("0.02000"), Decimal("0.04000")),
        ("company", None, None),  # a dial string: not rated
    ]


def test_the_visitor_leg_keeps_the_rate_the_request_was_taken_at(rated_call):
    rated_call.campaign.tariff.rates.filter(prefix="336").update(price=Decimal("0.50000"))
    (item,) = selectors.call_request_attempts(request=rated_call)
    assert item.first.cost == Decimal("0.24000")
    assert item.seconds[0].rate_price == Decimal("0.50000")  # an operator's: the tariff as it is


def test_a_leg_in_progress_has_no_cost_yet(campaign):
    request = CallRequestFactory(campaign=campaign, status="DIALING", rate_price=Decimal("0.12000"))
    attempt = CallAttemptFactory(request=request, seq=1)
    leg(request, attempt, callee=request.number, ended=False)
    (item,) = selectors.call_request_attempts(request=request)
    assert item.first.rate_price == Decimal("0.12000") and item.first.cost is None


def test_the_call_page_shows_the_costs_in_the_company_currency(logged_in, company, rated_call):
    body = logged_in.get(reverse("click2call:call", args=[company.slug, rated_call.pk])).text
    assert "1.50 USD (the campaign's price when it completed)" in body
    assert "0.24 USD at 0.12 USD/min" in body
    assert "0.04 USD at 0.02 USD/min" in body
    assert "not rated" in body
    assert "EUR" not in body


def test_the_call_page_of_a_failed_call_says_it_costs_nothing(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign, status="FAILED_USER")
    body = logged_in.get(reverse("click2call:call", args=[company.slug, call.pk])).text
    assert "0.00 USD (only a completed call is charged)" in body


def test_the_call_page_queries_do_not_grow_with_legs(
    logged_in, company, rated_call, django_assert_max_num_queries
):
    url = reverse("click2call:call", args=[company.slug, rated_call.pk])
    logged_in.get(url)
    with django_assert_max_num_queries(14) as first:
        logged_in.get(url)
    attempt = CallAttemptFactory(request=rated_call, seq=2, status="FAILED_COMPANY")
    parent = leg(rated_call, attempt, callee=rated_call.number, billsec=5)
    for n in range(5):
        leg(rated_call, attempt, parent=parent, callee=f"+3314000000{n}", billsec=5)
    with django_assert_max_num_queries(len(first.captured_queries)):
        logged_in.get(url)


# Totals


@pytest.fixture
def calls(company, campaign):
    """Three calls of the campaign (two completed, 1.50 and 2.00) and one of another, completed at 4.00."""
    autumn = CampaignFactory(company=company, name="Autumn")
    CallRequestFactory(campaign=campaign, status="COMPLETED", price=Decimal("1.50"), carrier="Orange")
    CallRequestFactory(campaign=campaign, status="COMPLETED", price=Decimal("2.00"), carrier="SFR")
    CallRequestFactory(campaign=campaign, status="FAILED_USER", carrier="Orange")
    CallRequestFactory(campaign=autumn, status="COMPLETED", price=Decimal("4.00"), carrier="Orange")
    CallRequestFactory(status="COMPLETED", price=Decimal("100.00"))  # another company's
    return autumn


def totals_of(company, **filters):
    return selectors.call_requests_totals(
        requests=selectors.call_requests_for_company(company=company, **filters)
    )


def test_totals_follow_the_filters(company, campaign, calls):
    assert totals_of(company) == selectors.CallTotals(4, 3, Decimal("7.50"))
    assert totals_of(company, campaign=campaign) == selectors.CallTotals(3, 2, Decimal("3.50"))
    assert totals_of(company, direction="orange") == selectors.CallTotals(3, 2, Decimal("5.50"))
    assert totals_of(company, status="FAILED_USER") == selectors.CallTotals(1, 0, Decimal("0.00"))
    tomorrow = timezone.now().date() + dt.timedelta(days=2)
    assert totals_of(company, start=tomorrow) == selectors.CallTotals(0, 0, Decimal("0.00"))


def test_the_calls_list_shows_each_cost_and_the_total_of_the_filters(logged_in, company, campaign, calls):
    url = reverse("click2call:calls", args=[company.slug])
    body = logged_in.get(url).text
    assert "Total of the 4 calls matching" in body and "3 completed" in body and "7.50 USD" in body
    assert body.count("1.50 USD") == 1 and "0.00 USD" in body  # each call's own cost
    body = logged_in.get(url, {"campaign": campaign.pk, "direction": "Orange"}).text
    assert "Total of the 2 calls matching" in body and "1 completed" in body and "1.50 USD</td></tr>" in body


def test_an_empty_list_has_no_total_row(logged_in, company):
    body = logged_in.get(reverse("click2call:calls", args=[company.slug])).text
    assert "Total of the" not in body


def test_the_csv_has_each_cost_and_a_total_row(logged_in, company, campaign, calls):
    response = logged_in.get(
        reverse("click2call:calls", args=[company.slug]), {"format": "csv", "campaign": campaign.pk}
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    *requests, total = rows
    assert sorted(row["cost"] for row in requests) == ["0.00", "1.50", "2.00"]
    assert {row["currency"] for row in rows} == {"USD"}
    assert (total["id"], total["number"], total["status"], total["cost"]) == (
        "TOTAL",
        "3",
        "2 completed",
        "3.50",
    )


def test_a_request_completed_without_a_frozen_price_costs_nothing(campaign):
    # Only a row written by hand can be so (the migration priced those completed before it).
    request = CallRequestFactory(campaign=campaign, status="COMPLETED", price=None)
    assert request.cost == Decimal("0.00")
    assert CallRequest.objects.get(pk=request.pk).cost == Decimal("0.00")


def test_an_operator_number_changed_is_still_rated_by_the_tariff(rated_call):
    # The leg's own callee is rated, whatever the operator rows say now.
    Operator.objects.filter(company=rated_call.company).delete()
    (item,) = selectors.call_request_attempts(request=rated_call)
    assert item.seconds[1].cost == Decimal("0.04000")


def test_staff_see_the_frozen_price_in_the_admin(admin_client, campaign):
    CallRequestFactory(campaign=campaign, status="COMPLETED", price=Decimal("1.50"))
    response = admin_client.get(reverse("admin:click2call_callrequest_changelist"))
    assert response.status_code == 200 and "1.50" in response.text


def test_the_migration_prices_the_requests_completed_before_prices_were_frozen(company):
    # Found by its name: the migration's number changes as branches are merged.
    (path,) = Path(migrations.__file__).parent.glob("*_request_price.py")
    migration = importlib.import_module(f"click2call.migrations.{path.stem}")
    campaign = CampaignFactory(company=company, price_per_completed=Decimal("3.00"))
    done = CallRequestFactory(campaign=campaign, status="COMPLETED")
    failed = CallRequestFactory(campaign=campaign, status="FAILED_USER")
    frozen = CallRequestFactory(campaign=campaign, status="COMPLETED", price=Decimal("1.00"))
    migration.price_completed_requests(django_apps, None)
    prices = {row.pk: row.price for row in CallRequest.objects.all()}
    assert prices == {done.pk: Decimal("3.00"), failed.pk: None, frozen.pk: Decimal("1.00")}
