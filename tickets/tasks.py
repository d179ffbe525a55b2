"""Tickets' Celery tasks: thin, they take ids and call tickets.services."""

from celery import shared_task

# -- recordings retention (part api-admin-ops) ------------------------------------------------------


@shared_task(name="tickets.expire_recordings")
def expire_recordings():
    """Beat's every hour: the recordings older than their line's retention deleted, their calls marked."""
    # Imported here so this block stands alone below the SMS tasks (one file, two parts).
    from tickets.services.retention import recordings_expire

    recordings_expire()
