import pytest

from tests.factories import CompanyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_company_user_logs_in_and_reaches_the_portal(live_server, page, screenshot_dir):
    company = CompanyFactory(name="Acme Repairs", slug="acme")
    UserFactory(company=company, username="alice")

    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-word-123")
    page.click("button[type=submit]")

    page.wait_for_url(f"{live_server.url}/portal/acme/")
    assert page.locator("h1").inner_text() == "Acme Repairs"
    assert page.locator(".whoami").inner_text() == "alice · Acme Repairs"
    page.screenshot(path=screenshot_dir / "portal-home.png", full_page=True)

    # On a phone the navigation folds behind a menu button.
    page.set_viewport_size({"width": 390, "height": 760})
    assert not page.locator("nav.nav").is_visible()
    page.click("label.nav-toggle-label")
    assert page.locator("nav.nav").is_visible()
    page.screenshot(path=screenshot_dir / "portal-home-phone.png", full_page=True)

    page.click("text=Log out")
    page.wait_for_url(f"{live_server.url}/login/")


def test_wrong_password_shows_an_error(live_server, page):
    UserFactory(username="bob")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "bob")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "correct username and password" in page.locator(".errors").inner_text()
