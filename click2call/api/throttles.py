"""The banner's abuse control: requests per campaign from one client address, and for one
called number, counted in fixed windows on the shared cache (Redis in production), so every
web process sees the same counts.

A window's count is one key, not DRF's list of request times per client: a first request in
a window is one cache round trip per throttle (`add`), a repeat two (`add`, `incr`).
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from accounts.services import client_address
from click2call.services.rating import NumberRefused, number_normalize


class CampaignWindowThrottle(BaseThrottle):
    scope = ""
    setting = ""

    def subject(self, request, campaign) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view):
        campaign = request.auth
        if campaign is None:  # a preflight: nothing is created
            return True
        subject = self.subject(request, campaign)
        if subject is None:
            return True
        limit, period = getattr(settings, self.setting)
        now = time.time()
        window = int(now // period)
        self.wait_seconds = (window + 1) * period - now
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        key = f"c2c-throttle:{self.scope}:{campaign.pk}:{digest}:{period}:{window}"
        return self.count(key, period) <= limit

    @staticmethod
    def count(key: str, period: int) -> int:
        """This request's place in its window. Most subjects post once (a visitor, a number):
        `add` opens their window in one round trip; only a repeat pays the second, `incr`."""
        if cache.add(key, 1, timeout=period):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # the window's key expired between add and incr: a new window
            cache.set(key, 1, timeout=period)
            return 1

    def wait(self):
        return self.wait_seconds


class PerAddressThrottle(CampaignWindowThrottle):
    """C2C_THROTTLE_PER_ADDRESS: requests per campaign from one client address (an IPv6 /64)."""

    scope = "address"
    setting = "C2C_THROTTLE_PER_ADDRESS"

    def subject(self, request, campaign):
        return client_address(request)


class PerNumberThrottle(CampaignWindowThrottle):
    """C2C_THROTTLE_PER_NUMBER: requests per campaign for one number, however it is written."""

    scope = "number"
    setting = "C2C_THROTTLE_PER_NUMBER"

    def subject(self, request, campaign):
        data = request.data
        number = data.get("number") if isinstance(data, dict) else None
        if not isinstance(number, str):
            return None
        try:
            return number_normalize(raw=number, country=campaign.default_country)
        except NumberRefused:  # refused by the view anyway; the address throttle counts it
            return None
