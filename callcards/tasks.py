"""Call cards' Celery tasks: thin, they take ids and call the services."""

from celery import shared_task

from callcards.models import CardBatch
from callcards.services import alerts, cards


@shared_task(name="callcards.generate_batch", acks_late=True, soft_time_limit=60 * 60, time_limit=61 * 60)
def generate_batch(batch_id: int):
    """The batch's cards, made in chunks (a million cards take minutes, longer than a task's
    default limit); a delivery repeated, or after a worker died midway, finishes what is missing."""
    try:
        cards.batch_generate(batch_id=batch_id)
    except CardBatch.DoesNotExist:
        return
    except cards.GenerationStopped:
        return  # the batch says why; generating it again resumes it


@shared_task(name="callcards.low_balance_alerts")
def low_balance_alerts():
    """Beat's every few minutes: tell each holder of a card newly running low, and send whatever
    alert a mail server that was down left pending."""
    alerts.holder_alerts_create()
    alerts.alerts_send_pending()


@shared_task(name="callcards.low_balance_digests")
def low_balance_digests():
    """Beat's every hour: each company's digest of its cards running low, once a day from
    CALLCARDS_DIGEST_HOUR in its own time zone."""
    alerts.digests_create()
    alerts.alerts_send_pending()
