"""The embedded cache (no REDIS_URL): Django's file cache, shared by every process of `make run`,
with a cull that no longer lists the whole directory on every write."""

import contextlib
import time

from django.core.cache.backends.filebased import FileBasedCache


class FileCache(FileBasedCache):
    """Django's FileBasedCache culls on every set: a listing of the whole directory, so each
    throttled banner request cost O(keys). Here the cull runs at most every CULL_SECONDS in a
    process, removes the expired entries first (throttle windows, lockouts) and only then, if still
    over MAX_ENTRIES, Django's random cull."""

    CULL_SECONDS = 60
    _next_cull = 0.0  # per process: a class attribute, as Django makes a cache object per thread

    def _cull(self):
        now = time.monotonic()
        if now < FileCache._next_cull:
            return
        FileCache._next_cull = now + self.CULL_SECONDS
        for name in self._list_cache_files():
            with contextlib.suppress(FileNotFoundError), open(name, "rb") as entry:
                self._is_expired(entry)
        super()._cull()
