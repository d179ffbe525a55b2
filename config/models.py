"""Models the apps share: abstract only, no table of their own."""

from django.db import models


class OutboxMessage(models.Model):
    """A mail written before it is sent (config.outbox): when it was sent, how often it was tried,
    the last error, and when it may be tried again. Each app adds `state` and `to`."""

    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    # A worker claims a pending mail by moving this forward (a conditional update) before it sends:
    # no other worker sends it meanwhile; after a failure it is the pause before the next try.
    next_try_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="not tried again before this time (empty: now)"
    )

    class Meta:
        abstract = True
