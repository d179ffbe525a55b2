"""The company's API of its click2call requests: /api/click2call/calls/ (the list with the portal's
filters and a total row) and /api/click2call/calls/<id>/ (attempts, legs with their costs, comments),
on the company's credentials, never a campaign key."""

import base64
import datetime as dt
from decimal import Decimal
from urllib.parse import quote

import pytest
import schemathesis
from django.utils import timezone
from schemathesis.checks import CHECKS

from accounts.services import api_token_create
from click2call.models import CallRequest
from tests.click2call.factories import (
    CallAttemptFactory,
    CallCommentFactory,
    CallRequestFactory,
    CampaignFactory,
    CommentTypeFactory,
)
from tests.factories import UserFactory
from tests.hostile import (
    BAD_INTEGER_QUERY_VALUES,
    HIDDEN_CHARACTERS,
    HOSTILE_STRINGS,
    assert_answers_cleanly,
    assert_error_body,
    assert_rejects_cleanly,
)
from tests.telephony.factories import CallRecordFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db

API = "/api/click2call/calls/"


@pytest.fixture
def campaign(company):
    company.currency = "GBP"
    company.save()
    return CampaignFactory(company=company, name="Spring sale", price_per_completed=Decimal("2.00"))


@pytest.fixture
def api(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def calls(company, campaign):
    autumn = CampaignFactory(company=company, name="Autumn")
    done = CallRequestFactory(
        campaign=campaign, number="+33612340001", status="COMPLETED", price=Decimal("2.00"), carrier="Orange"
    )
    failed = CallRequestFactory(campaign=campaign, number="+33612340002", status="FAILED_USER", carrier="SFR")
    other = CallRequestFactory(
        campaign=autumn, number="+33612340003", status="COMPLETED", price=Decimal("3.00"), carrier="Orange"
    )
    CallRequestFactory(number="+33612349999", status="COMPLETED", price=Decimal("50.00"))  # another company's
    return {"done": done, "failed": failed, "other": other, "autumn": autumn}


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(row["number"] for row in response.json()["results"])


# The list


def test_the_list_has_the_company_requests_their_costs_and_a_total(api, calls):
    body = api.get(API).json()
    assert sorted(row["number"] for row in body["results"]) == [
        "+33612340001",
        "+33612340002",
        "+33612340003",
    ]
    row = next(row for row in body["results"] if row["number"] == "+33612340001")
    assert (row["status"], row["price"], row["cost"], row["currency"]) == ("COMPLETED", "2.00", "2.00", "GBP")
    assert row["campaign_name"] == "Spring sale"
    failed = next(row for row in body["results"] if row["number"] == "+33612340002")
    assert (failed["price"], failed["cost"]) == (None, "0.00")
    assert body["count"] == 3
    assert body["totals"] == {"count": 3, "completed": 2, "amount": "5.00", "currency": "GBP"}


def test_the_list_takes_the_portal_filters(api, calls, campaign):
    assert numbers(api.get(API, {"status": "FAILED_USER"})) == ["+33612340002"]
    assert numbers(api.get(API, {"campaign": calls["autumn"].pk})) == ["+33612340003"]
    assert numbers(api.get(API, {"direction": "orange"})) == ["+33612340001", "+33612340003"]
    assert numbers(api.get(API, {"direction": "FR", "campaign": campaign.pk})) == [
        "+33612340001",
        "+33612340002",
    ]
    body = api.get(API, {"campaign": campaign.pk, "direction": "Orange"}).json()
    assert body["totals"] == {"count": 1, "completed": 1, "amount": "2.00", "currency": "GBP"}


def test_the_totals_are_of_the_whole_list_not_the_page(api, calls):
    body = api.get(API, {"limit": 1}).json()
    assert len(body["results"]) == 1 and body["next"]
    assert body["totals"]["count"] == 3 and body["totals"]["amount"] == "5.00"


def test_the_period_is_in_company_days(api, campaign):
    call = CallRequestFactory(campaign=campaign, number="+33612340001")
    # 23:30 UTC on the 1st is the 2nd in Paris (the company's time zone), whoever asks.
    CallRequest.objects.filter(pk=call.pk).update(created_at=dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC))
    assert numbers(api.get(API, {"start": "2026-03-02", "end": "2026-03-02"})) == ["+33612340001"]
    assert numbers(api.get(API, {"end": "2026-03-01"})) == []
    assert numbers(api.get(API, {"start": "2026-03-03"})) == []
    assert numbers(api.get(API, {"start": "2026-03-03", "end": "2026-03-01"})) == []  # no day


