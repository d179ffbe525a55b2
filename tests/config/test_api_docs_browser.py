"""/api/docs/ in a browser: Swagger UI from our own static files lists the operations."""

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_list_the_operations_without_leaving_the_server(live_server, page, screenshot_dir):
    hosts = []
    page.on("request", lambda request: hosts.append(urlsplit(request.url).hostname))

    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".opblock-summary-path", has_text="/api/telephony/calls/").first.wait_for(timeout=10_000)
    page.screenshot(path=screenshot_dir / "api-docs.png", full_page=True)

    # The pushed events say what they answer.
    page.locator(".opblock-summary-path", has_text="/api/telephony/events/").click()
    responses = page.locator(".opblock-post tr.response")
    responses.first.wait_for()
    codes = [row.get_attribute("data-code") for row in responses.all()]
    assert codes == ["202", "400", "401", "413", "415"]
    page.screenshot(path=screenshot_dir / "api-docs-events.png", full_page=True)
    assert hosts and set(hosts) <= {urlsplit(live_server.url).hostname}, set(hosts)
