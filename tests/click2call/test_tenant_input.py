"""What a company may set in click2call, refused with a clear message when it is not what it
looks like: operators that bypass the blocked prefixes or the tariff, sounds that are paths,
origins that are not origins, bounds and grammar, invisible characters (issue 22)."""

import importlib
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from click2call.models import Campaign, CampaignOperator, Operator
from click2call.services.dialing import attempt_dial_plan, attempt_originate
from tests import hostile
from tests.click2call.factories import (
    BlockedPrefixFactory,
    CallAttemptFactory,
    CallRequestFactory,
    CampaignFactory,
    CommentFieldFactory,
    CommentTypeFactory,
    OperatorFactory,
    RateFactory,
    TariffFactory,
)
from tests.click2call.test_portal import campaign_data

pytestmark = pytest.mark.django_db

URL = "/api/click2call/requests/"
SHOP = "https://shop.example.com"


def url(name, company, *args):
    return reverse(f"click2call:{name}", args=[company.slug, *args])


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


@pytest.fixture
def campaign(company):
    return CampaignFactory(company=company, name="Spring sale")


def page(response) -> str:
    return response.content.decode()


# 1. Operators are numbers, checked like a visitor's -----------------------------------------


def test_an_operator_is_a_number_in_international_form(logged_in, company):
    response = logged_in.post(url("operators", company), {"name": "Anna", "number": "0899123456"})
    assert response.status_code == 400 and "international form" in page(response)
    response = logged_in.post(url("operators", company), {"name": "Anna", "number": "+33 6 12 34 52 01"})
    assert response.status_code == 302
    assert Operator.objects.get(company=company).number == "+33612345201"


def test_an_operator_in_a_blocked_prefix_is_refused(logged_in, company):
    BlockedPrefixFactory(company=company, prefix="33899")
    response = logged_in.post(url("operators", company), {"name": "Premium", "number": "+33 8 99 12 34 56"})
    assert response.status_code == 400 and "blocked (your prefix 33899)" in page(response)
    assert not Operator.objects.filter(company=company).exists()


def test_a_company_cannot_save_a_dial_string(logged_in, company):
    data = {"name": "Trunk", "dial_string": "Local/0899123456@phones"}
    assert logged_in.post(url("operators", company), data).status_code == 400
    data["number"] = "+33612345201"
    assert logged_in.post(url("operators", company), data).status_code == 302
    assert Operator.objects.get(company=company).dial_string == ""


def test_staff_set_dial_strings_in_the_admin(admin_client, company):
    data = {"company": company.pk, "name": "Reception", "number": "", "dial_string": "PJSIP/reception"}
    data["active"] = "on"
    assert admin_client.post(reverse("admin:click2call_operator_add"), data).status_code == 302
    assert Operator.objects.get(company=company).dial_string == "PJSIP/reception"


def test_an_operator_the_campaign_tariff_does_not_rate_is_refused(logged_in, company, campaign):
    uk = OperatorFactory(company=company, name="London desk", number="+447911123456")
    response = logged_in.post(url("campaign-operators", company, campaign.pk), {f"op_{uk.pk}": "1"})
    assert response.status_code == 400
    assert f"the tariff {campaign.tariff.name} has no rate for its number" in page(response)
    assert not CampaignOperator.objects.filter(campaign=campaign, operator=uk).exists()
    # Nor can an operator already on the campaign be given such a number.
    on_campaign = campaign.operators.get()
    data = {"name": on_campaign.name, "number": "+44 7911 123457", "active": "on"}
    response = logged_in.post(url("operator", company, on_campaign.pk), data)
    assert response.status_code == 400 and "has no rate for its number" in page(response)
    assert Operator.objects.get(pk=on_campaign.pk).number == "+33612345201"


def test_a_tariff_that_leaves_an_operator_unrated_is_refused(logged_in, company, campaign):
    paris_only = TariffFactory(company=company, rates={"331": ("Paris", Decimal("0.02"))})
    data = campaign_data(paris_only, campaign.server, name=campaign.name)
    response = logged_in.post(url("campaign-edit", company, campaign.pk), data)
    assert response.status_code == 400 and "has no rate for its number" in page(response)
    campaign.refresh_from_db()
    assert campaign.tariff_id != paris_only.pk


