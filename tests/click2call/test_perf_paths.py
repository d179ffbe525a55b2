"""The banner's fast paths keep their behaviour: the plain-SQL rate lookup, the insert-first
request in autocommit, and the rate import that skips unchanged rows and rewrites changed ones."""

from decimal import Decimal

import pytest
import tablib

from click2call.models import CallRequest, Rate, RateImport
from click2call.services import rate_imports
from click2call.services.rating import NumberRefused, number_rate, rate_find
from click2call.services.requests import call_request_create
from click2call.tasks import dial_attempt
from config.cache import FileCache
from tests.click2call.factories import BlockedPrefixFactory, CampaignFactory, RateFactory, TariffFactory

pytestmark = pytest.mark.django_db


def test_rate_find_takes_the_longest_prefix_with_its_exact_price():
    tariff = TariffFactory(rates={"33": ("France", "0.1"), "336": ("France - Mobile", "0.01234")})
    TariffFactory(rates={"3361": ("Elsewhere", "9")})
    rate = rate_find(tariff=tariff, number="+33612345678")
    assert (rate.prefix, rate.destination, rate.price) == ("336", "France - Mobile", Decimal("0.01234"))
    assert rate.pk == Rate.objects.get(tariff=tariff, prefix="336").pk
    assert rate_find(tariff=tariff.pk, number="+4930123456") is None


def test_a_changed_rate_is_seen_at_once():
    tariff = TariffFactory(rates={"336": ("France - Mobile", "0.05")})
    assert rate_find(tariff=tariff, number="+33612345678").price == Decimal("0.05")
    Rate.objects.filter(tariff=tariff).update(price=Decimal("99999.99999"))
    assert rate_find(tariff=tariff, number="+33612345678").price == Decimal("99999.99999")
    RateFactory(tariff=tariff, prefix="3361", destination="France - Mobile 1", price="0")
    assert rate_find(tariff=tariff, number="+33612345678").price == Decimal("0")


def test_a_blocked_prefix_wins_over_a_longer_rate_of_another_company():
    campaign = CampaignFactory(tariff__rates={"3361": ("France - Mobile", "0.05")})
    BlockedPrefixFactory(prefix="336")  # another company's
    rate, _ = number_rate(campaign=campaign, number="+33612345678")
    assert rate.prefix == "3361"
    BlockedPrefixFactory(company=campaign.company, prefix="33")
    with pytest.raises(NumberRefused) as refused:
        number_rate(campaign=campaign, number="+33612345678")
    assert refused.value.code == "blocked_prefix"


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_a_repeat_number_gets_the_open_request_and_one_try(monkeypatch):
    queued = []
    monkeypatch.setattr(dial_attempt, "delay", queued.append)
    campaign = CampaignFactory()
    first, created = call_request_create(campaign=campaign, number="06 12 34 56 78", consent=True)
    again, created_again = call_request_create(campaign=campaign, number="+33 6 12 34 56 78", consent=True)
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and queued == [first.pk]
    assert CallRequest.objects.count() == 1


def import_rates(tariff, rows) -> RateImport:
    dataset = tablib.Dataset(headers=["prefix", "destination", "price"])
    for row in rows:
        dataset.append(row)
    content = dataset.export("csv").encode()
    job = rate_imports.rate_import_start(tariff=tariff, file_name="r.csv", content=content)
    rate_imports.rate_import_run(rate_import_id=job.pk)
    job.refresh_from_db()
    return job


