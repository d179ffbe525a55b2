"""Call cards' Celery tasks: thin, they call callcards.services."""

from celery import shared_task

from callcards.services import alerts


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
