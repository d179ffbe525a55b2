"""The embedded cache (no REDIS_URL): Django's file cache, shared by every process of `make run`,
bounded, with a cull that does not list the whole directory on every write."""

import contextlib
import math
import os
import pickle
import tempfile
import time
import zlib

from django.core.cache.backends.filebased import FileBasedCache
from django.core.files import locks


class FileCache(FileBasedCache):
    """Django's FileBasedCache lists its whole directory on every set (each throttled banner request
    cost O(keys)), and its cull drops random entries, live throttle counts among them.

    Here a process lists the directory only when its own count of the entries (as of its last
    listing, plus what it wrote since) reaches MAX_ENTRIES, or CULL_SECONDS after its last listing,
    to drop what expired: the directory holds MAX_ENTRIES, give or take what the other processes
    wrote since this one last looked. A cull removes the expired entries first, then, if the rest
    still reach MAX_ENTRIES, those that expire soonest (the throttle windows nearest their end
    matter least) down to MAX_ENTRIES less a CULL_FREQUENCY-th, so a listing is paid once per
    MAX_ENTRIES / CULL_FREQUENCY writes at most."""

    CULL_SECONDS = 60
    # Per process: class attributes, as Django makes a cache object per thread.
    _next_cull = 0.0
    _entries = 0  # entries as of the last listing, plus the writes since

    def _cull(self):
        FileCache._entries += 1  # the entry `set` writes next
        now = time.monotonic()
        if now < FileCache._next_cull and FileCache._entries < self._max_entries:
            return
        FileCache._next_cull = now + self.CULL_SECONDS
        wall = time.time()
        live = []
        for name in self._list_cache_files():
            expiry = self._expiry(name)
            if expiry is None:  # removed by another process meanwhile
                continue
            if expiry < wall:
                self._delete(name)
            else:
                live.append((expiry, name))
        if len(live) >= self._max_entries:
            keep = self._max_entries - max(1, self._max_entries // max(self._cull_frequency, 1))
            live.sort()
            for _, name in live[: len(live) - keep]:
                self._delete(name)
            live = live[len(live) - keep :]
        FileCache._entries = len(live) + 1

    def incr(self, key, delta=1, version=None):
        """Django's incr is a get and a set, and the set gives the key the default timeout (300 s):
        an hour's throttle window ended after five minutes while Retry-After promised the hour.
        Here the count changes under a lock and keeps its expiry; the new file replaces the old
        whole (readers never see half of it), and a writer that finds the file replaced meanwhile
        reads it again."""
        fname = self._key_to_file(key, version)
        while (value := self._incr_in_place(fname, key, delta)) is None:
            pass  # the file was replaced while this process waited for its lock
        return value

    def _incr_in_place(self, fname: str, key: str, delta: int):
        try:
            with open(fname, "rb") as entry:
                locks.lock(entry, locks.LOCK_EX)
                try:
                    with contextlib.suppress(FileNotFoundError):
                        if os.fstat(entry.fileno()).st_ino != os.stat(fname).st_ino:
                            return None
                    try:
                        expiry = pickle.load(entry)
                        value = pickle.loads(zlib.decompress(entry.read()))
                    except (EOFError, pickle.UnpicklingError, zlib.error):
                        expiry, value = 0, None
                    if expiry is not None and expiry < time.time():
                        raise ValueError(f"Key '{key}' not found")
                    value += delta
                    fd, tmp_path = tempfile.mkstemp(dir=self._dir)
                    with open(fd, "wb") as new:
                        new.write(pickle.dumps(expiry, self.pickle_protocol))
                        new.write(zlib.compress(pickle.dumps(value, self.pickle_protocol)))
                    os.replace(tmp_path, fname)
                    return value
                finally:
                    locks.unlock(entry)
        except FileNotFoundError:
            raise ValueError(f"Key '{key}' not found") from None

    @staticmethod
    def _expiry(name: str) -> float | None:
        """When the entry expires (inf: never; 0: unreadable, so expired), None when it is gone."""
        with contextlib.suppress(FileNotFoundError), open(name, "rb") as entry:
            try:
                expiry = pickle.load(entry)
            except (EOFError, pickle.UnpicklingError):
                return 0.0
            return math.inf if expiry is None else expiry
        return None
