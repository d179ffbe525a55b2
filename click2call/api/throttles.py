"""The banner's abuse control: requests per campaign from one client address, and for one
called number, counted in fixed windows on the shared cache (Redis in production), so every
web process sees the same counts.

A window's count is one key, not DRF's list of request times per client, and the view counts
both throttles' windows together (`window_counts`): on Redis one round trip for both.
"""

import dataclasses
import hashlib
import time
import weakref

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from accounts.services import client_address
from click2call.services.rating import NumberRefused, number_normalize

# Counts every window in one atomic round trip; a window's key expires with its window.
COUNT_WINDOWS = """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = redis.call('INCR', key)
    if counts[i] == 1 then redis.call('EXPIRE', key, ARGV[i]) end
end
return counts
"""
# Per Redis cache client: Django's makes a redis-py client per command, the script keeps one.
_count_scripts = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class Window:
    key: str
    period: int
    limit: int
    wait: float  # seconds until the window ends


def window_counts(windows: list[Window]) -> list[int]:
    """Each window's count with this request in it."""
    if not windows:
        return []
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        script = _count_scripts.get(backend._cache)
        if script is None:
            script = _count_scripts[backend._cache] = backend._cache.get_client(write=True).register_script(
                COUNT_WINDOWS
            )
        keys = [backend.make_and_validate_key(window.key) for window in windows]
        return script(keys=keys, args=[window.period for window in windows])
    return [_count(window) for window in windows]


def _count(window: Window) -> int:
    """Elsewhere (the embedded file cache): most subjects post once (a visitor, a number), so
    `add` opens their window in one operation; only a repeat pays the second, `incr`."""
    if cache.add(window.key, 1, timeout=window.period):
        return 1
    try:
        return cache.incr(window.key)
    except ValueError:  # the window's key expired between add and incr: a new window
        cache.set(window.key, 1, timeout=window.period)
        return 1


class CampaignWindowThrottle(BaseThrottle):
    scope = ""
    setting = ""

    def subject(self, request, campaign) -> str | None:
        raise NotImplementedError

    def window(self, request) -> Window | None:
        """The window this request counts in, or None when it is not counted."""
        campaign = request.auth
        if campaign is None:  # a preflight: nothing is created
            return None
        subject = self.subject(request, campaign)
        if subject is None:
            return None
        limit, period = getattr(settings, self.setting)
        now = time.time()
        window = int(now // period)
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        key = f"c2c-throttle:{self.scope}:{campaign.pk}:{digest}:{period}:{window}"
        return Window(key=key, period=period, limit=limit, wait=(window + 1) * period - now)

    def allow_request(self, request, view):
        window = self.window(request)
        self.wait_seconds = window.wait if window else None
        return window is None or window_counts([window])[0] <= window.limit

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
