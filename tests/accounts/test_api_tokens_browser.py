"""A company user makes an API token in the portal, uses it from a program, and revokes it."""

import json
import urllib.error
import urllib.request

import pytest

from accounts.models import ApiToken
from tests.factories import CompanyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def api_status(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["slug"] == "acme"
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_company_user_makes_uses_and_revokes_an_api_token(live_server, page, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme")
    UserFactory(company=company, username="alice")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")
    page.click("nav >> text=API tokens")
    assert "No API token yet." in page.locator("table").inner_text()

    page.fill("#id_name", "CRM sync")
    page.click("text=Create an API token")
    key = page.locator("#new-key").inner_text()
    assert key.startswith("cct_")
    row = page.locator("tbody tr").first.inner_text()
    assert "CRM sync" in row and key[:10] in row and "never" in row and "active" in row
    page.screenshot(path=screenshot_dir / "api-token-created.png", full_page=True)

    assert api_status(f"{live_server.url}/api/company/", key) == 200
    page.goto(page.url)  # a new visit (a reload would post the form again): the key is gone, the use shown
    assert key not in page.content()
    assert "never" not in page.locator("tbody tr").first.inner_text()

    page.set_viewport_size({"width": 375, "height": 800})
    page.fill("#id_name", "Nightly export")
    page.click("text=Create an API token")
    second = page.locator("#new-key")
    # A key shown once wraps inside a phone's screen rather than widening the page.
    assert second.bounding_box()["x"] + second.bounding_box()["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=screenshot_dir / "api-token-phone.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.click("button[aria-label='Revoke CRM sync']")
    assert "“CRM sync” is revoked" in page.locator(".messages").inner_text()
    assert not ApiToken.objects.get(name="CRM sync").active
    assert ApiToken.objects.get(name="Nightly export").active
    assert api_status(f"{live_server.url}/api/company/", key) == 401
    page.screenshot(path=screenshot_dir / "api-token-revoked.png", full_page=True)
