"""Tickets' Celery tasks: thin, they take ids and call tickets.services."""

from celery import shared_task

from tickets.services import messages


@shared_task(name="tickets.send_sms", bind=True, acks_late=True, max_retries=messages.SMS_MAX_ATTEMPTS)
def send_sms(self, message_id: int):
    """One ticket SMS, claimed before it is sent (never twice); a failure that may pass is tried
    again after the pause the service chose, the one it wrote on the row, so the sweep agrees."""
    try:
        messages.ticket_sms_send(message_id=message_id)
    except messages.SmsRetry as exc:
        raise self.retry(countdown=exc.countdown, exc=exc) from exc


@shared_task(name="tickets.send_due_sms")
def send_due_sms():
    """Beat's every minute: queue again the SMS whose task was lost (the broker down at the call's
    end, a retry gone with its worker, a worker dead mid-send)."""
    for message_id in messages.ticket_sms_lost():
        send_sms.delay(message_id)


# -- recordings retention (part api-admin-ops) ------------------------------------------------------


@shared_task(name="tickets.expire_recordings")
def expire_recordings():
    """Beat's every hour: the recordings older than their line's retention deleted, their calls marked."""
    # Imported here so this block stands alone below the SMS tasks (one file, two parts).
    from tickets.services.retention import recordings_expire

    recordings_expire()
