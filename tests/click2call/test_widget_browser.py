"""The widget in a browser: the demo page, a visitor's request, its progress polled live."""

import pytest

from click2call.models import CallAttempt, CallRequest
from tests.click2call.factories import CallAttemptFactory, CampaignFactory
from tests.factories import CompanyFactory
from tests.telephony.factories import CallRecordFactory

pytestmark = pytest.mark.browser


def test_a_visitor_asks_for_a_call_and_sees_it_coming(page, live_server, settings, screenshot_dir):
    settings.DEBUG = True  # the demo page is a development aid
    campaign = CampaignFactory(company=CompanyFactory(slug="demo"), allowed_origins=live_server.url)
    page.goto(f"{live_server.url}/c2c/demo/")
    widget = page.locator(".c2c-widget")

    widget.get_by_role("button", name="Call me").click()
    assert widget.get_by_role("alert").inner_text() == "Enter your phone number."
    widget.get_by_label("Your phone number").fill("12")
    widget.get_by_label("I agree to be called").check()
    widget.get_by_role("button", name="Call me").click()
    page.wait_for_function(
        "() => document.querySelector('.c2c-widget').shadowRoot.querySelector('.error').textContent"
    )
    assert "not a valid phone number" in widget.get_by_role("alert").inner_text()

    widget.get_by_label("Your phone number").fill("06 12 34 56 78")
    widget.get_by_label("Your name (optional)").fill("<img src=x onerror=alert(1)>")
    widget.get_by_role("button", name="Call me").click()
    status = widget.get_by_role("status")
    status.wait_for()
    assert status.inner_text() == "Your request is waiting for a line…"
    request = CallRequest.objects.get()
    assert (request.campaign, request.number, request.name) == (
        campaign,
        "+33612345678",
        "<img src=x onerror=alert(1)>",
    )

    # What the dialing task and the pbx process do: a try, its first leg ringing the visitor.
    CallAttemptFactory(request=request, seq=1, channel_id="c2c-browser-1", status=CallAttempt.Status.DIALING)
    CallRecordFactory(uniqueid="c2c-browser-1", linkedid="c2c-browser-1", state="ringing")
    CallRequest.objects.filter(pk=request.pk).update(status=CallRequest.Status.DIALING, tries=1)
    page.wait_for_function(
        "() => document.querySelector('.c2c-widget').shadowRoot.querySelector('[role=status]')"
        ".dataset.progress === 'calling you'",
        timeout=5000,
    )
    assert status.inner_text() == "Calling you now…"
    page.screenshot(path=screenshot_dir / "c2c-widget-calling.png", full_page=True)