def test_reimport_writes_only_changed_rates_and_keeps_their_ids():
    tariff = TariffFactory(rates={"33": ("France", "0.01"), "44": ("UK", "0.02")})
    ids = dict(Rate.objects.filter(tariff=tariff).values_list("prefix", "id"))
    job = import_rates(tariff, [["33", "France", "0,01"], ["44", "UK fixed", "0.03"], ["49", "DE", "1"]])
    assert (job.created_count, job.changed_count, job.rows, job.to_write) == (1, 1, 3, 2)
    rates = {rate.prefix: (rate.pk, rate.destination, rate.price) for rate in tariff.rates.all()}
    assert rates["33"] == (ids["33"], "France", Decimal("0.01"))
    assert rates["44"] == (ids["44"], "UK fixed", Decimal("0.03"))
    assert rates["49"][1:] == ("DE", Decimal("1"))


def test_an_unchanged_prefix_twice_in_the_file_is_a_row_error_and_nothing_is_written():
    tariff = TariffFactory(rates={"33": ("France", "0.01")})
    job = import_rates(tariff, [["33", "France", "0.01"], ["34", "Spain", "0.02"], ["33", "France", "0.01"]])
    assert job.status == RateImport.Status.REFUSED
    assert job.problems == ["row 4, prefix: 33 is already on row 2."]
    assert list(tariff.rates.values_list("prefix", flat=True)) == ["33"]


def cache_files(path):
    return list(path.glob("*.djcache"))


@pytest.fixture
def fresh_process(monkeypatch):
    """A process that has not looked at the cache directory yet."""
    monkeypatch.setattr(FileCache, "_next_cull", 0.0)
    monkeypatch.setattr(FileCache, "_entries", 0, raising=False)


def test_the_file_cache_culls_expired_entries_first_and_not_on_every_write(
    tmp_path, fresh_process, monkeypatch
):
    cache = FileCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 30}})
    for n in range(3):
        cache.set(f"window-{n}", n, timeout=0)  # an expired throttle window
    monkeypatch.setattr(FileCache, "_next_cull", 0.0)  # a minute since the last cull
    cache.set("live", 1, timeout=60)  # culls: the expired go, the live count stays
    assert len(cache_files(tmp_path)) == 1 and cache.get("live") == 1
    listings = []
    monkeypatch.setattr(FileCache, "_list_cache_files", lambda self: listings.append(1) or [])
    for n in range(20):  # within a minute of the last cull and under the bound: no listing
        cache.set(f"visitor-{n}", 1, timeout=60)
    assert not listings and all(cache.get(f"visitor-{n}") == 1 for n in range(20))


def test_the_file_cache_stays_bounded_under_a_flood_of_new_addresses(tmp_path, fresh_process):
    """10,000 banner requests from 10,000 addresses left 10,041 files: each address's throttle
    window is an entry, live for its hour. The cache keeps MAX_ENTRIES, dropping the windows that
    end soonest, never the one that lasts longest."""
    cache = FileCache(str(tmp_path), {"OPTIONS": {"MAX_ENTRIES": 60}})
    cache.set("login-lockout", 1, timeout=7200)
    most = 0
    for n in range(600):
        assert cache.add(f"c2c-throttle:address:{n}", 1, timeout=3600 - n % 7)
        most = max(most, len(cache_files(tmp_path)))
    assert most <= 60
    assert cache.get("login-lockout") == 1 and cache.get("c2c-throttle:address:599") == 1


@pytest.mark.django_db(transaction=True)
def test_a_banner_post_costs_three_queries_then_two(client, monkeypatch, django_assert_num_queries):
    """The key's campaign, the blocked prefixes and rates, the insert: in autocommit, nothing more;
    within C2C_CAMPAIGN_CACHE_SECONDS the process still has the campaign."""
    monkeypatch.setattr(dial_attempt, "delay", lambda request_id: None)
    campaign = CampaignFactory()
    for number, queries in (("06 12 34 56 78", 3), ("06 12 34 56 79", 2)):
        with django_assert_num_queries(queries):
            response = client.post(
                "/api/click2call/requests/",
                {"number": number, "consent": True},
                content_type="application/json",
                headers={"X-Campaign-Key": campaign.public_key, "Origin": "https://shop.example.com"},
            )
        assert response.status_code == 201