def test_a_rule_changed_after_saving_still_holds_when_dialing(company, campaign):
    second = OperatorFactory(company=company, name="Second", number="+33899123456")
    CampaignOperator.objects.create(campaign=campaign, operator=second, position=1)
    attempt = CallAttemptFactory(request=CallRequestFactory(campaign=campaign), status="claimed")
    # Blocked after it was saved: the others are rung, not it.
    BlockedPrefixFactory(company=company, prefix="33899")
    hops = attempt_dial_plan(attempt=attempt)["variables"]
    assert hops["C2C_DIAL_1"] == "Local/+33612345201@phones" and "C2C_DIAL_2" not in hops
    # A row saved before numbers were checked is read as the trunk would dial it.
    Operator.objects.filter(name="Second").update(number="0899123456")
    assert "C2C_DIAL_2" not in attempt_dial_plan(attempt=attempt)["variables"]
    # With nobody left to ring, the try fails on the company's side and says why; nobody is rung.
    campaign.tariff.rates.filter(prefix__in=["33", "336"]).delete()
    attempt = attempt_originate(attempt_id=attempt.pk)
    assert attempt.status == "FAILED_COMPANY"
    assert "no operator may be rung" in attempt.detail and "not served" in attempt.detail


# 2. A sound is a name, not a path ---------------------------------------------------------


@pytest.mark.parametrize(
    "sound", ["/etc/passwd", "../../etc/passwd", "custom/../secret", "a//b", "hello.wav"]
)
def test_a_sound_path_is_refused(logged_in, company, campaign, sound):
    data = campaign_data(campaign.tariff, campaign.server, message_sound=sound)
    response = logged_in.post(url("campaign-new", company), data)
    assert response.status_code == 400 and "no leading /" in page(response)


def test_a_sound_in_a_folder_is_a_name(logged_in, company, campaign):
    data = campaign_data(campaign.tariff, campaign.server, message_sound="custom/welcome-2")
    assert logged_in.post(url("campaign-new", company), data).status_code == 302


# 3. Allowed origins ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "says"),
    [
        ("null", "sandboxed frames"),
        ("*", "no wildcards"),
        ("https://*.example.com", "no wildcards"),
        ("javascript:alert(1)", "https://host or http://host"),
        ("file:///etc/passwd", "https://host or http://host"),
        ("ftp://shop.example.com", "https://host or http://host"),
        ("https://shop.example.com/checkout", "no path"),
        ("https://shop.example.com?x=1", "no path"),
        ("https://user@shop.example.com", "no path"),
        ("https://shop.example.com:99999", "port"),
        ("https://shop example.com", "not a host name"),
    ],
)
def test_an_origin_that_is_not_scheme_host_port_is_refused(logged_in, company, campaign, origin, says):
    data = campaign_data(
        campaign.tariff, campaign.server, allowed_origins=f"https://ok.example.com\n{origin}"
    )
    response = logged_in.post(url("campaign-new", company), data)
    assert response.status_code == 400 and says in page(response)


def test_origins_are_kept_as_browsers_send_them(logged_in, company, campaign):
    origins = "HTTPS://Shop.Example.com:443/\r\nhttp://127.0.0.1:8000\nhttps://[::1]:8443\n\n"
    data = campaign_data(campaign.tariff, campaign.server, allowed_origins=origins)
    assert logged_in.post(url("campaign-new", company), data).status_code == 302
    created = company.c2c_campaigns.get(name="Summer")
    expected = ["https://shop.example.com", "http://127.0.0.1:8000", "https://[::1]:8443"]
    assert created.allowed_origins.splitlines() == expected == created.origins()


def banner_post(client, campaign, origin):
    body = json.dumps({"number": "06 12 34 56 78", "consent": True})
    headers = {"X-Campaign-Key": campaign.public_key, "Origin": origin}
    return client.post(URL, body, content_type="application/json", headers=headers)


