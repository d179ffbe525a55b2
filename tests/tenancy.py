"""The one tenancy check every portal and API view goes through.

`assert_other_company_gets_404(client, url, owner=..., outsider=...)` proves
both halves: the owner (a user of the company the URL's object belongs to)
is served, and a user of another company gets 404 for the very same URL.
"""

from tests.factories import UserFactory

ALLOWED_FOR_OWNER = {200, 201, 202, 204, 301, 302, 303}


def assert_other_company_gets_404(client, url, *, owner, outsider=None, method="get", data=None):
    outsider = outsider or UserFactory()
    assert outsider.company_id != owner.company_id, "the outsider must belong to another company"
    send = getattr(client, method)
    kwargs = {} if data is None else {"data": data, "content_type": "application/json"}

    client.force_login(owner)
    response = send(url, **kwargs)
    assert response.status_code in ALLOWED_FOR_OWNER, (
        f"{method.upper()} {url} as its owner answered {response.status_code}, expected success"
    )
    client.logout()

    client.force_login(outsider)
    response = send(url, **kwargs)
    assert response.status_code == 404, (
        f"{method.upper()} {url} as a user of another company answered {response.status_code}, expected 404"
    )
    client.logout()
