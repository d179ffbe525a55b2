"""The staff admin of click2call: every model listed and searched, requests and attempts read-only
evidence, rates imported into the tariff the import form names."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from click2call.models import CallAttempt, CallRequest, RateImport
from click2call.tasks import rate_import_run
from tests.click2call.factories import (
    BlockedPrefixFactory,
    CallAttemptFactory,
    CallRequestFactory,
    CampaignFactory,
    CommentTypeFactory,
    OperatorFactory,
    RateFactory,
    TariffFactory,
)

pytestmark = pytest.mark.django_db

MODELS = [
    "operator",
    "campaign",
    "tariff",
    "rate",
    "blockedprefix",
    "callrequest",
    "callattempt",
    "commenttype",
    "callcomment",
]


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_answers_and_searches(admin_client, model):
    attempt = CallAttemptFactory()
    OperatorFactory(company=attempt.request.company)
    RateFactory(tariff=attempt.request.campaign.tariff)
    BlockedPrefixFactory(company=attempt.request.company)
    CommentTypeFactory(company=attempt.request.company)
    changelist = reverse(f"admin:click2call_{model}_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "=+33"}).status_code == 200


def test_call_request_is_found_by_number(admin_client):
    call = CallRequestFactory(number="+33612345678")
    CallRequestFactory(number="+33698765432")
    body = admin_client.get(reverse("admin:click2call_callrequest_changelist"), {"q": "+33612345678"})
    assert "+33612345678" in body.content.decode() and "+33698765432" not in body.content.decode()
    assert admin_client.get(reverse("admin:click2call_callrequest_change", args=[call.pk])).status_code == 200


def test_requests_and_attempts_are_read_only_evidence(admin_client):
    attempt = CallAttemptFactory(request__status="FAILED_USER", status="FAILED_USER")
    assert admin_client.get(reverse("admin:click2call_callrequest_add")).status_code == 403
    assert admin_client.get(reverse("admin:click2call_callattempt_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:click2call_callattempt_delete", args=[attempt.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    admin_client.post(
        reverse("admin:click2call_callrequest_change", args=[attempt.request.pk]), {"status": "COMPLETED"}
    )
    attempt.request.refresh_from_db()
    assert attempt.request.status == CallRequest.Status.FAILED_USER
    assert CallAttempt.objects.filter(pk=attempt.pk).exists()


def test_campaign_with_requests_cannot_be_deleted(admin_client):
    call = CallRequestFactory()
    url = reverse("admin:click2call_campaign_delete", args=[call.campaign.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert call.campaign.__class__.objects.filter(pk=call.campaign.pk).exists()


def rates_import(admin_client, tariff, body: bytes):
    """The admin's import form, a CSV into `tariff`, then its job run as the worker runs it: the job's
    page, where the admin was sent."""
    response = admin_client.post(
        reverse("admin:click2call_rate_import"),
        {"tariff": tariff.pk, "file": SimpleUploadedFile("r.csv", body)},
    )
    if response.status_code != 302:
        return response
    job = RateImport.objects.get(tariff=tariff)
    assert response["Location"] == reverse("admin:click2call_rateimport_change", args=[job.pk])
    rate_import_run(job.pk)
    return admin_client.get(response["Location"])


def test_rates_are_imported_into_the_chosen_tariff(admin_client):
    tariff, other = TariffFactory(), TariffFactory()
    RateFactory(tariff=tariff, prefix="33", destination="France", price="0.01")
    changelist = admin_client.get(reverse("admin:click2call_rate_changelist")).content.decode()
    assert 'href="/admin/click2call/rate/import/"' in changelist
    assert "/admin/click2call/rate/export/" in changelist
    body = b"prefix,destination,price\n33,France fixed,0.02\n336,France mobile,0.03\n"
    response = rates_import(admin_client, tariff, body)
    assert response.status_code == 200
    assert "1 new, 1 changed" in response.content.decode()
    assert dict(tariff.rates.values_list("prefix", "price")) == {
        "33": Decimal("0.02"),
        "336": Decimal("0.03"),
    }
    assert not other.rates.exists()


def test_rate_import_with_a_bad_row_is_shown_and_changes_nothing(admin_client):
    tariff = TariffFactory()
    body = b"prefix,destination,price\n33,France,0.02\n3x,Bad,0.03\n"
    response = rates_import(admin_client, tariff, body)
    assert response.status_code == 200
    assert "row 3, prefix: “3x” is not a prefix (1 to 15 digits)." in response.content.decode()
    assert not tariff.rates.exists()


def test_rate_import_of_a_file_that_is_no_table_is_a_form_error(admin_client):
    tariff = TariffFactory()
    response = rates_import(admin_client, tariff, b"\x89PNG\r\n\x1a\n\x00\x00")
    assert response.status_code == 400
    assert "This is not a CSV file (it holds binary data)" in response.content.decode()
    assert not RateImport.objects.exists()


def test_secret_key_action_shows_the_key_once(admin_client):
    call = CallRequestFactory()
    response = admin_client.post(
        reverse("admin:click2call_campaign_changelist"),
        {"action": "rotate_secret_key", "_selected_action": [call.campaign.pk]},
        follow=True,
    )
    call.campaign.refresh_from_db()
    text = response.content.decode()
    start = text.index("shown only this once: ") + len("shown only this once: ")
    key = text[start : text.index("<", start)].strip()
    assert call.campaign.secret_key_matches(key)


def campaign_change(admin_client, campaign, *, operators=(), **changes):
    data = {
        "name": campaign.name,
        "company": campaign.company_id,
        "server": campaign.server_id,
        "route": campaign.route,
        "tariff": campaign.tariff_id,
        "ringing": campaign.ringing,
        "first_party": campaign.first_party,
        "message_sound": campaign.message_sound,
        "ring_timeout": campaign.ring_timeout,
        "redial_count": campaign.redial_count,
        "redial_pause": campaign.redial_pause,
        "default_country": campaign.default_country,
        "reminder_minutes": campaign.reminder_minutes,
        "price_per_completed": campaign.price_per_completed,
        "active": "on",
        "campaignoperator_set-TOTAL_FORMS": len(operators),
        "campaignoperator_set-INITIAL_FORMS": 0,
        **changes,
    }
    for n, operator in enumerate(operators):
        data |= {f"campaignoperator_set-{n}-operator": operator.pk, f"campaignoperator_set-{n}-position": n}
    return admin_client.post(reverse("admin:click2call_campaign_change", args=[campaign.pk]), data)


def test_the_admin_saves_a_campaign_with_its_company_tariff_and_operators(admin_client):
    campaign = CampaignFactory(with_operator=False)
    operator = OperatorFactory(company=campaign.company)
    assert campaign_change(admin_client, campaign, operators=[operator], redial_count=4).status_code == 302
    campaign.refresh_from_db()
    assert campaign.redial_count == 4 and list(campaign.operators.all()) == [operator]


def test_the_admin_refuses_another_company_tariff_or_operators_on_a_campaign(admin_client):
    campaign = CampaignFactory(with_operator=False)
    response = campaign_change(admin_client, campaign, tariff=TariffFactory().pk)
    assert (
        response.status_code == 200
        and "A tariff of the campaign&#x27;s company." in response.content.decode()
    )
    response = campaign_change(admin_client, campaign, operators=[OperatorFactory()])
    assert (
        response.status_code == 200
        and "An operator of the campaign&#x27;s company." in response.content.decode()
    )
    campaign.refresh_from_db()
    assert campaign.tariff.company == campaign.company and not campaign.operators.exists()


def operator_change(admin_client, operator, **changes):
    data = {
        "company": operator.company_id,
        "name": operator.name,
        "number": operator.number,
        "dial_string": operator.dial_string,
        "active": "on",
    } | changes
    return admin_client.post(reverse("admin:click2call_operator_change", args=[operator.pk]), data)


def test_the_admin_checks_an_operator_number_as_the_portal_does(admin_client):
    campaign = CampaignFactory(with_operator=False)
    operator = OperatorFactory(company=campaign.company, name="Anna")
    campaign.operators.add(operator, through_defaults={"position": 0})
    BlockedPrefixFactory(company=campaign.company, prefix="3361234")
    response = operator_change(admin_client, operator, number="+33612345202")
    assert response.status_code == 200
    assert "Calls to +33612345202 are blocked (your prefix 3361234)." in response.content.decode()
    # A number the tariff of a campaign ringing the operator does not rate (a UK mobile).
    response = operator_change(admin_client, operator, number="+447911123456")
    assert response.status_code == 200 and "cannot be rung by" in response.content.decode()
    operator.refresh_from_db()
    assert operator.number == "+33612345201"


def test_the_admin_sets_a_dial_string_without_the_number_checks(admin_client):
    operator = OperatorFactory(name="Reception")
    BlockedPrefixFactory(company=operator.company, prefix="33")
    response = operator_change(admin_client, operator, number="", dial_string="PJSIP/reception")
    assert response.status_code == 302
    operator.refresh_from_db()
    assert (operator.number, operator.dial_string) == ("", "PJSIP/reception")
