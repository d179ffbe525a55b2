"""The company portal's click2call pages: calls, comments, campaigns, operators, tariffs, blocked prefixes."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from click2call.models import BlockedPrefix, CallRequest, Campaign, CampaignOperator, Rate
from tests.click2call.factories import (
    BlockedPrefixFactory,
    CallAttemptFactory,
    CallCommentFactory,
    CallRequestFactory,
    CampaignFactory,
    CommentFieldFactory,
    CommentTypeFactory,
    OperatorFactory,
    RateFactory,
    TariffFactory,
)
from tests.factories import UserFactory
from tests.hostile import HOSTILE_STRINGS
from tests.telephony.factories import CallRecordFactory, PbxServerFactory
from tests.tenancy import assert_other_company_gets_404

pytestmark = pytest.mark.django_db


def url(name, company, *args):
    return reverse(f"click2call:{name}", args=[company.slug, *args])


@pytest.fixture
def campaign(company):
    return CampaignFactory(company=company, name="Spring sale")


@pytest.fixture
def logged_in(client, company_user):
    client.force_login(company_user)
    return client


# Calls


def test_call_list_shows_own_calls_filtered(logged_in, company, campaign):
    other_campaign = CampaignFactory(company=company, name="Autumn")
    CallRequestFactory(campaign=campaign, number="+33612340001", status="COMPLETED", carrier="Orange")
    CallRequestFactory(campaign=campaign, number="+33612340002", status="FAILED_USER", carrier="SFR")
    CallRequestFactory(campaign=other_campaign, number="+33612340003", status="FAILED_USER", carrier="Orange")
    CallRequestFactory(number="+33612349999")  # another company's

    body = logged_in.get(url("calls", company)).content.decode()
    assert "+33612340001" in body and "+33612340003" in body
    assert "+33612349999" not in body

    body = logged_in.get(
        url("calls", company), {"status": "FAILED_USER", "direction": "orange"}
    ).content.decode()
    assert "+33612340003" in body
    assert "+33612340001" not in body and "+33612340002" not in body

    body = logged_in.get(url("calls", company), {"campaign": other_campaign.pk}).content.decode()
    assert "+33612340003" in body and "+33612340001" not in body


def test_call_list_period_is_in_company_days(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign, number="+33612340001")
    # 23:30 UTC on the 1st is the 2nd in Paris.
    CallRequest.objects.filter(pk=call.pk).update(created_at=dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC))
    assert "+33612340001" in logged_in.get(url("calls", company), {"start": "2026-03-02"}).content.decode()
    assert "+33612340001" not in logged_in.get(url("calls", company), {"end": "2026-03-01"}).content.decode()


def test_call_list_queries_are_pinned(logged_in, company, campaign, django_assert_num_queries):
    CallRequestFactory.create_batch(3, campaign=campaign)
    logged_in.get(url("calls", company))  # warm the session
    # session, user, company, its permissions (2), the totals (the count too), the filter's campaigns,
    # the page
    with django_assert_num_queries(8):
        logged_in.get(url("calls", company))
    CallRequestFactory.create_batch(20, campaign=CampaignFactory(company=company))
    with django_assert_num_queries(8):
        response = logged_in.get(url("calls", company))
    assert response.content.decode().count("<tr>") == 1 + 23


def test_call_list_paginates(logged_in, company, campaign):
    CallRequestFactory.create_batch(51, campaign=campaign)
    assert logged_in.get(url("calls", company)).content.decode().count("<tr>") == 1 + 50
    assert logged_in.get(url("calls", company), {"page": 2}).content.decode().count("<tr>") == 1 + 1


def test_the_tariff_pager_says_which_prefixes_come_next(logged_in, company):
    """Rates are in prefix order, not by age: the pager says lower and higher prefixes."""
    tariff = TariffFactory(company=company, rates={f"49{n:03d}": ("Germany", "0.01") for n in range(51)})
    first = logged_in.get(url("tariff", company, tariff.pk)).text
    assert "Higher prefixes &rarr;" in first and "Lower prefixes" not in first
    assert "older &rarr;" not in first.lower() and "&larr; newer" not in first.lower()
    assert "&larr; Lower prefixes" in logged_in.get(url("tariff", company, tariff.pk), {"page": 2}).text
    # A list newest first still says newer and older.
    CallRequestFactory.create_batch(51, campaign=CampaignFactory(company=company, tariff=tariff))
    assert "Older &rarr;" in logged_in.get(url("calls", company)).text


@pytest.mark.parametrize(
    "query",
    [{"status": "NOPE"}, {"campaign": "abc"}, {"start": "2026-13-01"}, {"campaign": "99999999999999999999"}],
)
def test_call_list_bad_filters_are_400(logged_in, company, query):
    assert logged_in.get(url("calls", company), query).status_code == 400


@pytest.mark.parametrize("name", HOSTILE_STRINGS)
def test_call_list_hostile_direction_never_500(logged_in, company, name):
    assert logged_in.get(url("calls", company), {"direction": HOSTILE_STRINGS[name]}).status_code in (
        200,
        400,
    )


def test_another_company_campaign_is_not_a_filter(logged_in, company):
    assert logged_in.get(url("calls", company), {"campaign": CampaignFactory().pk}).status_code == 400


def test_call_csv_has_a_column_per_comment_field_and_is_formula_safe(
    logged_in, company, campaign, company_user
):
    call = CallRequestFactory(campaign=campaign, number="+33612340001", name="=HYPERLINK(1)")
    kind = CommentTypeFactory(company=company, name="Sale")
    CommentFieldFactory(comment_type=kind, name="amount", kind="number")
    CommentFieldFactory(comment_type=kind, name="remark")
    CallCommentFactory(request=call, comment_type=kind, values={"amount": "12.5", "remark": "@SUM(A1)"})
    CallCommentFactory(request=call, comment_type=kind, values={"amount": "3"})

    response = logged_in.get(url("calls", company), {"format": "csv"})
    assert response["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 2 and rows[1]["id"] == "TOTAL"  # the call, then the total row
    assert rows[0]["number"] == "'+33612340001"
    assert rows[0]["name"] == "'=HYPERLINK(1)"
    assert rows[0]["Sale: amount"] == "12.5 | 3"
    assert rows[0]["Sale: remark"] == "'@SUM(A1)"


def test_call_detail_shows_attempts_and_both_legs(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign, status="FAILED_COMPANY")
    attempt = CallAttemptFactory(request=call, seq=1, status="FAILED_COMPANY", detail="company busy")
    first = CallRecordFactory(
        company=company,
        app="click2call",
        app_ref=attempt.app_ref,
        callee="+33612340001",
        disposition="ANSWERED",
    )
    CallRecordFactory(
        company=company,
        app="click2call",
        app_ref=attempt.app_ref,
        parent=first,
        callee="5552002",
        disposition="BUSY",
        hangup_cause=17,
        hangup_cause_text="User busy",
    )
    CallRecordFactory(company=company, app="queues", app_ref=attempt.app_ref, callee="5559999")

    response = logged_in.get(url("call", company, call.pk))
    body = response.content.decode()
    assert "company busy" in body
    assert "+33612340001" in body and "5552002" in body and "5552002</a>: Busy" in body
    assert "5559999" not in body
    assert "Call back" in body


def test_call_detail_shows_every_operator_rung_and_the_one_who_answered(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign, status="COMPLETED")
    attempt = CallAttemptFactory(request=call, seq=1, status="COMPLETED", detail="bridged")
    start = timezone.now()
    first = CallRecordFactory(company=company, app="click2call", app_ref=attempt.app_ref, started_at=start)
    for seconds, (operator, disposition) in enumerate([("5552002", "BUSY"), ("5552001", "ANSWERED")], 5):
        CallRecordFactory(
            company=company,
            app="click2call",
            app_ref=attempt.app_ref,
            parent=first,
            callee=operator,
            disposition=disposition,
            started_at=start + dt.timedelta(seconds=seconds),
        )
    body = logged_in.get(url("call", company, call.pk)).content.decode()
    busy, answered = body.index("5552002</a>: Busy"), body.index("5552001</a>: Answered")
    assert busy < answered  # as they were rung


def test_call_detail_of_a_completed_call_has_no_call_back(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign, status="COMPLETED")
    assert "Call back" not in logged_in.get(url("call", company, call.pk)).content.decode()


def test_call_back_of_a_completed_call_is_refused_with_a_message(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign, status="COMPLETED")
    response = logged_in.post(url("call-callback", company, call.pk), follow=True)
    assert "No call back" in response.content.decode()
    assert not call.attempts.exists()


def test_call_back_of_a_failed_call_makes_a_callback_attempt(logged_in, company, campaign, company_user):
    call = CallRequestFactory(campaign=campaign, status="FAILED_USER")
    response = logged_in.post(url("call-callback", company, call.pk))
    assert response.status_code == 302
    attempt = call.attempts.get()
    assert (attempt.kind, attempt.requested_by) == ("callback", company_user)


def test_call_back_is_post_only(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign)
    assert logged_in.get(url("call-callback", company, call.pk)).status_code == 405


# Comments


@pytest.fixture
def survey(company):
    kind = CommentTypeFactory(company=company, name="Survey")
    CommentFieldFactory(comment_type=kind, name="score", kind="number", required=True)
    CommentFieldFactory(comment_type=kind, name="when", kind="date")
    CommentFieldFactory(comment_type=kind, name="mood", kind="choice", choices="happy\nangry")
    CommentFieldFactory(comment_type=kind, name="remark")
    return kind


def post_comment(client, company, call, kind, **values):
    fields = {field.name: field.pk for field in kind.fields.all()}
    data = {
        "comment_type": kind.pk,
        **{f"type{kind.pk}-f{fields[name]}": value for name, value in values.items()},
    }
    return client.post(url("call-comment", company, call.pk), data)


def test_comment_is_added_with_clean_values(logged_in, company, campaign, survey, company_user):
    call = CallRequestFactory(campaign=campaign)
    response = post_comment(logged_in, company, call, survey, score="7.50", when="2026-03-02", mood="happy")
    assert response.status_code == 302
    comment = call.comments.get()
    assert comment.values == {"score": "7.50", "when": "2026-03-02", "mood": "happy"}
    assert comment.author == company_user
    assert "happy" in logged_in.get(url("call", company, call.pk)).content.decode()


@pytest.mark.parametrize(
    "values",
    [
        {"score": "seven"},
        {"score": "NaN"},
        {"score": "1e400"},
        {"score": "٧"},
        {"score": ""},
        {"score": "1", "when": "2026-02-30"},
        {"score": "1", "when": "20260302"},
        {"score": "1", "when": "٢٠٢٦-٠٣-٠٢"},
        {"score": "1", "mood": "sad"},
        {"score": "1", "remark": "x" * 10_000},
        {"score": "1", "remark": "a\x00b"},
    ],
)
def test_bad_comment_values_are_form_errors(logged_in, company, campaign, survey, values):
    call = CallRequestFactory(campaign=campaign)
    response = post_comment(logged_in, company, call, survey, **values)
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    assert not call.comments.exists()


@pytest.mark.parametrize("name", HOSTILE_STRINGS)
def test_hostile_text_comment_is_stored_or_refused(logged_in, company, campaign, survey, name):
    call = CallRequestFactory(campaign=campaign)
    response = post_comment(logged_in, company, call, survey, score="1", remark=HOSTILE_STRINGS[name])
    assert response.status_code in (302, 400)


@pytest.mark.parametrize("comment_type", ["", "abc", "-1", "99999999999999999999"])
def test_missing_comment_type_is_404(logged_in, company, campaign, comment_type):
    call = CallRequestFactory(campaign=campaign)
    response = logged_in.post(url("call-comment", company, call.pk), {"comment_type": comment_type})
    assert response.status_code == 404


@pytest.mark.parametrize("value", ["²", "١", "99999999999999999999999", "-1", ""])
def test_a_comment_type_that_is_no_id_is_404(logged_in, company, campaign, client, value):
    call = CallRequestFactory(campaign=campaign)
    client.raise_request_exception = False
    assert logged_in.post(url("call-comment", company, call.pk), {"comment_type": value}).status_code == 404
    assert not call.comments.exists()


def test_another_company_comment_type_is_404(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign)
    foreign = CommentTypeFactory()
    assert (
        logged_in.post(url("call-comment", company, call.pk), {"comment_type": foreign.pk}).status_code == 404
    )


def test_comment_type_with_its_fields_is_created_and_edited(logged_in, company):
    data = {
        "name": "Lead",
        "active": "on",
        "fields-TOTAL_FORMS": "2",
        "fields-INITIAL_FORMS": "0",
        "fields-0-name": "budget",
        "fields-0-kind": "number",
        "fields-0-required": "on",
        "fields-1-name": "stage",
        "fields-1-kind": "choice",
        "fields-1-choices": "new\nwon\nlost",
    }
    assert logged_in.post(url("comment-type-new", company), data).status_code == 302
    kind = company.c2c_comment_types.get(name="Lead")
    assert [(f.name, f.kind, f.required, f.position) for f in kind.fields.all()] == [
        ("budget", "number", True, 0),
        ("stage", "choice", False, 1),
    ]
    budget, stage = kind.fields.all()
    edit = {
        "name": "Lead",
        "active": "on",
        "fields-TOTAL_FORMS": "2",
        "fields-INITIAL_FORMS": "2",
        "fields-0-id": budget.pk,
        "fields-0-name": "budget",
        "fields-0-kind": "number",
        "fields-0-DELETE": "on",
        "fields-1-id": stage.pk,
        "fields-1-name": "stage",
        "fields-1-kind": "choice",
        "fields-1-choices": "new\nwon",
    }
    assert logged_in.post(url("comment-type", company, kind.pk), edit).status_code == 302
    assert [f.choice_list() for f in kind.fields.all()] == [["new", "won"]]


def test_two_fields_swap_their_names(logged_in, company, client):
    kind = CommentTypeFactory(company=company, name="Lead")
    first = CommentFieldFactory(comment_type=kind, name="budget", position=0)
    second = CommentFieldFactory(comment_type=kind, name="stage", position=1)
    swap = {
        "name": "Lead",
        "active": "on",
        "fields-TOTAL_FORMS": "2",
        "fields-INITIAL_FORMS": "2",
        "fields-0-id": first.pk,
        "fields-0-name": "stage",
        "fields-0-kind": "text",
        "fields-1-id": second.pk,
        "fields-1-name": "budget",
        "fields-1-kind": "text",
    }
    client.raise_request_exception = False
    assert logged_in.post(url("comment-type", company, kind.pk), swap).status_code == 302
    assert list(kind.fields.values_list("pk", "name")) == [(first.pk, "stage"), (second.pk, "budget")]


def test_choice_field_without_choices_is_refused(logged_in, company):
    data = {
        "name": "Lead",
        "fields-TOTAL_FORMS": "1",
        "fields-INITIAL_FORMS": "0",
        "fields-0-name": "stage",
        "fields-0-kind": "choice",
    }
    response = logged_in.post(url("comment-type-new", company), data)
    assert response.status_code == 400
    assert "needs its choices" in response.content.decode()
    assert not company.c2c_comment_types.exists()


@pytest.mark.parametrize("name", HOSTILE_STRINGS)
def test_hostile_comment_type_names_never_500(logged_in, company, name):
    data = {"name": HOSTILE_STRINGS[name], "fields-TOTAL_FORMS": "1", "fields-INITIAL_FORMS": "0"}
    data["fields-0-name"] = HOSTILE_STRINGS[name]
    data["fields-0-kind"] = "text"
    assert logged_in.post(url("comment-type-new", company), data).status_code in (302, 400)


# Campaigns


def campaign_data(tariff_, server_, **changes):
    tariff, server = tariff_, server_
    return {
        "name": "Summer",
        "active": "on",
        "tariff": tariff.pk,
        "server": server.pk,
        "route": "default",
        "first_party": "visitor",
        "ringing": "in_order",
        "message_sound": "hello-world",
        "ring_timeout": 30,
        "redial_count": 2,
        "redial_pause": 60,
        "default_country": "FR",
        "reminder_minutes": 60,
        "allowed_origins": "https://shop.example.com",
        **changes,
    }


def test_campaign_is_created_and_shows_its_snippet(logged_in, company, campaign):
    data = campaign_data(campaign.tariff, campaign.server)
    response = logged_in.post(url("campaign-new", company), data)
    created = company.c2c_campaigns.get(name="Summer")
    assert response.status_code == 302
    body = logged_in.get(url("campaign", company, created.pk)).content.decode()
    assert (
        f"&lt;script src=&quot;http://testserver/c2c/{created.public_key}/widget.js&quot;&gt;&lt;/script&gt;"
        in body
    )


def test_a_new_campaign_dials_where_the_company_already_does_and_never_shows_the_servers(
    logged_in, company, campaign
):
    PbxServerFactory(name="another-tenants-pbx")
    page = logged_in.get(url("campaign-new", company)).content.decode()
    assert "another-tenants-pbx" not in page and 'name="server"' not in page
    other = PbxServerFactory()
    data = campaign_data(campaign.tariff, other, route="mobile")  # a company cannot choose
    assert logged_in.post(url("campaign-new", company), data).status_code == 302
    created = company.c2c_campaigns.get(name="Summer")
    assert (created.server, created.route) == (campaign.server, campaign.route)


def test_a_first_campaign_needs_the_operator_when_the_platform_has_several_servers(logged_in, company):
    PbxServerFactory(), PbxServerFactory()
    tariff = TariffFactory(company=company)
    response = logged_in.post(url("campaign-new", company), campaign_data(tariff, PbxServerFactory()))
    assert response.status_code == 400 and "ask your operator" in response.content.decode()
    assert not company.c2c_campaigns.exists()


def test_campaign_with_another_company_tariff_is_refused(logged_in, company, campaign):
    data = campaign_data(TariffFactory(), campaign.server)
    assert logged_in.post(url("campaign-new", company), data).status_code == 400
    assert not company.c2c_campaigns.filter(name="Summer").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"name": "Spring sale"},  # taken
        {"ring_timeout": 1000},
        {"redial_count": -1},
        {"default_country": "france"},
        {"message_sound": "../../etc/passwd;x"},
        {"visitor_caller_id": "x\r\nAction: Originate"},
    ],
)
def test_bad_campaign_values_are_form_errors(logged_in, company, campaign, changes):
    data = campaign_data(campaign.tariff, campaign.server, **changes)
    assert logged_in.post(url("campaign-new", company), data).status_code == 400
    assert company.c2c_campaigns.count() == 1


@pytest.mark.parametrize("field", ["visitor_caller_id", "company_caller_id"])
def test_a_caller_id_with_a_comma_is_refused_with_its_reason(logged_in, company, campaign, field):
    # Every try would fail in the Originate's check, counted against the company.
    data = campaign_data(campaign.tariff, campaign.server, **{field: '"Doe, John" <0123456789>'})
    response = logged_in.post(url("campaign-new", company), data)
    assert response.status_code == 400 and "No commas" in response.content.decode()
    assert company.c2c_campaigns.count() == 1


WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


def test_a_campaign_message_is_uploaded_as_a_wav_file(logged_in, company, campaign, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    data = campaign_data(campaign.tariff, campaign.server, message_file=SimpleUploadedFile("hello.wav", WAV))
    assert logged_in.post(url("campaign-new", company), data).status_code == 302
    created = company.c2c_campaigns.get(name="Summer")
    assert created.message_file.name.startswith("click2call/messages/hello")
    assert (tmp_path / created.message_file.name).read_bytes() == WAV


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("hello.wav", b"ID3\x03 an mp3 named wav" + bytes(20), "A WAV audio file"),
        ("hello.mp3", WAV, "File extension"),
        ("long.wav", WAV + bytes(5 * 1024 * 1024), "At most 5 MB"),
    ],
)
def test_a_campaign_message_that_is_no_wav_file_is_refused(
    logged_in, company, campaign, settings, tmp_path, name, content, error
):
    settings.MEDIA_ROOT = tmp_path
    data = campaign_data(campaign.tariff, campaign.server, message_file=SimpleUploadedFile(name, content))
    response = logged_in.post(url("campaign-new", company), data)
    assert response.status_code == 400 and error in response.content.decode()
    assert company.c2c_campaigns.count() == 1 and not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", HOSTILE_STRINGS)
def test_hostile_campaign_names_never_500(logged_in, company, campaign, name):
    data = campaign_data(campaign.tariff, campaign.server, name=HOSTILE_STRINGS[name])
    assert logged_in.post(url("campaign-new", company), data).status_code in (302, 400)


def test_campaign_is_edited(logged_in, company, campaign):
    data = campaign_data(campaign.tariff, campaign.server, name="Spring sale", redial_count=5)
    assert logged_in.post(url("campaign-edit", company, campaign.pk), data).status_code == 302
    campaign.refresh_from_db()
    assert campaign.redial_count == 5


def test_campaign_with_requests_is_deactivated_not_deleted(logged_in, company, campaign):
    CallRequestFactory(campaign=campaign)
    logged_in.post(url("campaign-delete", company, campaign.pk))
    assert Campaign.objects.filter(pk=campaign.pk).exists()
    logged_in.post(url("campaign-deactivate", company, campaign.pk))
    campaign.refresh_from_db()
    assert campaign.active is False


def test_unused_campaign_is_deleted(logged_in, company, campaign):
    assert logged_in.post(url("campaign-delete", company, campaign.pk)).status_code == 302
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


def test_public_key_rotation_changes_the_snippet(logged_in, company, campaign):
    old = campaign.public_key
    logged_in.post(url("campaign-public-key", company, campaign.pk))
    campaign.refresh_from_db()
    assert campaign.public_key != old and campaign.public_key.startswith("c2c_pk_")
    body = logged_in.get(url("campaign", company, campaign.pk)).content.decode()
    assert campaign.public_key in body and old not in body


def test_secret_key_is_shown_once_then_only_its_hint(logged_in, company, campaign):
    response = logged_in.post(url("campaign-secret-key", company, campaign.pk))
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    body = response.content.decode()
    campaign.refresh_from_db()
    start = body.index('id="secret-key">') + len('id="secret-key">')
    key = body[start : body.index("<", start)]
    assert campaign.secret_key_matches(key)
    assert campaign.secret_key_hint == key[:8]
    again = logged_in.get(url("campaign", company, campaign.pk)).content.decode()
    assert key not in again and f"{key[:8]}…" in again


def test_operators_are_set_in_order(logged_in, company, campaign):
    anna, bob, carl = (OperatorFactory(company=company, name=name) for name in ("Anna", "Bob", "Carl"))
    data = {f"op_{bob.pk}": "1", f"op_{anna.pk}": "2"}
    assert logged_in.post(url("campaign-operators", company, campaign.pk), data).status_code == 302
    links = CampaignOperator.objects.filter(campaign=campaign).order_by("position")
    assert [(link.operator, link.position) for link in links] == [(bob, 0), (anna, 1)]
    # Another company's operator cannot be put on the campaign: its box is not on the form.
    foreign = OperatorFactory()
    logged_in.post(url("campaign-operators", company, campaign.pk), {f"op_{foreign.pk}": "1"})
    assert not CampaignOperator.objects.filter(operator=foreign).exists()
    assert (
        logged_in.post(url("campaign-operators", company, campaign.pk), {f"op_{carl.pk}": "x"}).status_code
        == 400
    )


def test_operators_a_campaign_cannot_ring_are_refused_checked_once(monkeypatch, logged_in, company, campaign):
    from click2call.services import campaigns

    checks = []
    real = campaigns.operator_number_check
    monkeypatch.setattr(campaigns, "operator_number_check", lambda **kw: checks.append(kw) or real(**kw))
    anna = OperatorFactory(company=company, name="Anna")
    assert (
        logged_in.post(url("campaign-operators", company, campaign.pk), {f"op_{anna.pk}": "1"}).status_code
        == 302
    )
    assert len(checks) == 1  # once a save, by the service (not by the form, then the service again)
    BlockedPrefixFactory(company=company, prefix="3361234")
    response = logged_in.post(url("campaign-operators", company, campaign.pk), {f"op_{anna.pk}": "1"})
    assert response.status_code == 400
    assert "Anna (+33612345201) cannot be rung by Spring sale" in response.content.decode()


def test_an_operator_number_is_refused_when_blocked_checked_once(monkeypatch, logged_in, company):
    from click2call.services import campaigns

    checks = []
    real = campaigns.blocked_prefix_find
    monkeypatch.setattr(campaigns, "blocked_prefix_find", lambda **kw: checks.append(kw) or real(**kw))
    anna = {"name": "Anna", "number": "+33 6 12 34 52 01"}
    assert logged_in.post(url("operators", company), anna).status_code == 302
    assert len(checks) == 1
    BlockedPrefixFactory(company=company, prefix="3361234")
    response = logged_in.post(url("operators", company), {"name": "Bob", "number": "+33 6 12 34 52 02"})
    assert response.status_code == 400
    assert "Calls to +33612345202 are blocked (your prefix 3361234)." in response.content.decode()
    assert list(company.c2c_operators.values_list("name", flat=True)) == ["Anna"]


# Operators, tariffs and rates, blocked prefixes


def test_operator_needs_a_number_or_a_dial_string(logged_in, company):
    anna = {"name": "Anna", "number": "+33 6 12 34 52 01"}
    assert logged_in.post(url("operators", company), anna).status_code == 302
    assert logged_in.post(url("operators", company), {"name": "Bob"}).status_code == 400
    bad = {"name": "Carl", "dial_string": "PJSIP/a,PJSIP/b"}
    assert logged_in.post(url("operators", company), bad).status_code == 400
    assert list(company.c2c_operators.values_list("name", flat=True)) == ["Anna"]


def test_rates_are_searched_by_prefix(logged_in, company):
    tariff = TariffFactory(company=company)
    for prefix, destination in [("33", "France"), ("336", "France mobile"), ("3361", "Orange"), ("44", "UK")]:
        RateFactory(tariff=tariff, prefix=prefix, destination=destination)
    body = logged_in.get(url("tariff", company, tariff.pk), {"prefix": "336"}).content.decode()
    assert "France mobile" in body and "Orange" in body and "France<" in body
    assert "UK" not in body
    assert logged_in.get(url("tariff", company, tariff.pk), {"prefix": "abc"}).status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"prefix": "+33", "destination": "France", "price": "0.1"},
        {"prefix": "33", "destination": "France", "price": "-1"},
        {"prefix": "33", "destination": "", "price": "0.1"},
        {"prefix": "1" * 16, "destination": "x", "price": "0.1"},
        {"prefix": "33", "destination": "France", "price": "NaN"},
    ],
)
def test_bad_rates_are_form_errors(logged_in, company, data):
    tariff = TariffFactory(company=company)
    assert logged_in.post(url("tariff", company, tariff.pk), data).status_code == 400
    assert not tariff.rates.exists()


def test_rate_is_added_then_changed(logged_in, company):
    tariff = TariffFactory(company=company)
    data = {"prefix": "33", "destination": "France", "price": "0.012"}
    assert logged_in.post(url("tariff", company, tariff.pk), data).status_code == 302
    assert Rate.objects.get(tariff=tariff).price == Decimal("0.012")
    data = {"prefix": "33", "destination": "France fixed", "price": "0.02"}
    assert logged_in.post(url("tariff", company, tariff.pk), data).status_code == 302
    rate = Rate.objects.get(tariff=tariff)
    assert (rate.destination, rate.price) == ("France fixed", Decimal("0.02"))


def test_tariff_names_are_unique_per_company(logged_in, company):
    assert logged_in.post(url("tariffs", company), {"name": "Retail"}).status_code == 302
    assert logged_in.post(url("tariffs", company), {"name": "Retail"}).status_code == 400
    assert company.c2c_tariffs.count() == 1


def test_blocked_prefix_is_added_and_removed(logged_in, company):
    assert (
        logged_in.post(url("blocked", company), {"prefix": "33899", "reason": "premium"}).status_code == 302
    )
    assert logged_in.post(url("blocked", company), {"prefix": "33899"}).status_code == 400  # twice
    assert logged_in.post(url("blocked", company), {"prefix": "+33 8"}).status_code == 400
    blocked = BlockedPrefix.objects.get(company=company)
    assert logged_in.post(url("blocked-delete", company, blocked.pk)).status_code == 302
    assert not BlockedPrefix.objects.exists()


# Tenancy: every page and action, as its owner and as another company's user.


def tenancy_cases(company, user):
    campaign = CampaignFactory(company=company)
    call = CallRequestFactory(campaign=campaign)
    kind = CommentTypeFactory(company=company)
    operator = OperatorFactory(company=company)
    blocked = BlockedPrefixFactory(company=company)
    return [
        ("get", url("calls", company)),
        ("get", url("call", company, call.pk)),
        ("get", url("comment-types", company)),
        ("get", url("comment-type", company, kind.pk)),
        ("get", url("campaigns", company)),
        ("get", url("campaign", company, campaign.pk)),
        ("get", url("campaign-edit", company, campaign.pk)),
        ("post", url("campaign-public-key", company, campaign.pk)),
        ("post", url("campaign-secret-key", company, campaign.pk)),
        ("post", url("campaign-deactivate", company, campaign.pk)),
        ("post", url("campaign-operators", company, campaign.pk)),
        ("get", url("operators", company)),
        ("get", url("operator", company, operator.pk)),
        ("get", url("tariffs", company)),
        ("get", url("tariff", company, campaign.tariff_id)),
        ("get", url("tariff-export", company, campaign.tariff_id)),
        ("get", url("blocked", company)),
        ("post", url("blocked-delete", company, blocked.pk)),
    ]


def test_every_page_is_the_company_own(client, company, company_user):
    for method, page_url in tenancy_cases(company, company_user):
        assert_other_company_gets_404(client, page_url, owner=company_user, method=method, data=None)


def test_other_company_objects_are_404_under_own_slug(logged_in, company):
    other = UserFactory().company
    campaign = CampaignFactory(company=other)
    call = CallRequestFactory(campaign=campaign)
    for page_url in [
        url("call", company, call.pk),
        url("campaign", company, campaign.pk),
        url("tariff", company, campaign.tariff_id),
        url("comment-type", company, CommentTypeFactory(company=other).pk),
        url("operator", company, OperatorFactory(company=other).pk),
    ]:
        assert logged_in.get(page_url).status_code == 404, page_url
    assert (
        logged_in.post(url("blocked-delete", company, BlockedPrefixFactory(company=other).pk)).status_code
        == 404
    )
    assert logged_in.post(url("campaign-secret-key", company, campaign.pk)).status_code == 404
    assert Campaign.objects.get(pk=campaign.pk).secret_key_matches(campaign.secret_key)


def test_anonymous_is_sent_to_login(client, company):
    response = client.get(url("calls", company))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_times_are_in_the_company_zone(logged_in, company, campaign):
    call = CallRequestFactory(campaign=campaign)
    CallRequest.objects.filter(pk=call.pk).update(created_at=dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC))
    assert "2026-11-23 10:00:00 CET" in logged_in.get(url("calls", company)).content.decode()
    assert timezone.now()