def test_a_null_origin_saved_before_is_never_honoured(client, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(allowed_origins="null\nhttps://shop.example.com")
    response = banner_post(client, campaign, "null")
    assert response.status_code == 403 and response.json()["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    preflight = client.options(URL, headers={"Origin": "null"})
    assert "Access-Control-Allow-Origin" not in preflight
    assert banner_post(client, campaign, SHOP)["Access-Control-Allow-Origin"] == SHOP


def test_a_campaign_without_origins_says_its_banner_works_from_no_site(logged_in, company, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(allowed_origins="")
    body = page(logged_in.get(url("campaign", company, campaign.pk)))
    assert "the banner works from no site" in body and "any" not in body.split("Sites", 1)[1][:40]


# 4. Bounds and grammar ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"reminder_minutes": 10**10}, "less than or equal to 43200"),
        ({"reminder_minutes": -1}, "greater than or equal to 0"),
        ({"default_country": "XX"}, "not a country code"),
        ({"visitor_caller_id": '"Police" <112>'}, "never an emergency or short number"),
        ({"company_caller_id": "15"}, "never an emergency or short number"),
        ({"company_caller_id": '"Shop" <+33 1 99 00 12 34>'}, "Write a caller ID as"),
        ({"company_caller_id": "Shop"}, "Write a caller ID as"),
    ],
)
def test_campaign_bounds_and_grammar_are_form_errors(logged_in, company, campaign, changes, says):
    data = campaign_data(campaign.tariff, campaign.server, **changes)
    response = logged_in.post(url("campaign-new", company), data)
    assert response.status_code == 400 and says in page(response)
    assert company.c2c_campaigns.count() == 1


def test_a_full_number_is_a_caller_id(logged_in, company, campaign):
    data = campaign_data(
        campaign.tariff,
        campaign.server,
        visitor_caller_id='"Shop" <0199001234>',
        company_caller_id="+33199001234",
    )
    assert logged_in.post(url("campaign-new", company), data).status_code == 302


@pytest.mark.parametrize("consent", ["true", "yes", 1, "on"])
def test_consent_is_json_true_only(client, campaign, consent):
    body = json.dumps({"number": "06 12 34 56 78", "consent": consent})
    headers = {"X-Campaign-Key": campaign.public_key, "Origin": SHOP}
    response = client.post(URL, body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    kind = "a number" if consent == 1 else "a string"
    assert response.json()["fields"]["consent"] == [f"Must be JSON true or false, not {kind}."]


@pytest.mark.parametrize("number", ["+33 6 12 34 56 78;ext=99", "06 12 34 56 78 ext. 99"])
def test_an_extension_is_refused_not_dropped(client, campaign, number):
    body = json.dumps({"number": number, "consent": True})
    headers = {"X-Campaign-Key": campaign.public_key, "Origin": SHOP}
    response = client.post(URL, body, content_type="application/json", headers=headers)
    assert response.status_code == 400 and response.json()["code"] == "invalid_number"
    assert "Extensions" in response.json()["detail"]


@pytest.mark.parametrize("field", ["name", "note"])
@pytest.mark.parametrize("value", hostile.HIDDEN_CHARACTERS.values(), ids=hostile.HIDDEN_CHARACTERS)
def test_the_banner_refuses_invisible_characters(client, campaign, field, value):
    body = json.dumps({"number": "06 12 34 56 78", "consent": True, field: value})
    headers = {"X-Campaign-Key": campaign.public_key, "Origin": SHOP}
    response = client.post(URL, body, content_type="application/json", headers=headers)
    assert response.status_code == 400, response.content
    assert "Invisible or control characters" in response.json()["fields"][field][0]


def portal_posts(company, campaign):
    """Every portal form where a company types text, as (url name, args, data with {} for the text)."""
    tariff = campaign.tariff
    return {
        "campaign name": ("campaign-new", [], campaign_data(tariff, campaign.server, name="{}")),
        "operator name": ("operators", [], {"name": "{}", "number": "+33612345299"}),
        "tariff name": ("tariffs", [], {"name": "{}"}),
        "rate destination": ("tariff", [tariff.pk], {"prefix": "3370", "destination": "{}", "price": "0.1"}),
        "blocked prefix reason": ("blocked", [], {"prefix": "3389", "reason": "{}"}),
        "comment type name": (
            "comment-type-new",
            [],
            {"name": "{}", "active": "on", "fields-TOTAL_FORMS": "0", "fields-INITIAL_FORMS": "0"},
        ),
        "comment field name": (
            "comment-type-new",
            [],
            {
                "name": "Outcome",
                "fields-TOTAL_FORMS": "1",
                "fields-INITIAL_FORMS": "0",
                "fields-0-name": "{}",
                "fields-0-kind": "text",
            },
        ),
        "comment field choices": (
            "comment-type-new",
            [],
            {
                "name": "Outcome",
                "fields-TOTAL_FORMS": "1",
                "fields-INITIAL_FORMS": "0",
                "fields-0-name": "result",
                "fields-0-kind": "choice",
                "fields-0-choices": "sold\n{}",
            },
        ),
    }


@pytest.mark.parametrize(
    "where",
    [
        "campaign name",
        "operator name",
        "tariff name",
        "rate destination",
        "blocked prefix reason",
        "comment type name",
        "comment field name",
        "comment field choices",
    ],
)
@pytest.mark.parametrize("value", hostile.HIDDEN_CHARACTERS.values(), ids=hostile.HIDDEN_CHARACTERS)
def test_every_text_a_company_sets_refuses_invisible_characters(logged_in, company, campaign, where, value):
    name, args, data = portal_posts(company, campaign)[where]
    data = {key: item.replace("{}", value) if isinstance(item, str) else item for key, item in data.items()}
    response = logged_in.post(url(name, company, *args), data)
    assert response.status_code == 400, where
    assert "Invisible or control characters are not allowed here" in page(response)


def test_the_tariff_table_never_shows_evil_as_live(company):
    rate = RateFactory(tariff=TariffFactory(company=company), destination="\u202eevil")
    with pytest.raises(ValidationError, match="U\\+202E"):
        rate.full_clean()


@pytest.mark.parametrize("value", hostile.HIDDEN_CHARACTERS.values(), ids=hostile.HIDDEN_CHARACTERS)
def test_a_comment_refuses_invisible_characters_and_keeps_its_lines(logged_in, company, campaign, value):
    kind = CommentTypeFactory(company=company, name="Survey")
    remark = CommentFieldFactory(comment_type=kind, name="remark")
    call = CallRequestFactory(campaign=campaign)
    comment = url("call-comment", company, call.pk)
    response = logged_in.post(comment, {"comment_type": kind.pk, f"type{kind.pk}-f{remark.pk}": value})
    assert response.status_code == 400 and "Invisible or control characters" in page(response)
    lines = {"comment_type": kind.pk, f"type{kind.pk}-f{remark.pk}": "called back\r\nsold"}
    assert logged_in.post(comment, lines).status_code == 302
    assert call.comments.get().values == {"remark": "called back\r\nsold"}


def test_a_visitor_number_blocked_after_the_request_is_not_dialed(campaign):
    request = CallRequestFactory(campaign=campaign, number="+33899123456", destination="France")
    attempt = CallAttemptFactory(request=request, status="claimed")
    BlockedPrefixFactory(company=campaign.company, prefix="33899")
    attempt = attempt_originate(attempt_id=attempt.pk)
    assert attempt.status == "FAILED_COMPANY"
    assert attempt.detail == "the visitor's number: Calls to this number are not allowed."


def test_the_migration_drops_the_origins_and_sounds_saved_before(monkeypatch, campaign):
    from django.apps import apps

    from click2call import models

    # A migration replays with its own copy of the rules, whatever the models' code becomes later.
    for name in ("origin_normalize", "sound_name"):
        monkeypatch.delattr(models, name)
    migration = importlib.import_module("click2call.migrations.0006_tenant_input_checked")
    saved = "null\n*\nHTTPS://Shop.Example.com/\njavascript:alert(1)\nhttps://www.example.com/path"
    Campaign.objects.filter(pk=campaign.pk).update(allowed_origins=saved, message_sound="/etc/passwd")
    untouched = CampaignFactory(message_sound="custom/welcome")
    migration.drop_bad_origins_and_sounds(apps, None)
    campaign.refresh_from_db()
    assert (campaign.allowed_origins, campaign.message_sound) == ("https://shop.example.com", "hello-world")
    assert Campaign.objects.get(pk=untouched.pk).message_sound == "custom/welcome"
