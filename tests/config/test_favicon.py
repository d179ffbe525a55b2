"""Every page has an icon: the portal links one, and /favicon.ico (what the admin, the API docs and
any browser ask for by default) is served rather than a 404."""

import re

import pytest


@pytest.mark.django_db
def test_favicon_ico_is_served_at_the_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO header


@pytest.mark.django_db
def test_the_portal_links_icons_that_exist(client):
    page = client.get("/login/").text
    icons = re.findall(r'<link rel="(?:icon|apple-touch-icon)" href="([^"]+)"', page)
    assert len(icons) == 3
    for href in icons:
        assert client.get(href).status_code == 200, href
