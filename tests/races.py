"""A rival write at the worst moment: the dispatcher's (or a visitor's) change run in another thread, on
its own database connection, between a refusal's check and the write it guards."""

import threading

from django.db import connection

# How long the write waits for its rival before going on. A rival that nothing stops finishes well
# within it (the fault); a rival waiting on the write's lock never does, and runs once it commits.
RIVAL_WAIT = 0.5


class Rival:
    """`action` run in a thread of its own when `owner.name` is called, before it goes on."""

    def __init__(self, monkeypatch, owner, name, action):
        self.action, self.result, self.error, self.thread = action, None, None, None
        real = getattr(owner, name)

        def hooked(*args, **kwargs):
            if threading.current_thread() is self.thread:  # the rival's own write goes straight on
                return real(*args, **kwargs)
            self.thread = threading.Thread(target=self.run)
            self.thread.start()
            self.thread.join(timeout=RIVAL_WAIT)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, hooked)

    def run(self):
        try:
            self.result = self.action()
        except Exception as exc:  # the rival's refusal is the test's to read
            self.error = exc
        finally:
            connection.close()

    def done(self):
        assert self.thread is not None, "the rival never ran"
        self.thread.join()
        return self
