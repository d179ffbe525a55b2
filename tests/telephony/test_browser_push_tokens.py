import pytest

from accounts.models import Company
from telephony.models import PushToken
from tests.factories import CompanyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_company_user_makes_a_push_token_and_rotates_its_secret(live_server, page, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme")
    UserFactory(company=company, username="alice")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")
    page.click("nav >> text=Webhooks")
    page.click("text=Push tokens")
    page.click("text=Create a push token")
    shown = page.locator("#new-key").inner_text()
    assert shown == PushToken.objects.get(company=company).key
    page.screenshot(path=screenshot_dir / "push-token-created.png", full_page=True)

    page.click("text=Revoke")
    assert "is revoked" in page.locator(".messages").inner_text()
    assert shown not in page.content()
    assert not PushToken.objects.get(company=company).active
    page.screenshot(path=screenshot_dir / "push-token-revoked.png", full_page=True)

    page.click("nav >> text=Webhooks")
    page.click("text=Signing secret")
    page.click("text=Rotate the secret")
    assert page.locator("#new-secret").inner_text() == Company.objects.get(pk=company.pk).webhook_secret
    page.screenshot(path=screenshot_dir / "webhook-secret-rotated.png", full_page=True)
