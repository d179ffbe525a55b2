"""The operator's admin of push tokens and webhook deliveries."""

import re
import time

import pytest
from django.test import Client

from telephony.models import CallRecord, PushToken, WebhookDelivery

pytestmark = pytest.mark.django_db


def test_webhook_deliveries_cannot_be_added_or_edited_in_the_admin(client, staff_user, company):
    delivery = WebhookDelivery.objects.create(
        company=company, event="hangup", payload={"a": 1}, url="https://x.example/"
    )
    client.force_login(staff_user)
    assert client.get("/admin/telephony/webhookdelivery/add/").status_code == 403
    assert (
        client.post(
            "/admin/telephony/webhookdelivery/add/", {"company": company.pk, "event": "x"}
        ).status_code
        == 403
    )
    url = f"/admin/telephony/webhookdelivery/{delivery.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200  # still there to look at
    assert b'name="_save"' not in page.content
    assert client.post(url, {"event": "forged"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.event == "hangup"


def test_the_push_token_key_the_admin_shows_is_the_key_that_works(client, staff_user, company):
    client.force_login(staff_user)
    add = client.get("/admin/telephony/pushtoken/add/")
    assert add.status_code == 200
    response = client.post(
        "/admin/telephony/pushtoken/add/", {"company": company.pk, "active": "on"}, follow=True
    )
    shown = re.search(r"shown only this once: ([A-Za-z0-9_-]{20,})", response.content.decode()).group(1)
    token = PushToken.objects.get()
    assert shown == token.key
    pushed = Client().post(
        "/api/telephony/events/",
        {"event": "ringing", "sessionid": "s", "eventTime": str(int(time.time()))},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {shown}",
    )
    assert pushed.status_code == 202
    assert CallRecord.objects.get().company == company
    # Shown once: the token's page has only the start of it.
    change = client.get(f"/admin/telephony/pushtoken/{token.pk}/change/").content.decode()
    assert token.key not in change
    assert token.key_hint in change