# Credentials


def test_basic_and_api_tokens_are_served(client, company_user, calls):
    basic = base64.b64encode(f"{company_user.username}:pass-word-123".encode()).decode()
    assert numbers(client.get(API, headers={"Authorization": f"Basic {basic}"}))[0] == "+33612340001"
    _, key = api_token_create(user=company_user, name="crm")
    response = client.get(f"{API}{calls['done'].pk}/", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200 and response.json()["cost"] == "2.00"


def test_no_credentials_or_a_campaign_key_is_a_401(client, calls, campaign):
    for headers in ({}, {"X-Campaign-Key": campaign.secret_key}):
        response = client.get(API, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
        assert "+33612340001" not in response.content.decode()


def test_staff_without_a_company_are_refused(client, calls):
    client.force_login(UserFactory(company=None, is_staff=True))
    response = client.get(API)
    assert response.status_code == 403 and "+33612340001" not in response.content.decode()


def test_the_banner_still_creates_requests_on_requests(client, campaign):
    response = client.post(
        "/api/click2call/requests/",
        {"number": "06 12 34 56 99", "consent": True},
        content_type="application/json",
        headers={"X-Campaign-Key": campaign.secret_key},
    )
    assert response.status_code == 201
    assert CallRequest.objects.filter(number="+33612345699").exists()


# The detail


def test_the_detail_has_attempts_legs_with_costs_and_comments(api, company, campaign, company_user):
    call = CallRequestFactory(
        campaign=campaign,
        number="+33612340001",
        status="COMPLETED",
        price=Decimal("2.00"),
        rate_price=Decimal("0.12000"),
    )
    failed = CallAttemptFactory(request=call, seq=1, status="FAILED_COMPANY", detail="dialing: BUSY")
    done = CallAttemptFactory(
        request=call,
        seq=2,
        kind="callback",
        first_party="company",
        status="COMPLETED",
        requested_by=company_user,
    )
    start = timezone.now() - dt.timedelta(minutes=10)
    ended = {"started_at": start, "ended_at": start + dt.timedelta(minutes=2)}
    first = CallRecordFactory(
        company=company, app="click2call", app_ref=failed.app_ref, callee=call.number, billsec=61, **ended
    )
    CallRecordFactory(
        company=company,
        app="click2call",
        app_ref=failed.app_ref,
        parent=first,
        callee="+33612345202",
        disposition="BUSY",
        **ended,
    )
    ring = CallRecordFactory(
        company=company, app="click2call", app_ref=done.app_ref, callee="s", billsec=100, **ended
    )
    CallRecordFactory(
        company=company,
        app="click2call",
        app_ref=done.app_ref,
        parent=ring,
        callee="+33140000000",
        billsec=90,
        disposition="ANSWERED",
        **ended,
    )
    CallRecordFactory(
        company=company,
        app="click2call",
        app_ref=done.app_ref,
        parent=ring,
        callee=call.number,
        billsec=59,
        **ended,
    )
    kind = CommentTypeFactory(company=company, name="Sale")
    CallCommentFactory(request=call, comment_type=kind, values={"amount": "12.5"}, author=company_user)

    body = api.get(f"{API}{call.pk}/").json()
    assert (body["status"], body["cost"], body["currency"]) == ("COMPLETED", "2.00", "GBP")
    first_try, call_back = body["attempts"]
    assert (first_try["seq"], first_try["status"], first_try["detail"]) == (
        1,
        "FAILED_COMPANY",
        "dialing: BUSY",
    )
    assert [
        (leg["role"], leg["party"], leg["callee"], leg["rate_price"], leg["cost"])
        for leg in first_try["legs"]
    ] == [
        ("first", "visitor", "+33612340001", "0.12000", "0.24000"),
        ("second", "company", "+33612345202", "0.12000", "0.00000"),
    ]
    assert (call_back["kind"], call_back["first_party"], call_back["requested_by"]) == (
        "callback",
        "company",
        company_user.username,
    )
    assert [(leg["role"], leg["party"], leg["rate_price"], leg["cost"]) for leg in call_back["legs"]] == [
        ("first", "company", None, None),  # the Local channel that rings the operators: not rated
        ("second", "company", "0.02000", "0.04000"),
        ("second", "visitor", "0.12000", "0.12000"),
    ]
    assert call_back["legs"][1]["billsec"] == 90 and call_back["legs"][1]["disposition"] == "ANSWERED"
    assert body["comments"] == [
        {
            "id": body["comments"][0]["id"],
            "comment_type": "Sale",
            "values": {"amount": "12.5"},
            "author": company_user.username,
            "created_at": body["comments"][0]["created_at"],
        }
    ]


def test_a_request_of_another_company_is_a_404(client, company_user, campaign):
    call = CallRequestFactory(campaign=campaign)
    assert_other_company_gets_404(client, f"{API}{call.pk}/", owner=company_user)


def test_another_company_sees_none_of_the_requests(client, calls):
    client.force_login(UserFactory())
    body = client.get(API).json()
    assert body["results"] == [] and body["totals"]["count"] == 0 and body["totals"]["amount"] == "0.00"


@pytest.mark.parametrize("pk", ["0", "99999999", "99999999999999999999"])
def test_an_unknown_request_is_a_404_in_the_api_body(api, pk):
    response = api.get(f"{API}{pk}/")
    assert response.status_code == 404 and response.json() == {"code": "not_found", "detail": "Not found."}


def test_a_request_id_that_is_no_number_is_a_404(api):
    assert_rejects_cleanly(api, "get", f"{API}{quote('١٢')}/", status=404)
    assert_rejects_cleanly(api, "get", f"{API}abc/", status=404)


# Query counts


def test_list_queries_are_pinned(api, company, campaign, django_assert_num_queries):
    CallRequestFactory.create_batch(2, campaign=campaign, status="COMPLETED", price=Decimal("1.00"))
    api.get(API)
    # session, user, company, the totals (the count too), the page
    with django_assert_num_queries(5):
        assert len(api.get(API).json()["results"]) == 2
    CallRequestFactory.create_batch(20, campaign=CampaignFactory(company=company))
    with django_assert_num_queries(5):
        assert len(api.get(API).json()["results"]) == 22
    with django_assert_num_queries(5):  # filtered on a campaign too
        assert len(api.get(API, {"campaign": campaign.pk}).json()["results"]) == 2


def test_detail_queries_are_pinned(api, company, campaign, django_assert_num_queries):
    call = CallRequestFactory(campaign=campaign, status="FAILED_COMPANY", rate_price=Decimal("0.12000"))

    def add_attempt(seq):
        attempt = CallAttemptFactory(request=call, seq=seq, status="FAILED_COMPANY")
        first = CallRecordFactory(
            company=company, app="click2call", app_ref=attempt.app_ref, callee=call.number
        )
        for n in range(3):
            CallRecordFactory(
                company=company,
                app="click2call",
                app_ref=attempt.app_ref,
                parent=first,
                callee=f"+3314000000{n}",
            )
        CallCommentFactory(request=call, comment_type=CommentTypeFactory(company=company))

    add_attempt(1)
    api.get(f"{API}{call.pk}/")
    # session, user, company, the request, its attempts, their legs, the rates of the legs, the
    # comments (with their types and authors), the types' fields
    with django_assert_num_queries(9):
        api.get(f"{API}{call.pk}/")
    add_attempt(2)
    add_attempt(3)
    with django_assert_num_queries(9):
        assert len(api.get(f"{API}{call.pk}/").json()["attempts"]) == 3


# Hostile input


@pytest.mark.parametrize(
    "query",
    [
        {"status": "NOPE"},
        {"status": "completed"},
        {"status": ""},
        {"campaign": "abc"},
        {"campaign": "-1"},
        {"campaign": "99999999999999999999"},
        {"start": "2026-13-01"},
        {"start": "0001-01-01"},
        {"end": "9999-12-31"},
        {"start": "yesterday"},
        {"direction": ""},
        {"direction": "x" * 81},
        {"direction": "555\r\n1001"},
        {"offset": str(2**31)},
        {"limit": "501"},
        {"limit": "0"},
    ],
)
def test_bad_filters_are_400_with_the_field_named(api, query):
    response = api.get(API, query)
    assert response.status_code == 400
    assert_error_body(response)
    assert set(response.json()["fields"]) <= set(query)


@pytest.mark.parametrize("name", BAD_INTEGER_QUERY_VALUES)
@pytest.mark.parametrize("parameter", ["campaign", "limit", "offset"])
def test_bad_integers_are_400(api, name, parameter):
    assert_rejects_cleanly(
        api, "get", f"{API}?{parameter}={quote(BAD_INTEGER_QUERY_VALUES[name])}", status=400
    )


def test_another_company_campaign_lists_nothing(api, calls):
    stranger = CallRequestFactory(status="COMPLETED", price=Decimal("9.00"))
    body = api.get(API, {"campaign": stranger.campaign_id}).json()
    assert body["results"] == [] and body["totals"]["count"] == 0


@pytest.mark.parametrize("name", HIDDEN_CHARACTERS)
def test_hidden_characters_in_the_direction_are_refused(api, name):
    response = api.get(API, {"direction": HIDDEN_CHARACTERS[name]})
    assert response.status_code == 400 and "direction" in response.json()["fields"]


@pytest.mark.parametrize("name", HOSTILE_STRINGS)
def test_hostile_directions_never_fail(api, calls, name):
    assert_answers_cleanly(api, "get", f"{API}?direction={quote(HOSTILE_STRINGS[name])}")


def test_a_page_beyond_the_list_is_empty_not_an_error(api, calls):
    body = api.get(API, {"offset": str(2**31 - 1)}).json()
    assert body["results"] == [] and body["count"] == 3 and body["totals"]["count"] == 3


@pytest.mark.parametrize(
    "direction", ["Île-de-France", "AT&T", "O2 (UK)", "France - Mobile - Orange", "l'Aquila"]
)
def test_directions_as_people_write_them_are_taken(api, direction):
    assert api.get(API, {"direction": direction}).status_code == 200


@pytest.mark.parametrize("direction", ["=1+1", "@SUM(A1)", "a;b", "<script>", "📞"])
def test_a_direction_of_other_characters_is_refused(api, direction):
    response = api.get(API, {"direction": direction})
    assert response.status_code == 400 and list(response.json()["fields"]) == ["direction"]


def test_unicode_direction_is_matched(api, campaign):
    CallRequestFactory(campaign=campaign, number="+33612340001", carrier="Orange Réunion")
    assert numbers(api.get(API, {"direction": "réunion"})) == ["+33612340001"]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_company_api_is_read_only(api, calls, method):
    assert_rejects_cleanly(api, method, API, {}, status=405)
    assert_rejects_cleanly(api, method, f"{API}{calls['done'].pk}/", {}, status=405)


# The schema


def test_the_list_and_the_detail_conform_to_the_schema(live_server, transactional_db):
    """Rows Schemathesis' random walk (tests/test_schema.py) never meets: a completed request with
    its attempts, legs rated and not, and comments; and a refused filter."""
    user = UserFactory()
    _, key = api_token_create(user=user, name="schema")
    campaign = CampaignFactory(company=user.company, price_per_completed=Decimal("1.25"))
    call = CallRequestFactory(
        campaign=campaign, status="COMPLETED", price=Decimal("1.25"), rate_price=Decimal("0.12000")
    )
    CallRequestFactory(campaign=campaign, status="FAILED_USER")
    attempt = CallAttemptFactory(request=call, seq=1, status="COMPLETED", requested_by=user)
    now = timezone.now()
    first = CallRecordFactory(
        company=user.company, app="click2call", app_ref=attempt.app_ref, callee=call.number, billsec=30,
        started_at=now, ended_at=now,
    )  # fmt: skip
    CallRecordFactory(
        company=user.company, app="click2call", app_ref=attempt.app_ref, callee="PJSIP/desk", parent=first
    )
    CallCommentFactory(request=call, values={"amount": "3"})

    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    auth = {"Authorization": f"Bearer {key}"}
    checks = CHECKS.get_all()
    listed = schema[API]["GET"].Case().call_and_validate(headers=auth, checks=checks)
    assert listed.json()["totals"]["amount"] == "1.25"
    detail = schema[API + "{id}/"]["GET"].Case(path_parameters={"id": call.pk})
    body = detail.call_and_validate(headers=auth, checks=checks).json()
    assert [leg["cost"] for leg in body["attempts"][0]["legs"]] == ["0.12000", None]
    refused = schema[API]["GET"].Case(query={"start": "1999-12-31"}).call(headers=auth)
    assert refused.status_code == 400 and list(refused.json()["fields"]) == ["start"]
