"""The widget in a browser, end to end: the demo page on the live server, a visitor's request, the
dialing task run in-process, the real pbx process putting the call through on the simulator, and
the widget polling until the call is over."""

import pytest

from click2call.models import CallRequest
from telephony.models import CallRecord
from tests.click2call.conftest import OPERATOR_TALKS
from tests.factories import CompanyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FINAL = "() => document.querySelector('.c2c-widget')?.shadowRoot.querySelector('[data-final=true]')"


def test_a_visitor_on_the_demo_page_is_called_and_put_through(
    page, live_server, settings, make_campaign, pbx, screenshot_dir
):
    settings.DEBUG = True  # the demo page is a development aid
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the request's dialing task runs in the request
    campaign = make_campaign(
        operators=[OPERATOR_TALKS],
        company=CompanyFactory(slug="demo", name="Demo Bikes"),
        allowed_origins=live_server.url,
    )
    page.set_default_timeout(10_000)
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

    # The simulator's phone 5551010: answers after 1 s and stays on the line.
    widget.get_by_label("Your phone number").fill("06 12 34 50 10")
    widget.get_by_label("Your name (optional)").fill("<img src=x onerror=alert(1)>")
    widget.get_by_role("button", name="Call me").click()
    page.wait_for_function(FINAL, timeout=20_000)
    status = widget.get_by_role("status")
    assert (status.get_attribute("data-progress"), status.inner_text()) == (
        "completed",
        "Call finished. Thank you!",
    )
    page.screenshot(path=screenshot_dir / "c2c-widget-completed.png", full_page=True)

    # The call is over: the visitor may ask again, on the form as they left it.
    widget.get_by_role("button", name="Ask for another call").click()
    assert widget.get_by_label("Your phone number").input_value() == "06 12 34 50 10"
    assert widget.get_by_role("button", name="Call me").is_enabled()
    assert widget.get_by_role("status").count() == 0

    request = CallRequest.objects.get()
    assert (request.campaign, request.number, request.name, request.status) == (
        campaign,
        "+33612345010",
        "<img src=x onerror=alert(1)>",
        "COMPLETED",
    )
    attempt = request.attempts.get()
    assert (attempt.status, attempt.detail) == ("COMPLETED", "bridged")
    legs = CallRecord.objects.filter(app="click2call", app_ref=attempt.app_ref).order_by("started_at", "id")
    assert [(leg.callee, leg.answered_at is not None) for leg in legs] == [
        ("+33612345010", True),
        (OPERATOR_TALKS, True),
    ]
