from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval

from telephony.services import webhooks


@shared_task(
    name="telephony.deliver_webhook",
    bind=True,
    autoretry_for=(webhooks.WebhookTransientError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=webhooks.WEBHOOK_MAX_ATTEMPTS - 1,
)
def deliver_webhook(self, delivery_id: int):
    webhooks.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="telephony.requeue_webhooks")
def requeue_webhooks():
    for delivery_id in webhooks.webhook_deliveries_lost():
        deliver_webhook.delay(delivery_id)


@shared_task(name="telephony.deliver_webhooks")
def deliver_webhooks(delivery_ids: list[int]):
    """A batch's deliveries (one publish from the fold, whatever its size); each that fails for
    now goes on as its own deliver_webhook, at the retry and with the backoff it has reached."""
    outcome = webhooks.webhook_deliveries_attempt(
        delivery_ids=delivery_ids, budget=webhooks.WEBHOOK_BATCH_BUDGET_SECONDS
    )
    for delivery_id, attempts in outcome.retry:
        # Full jitter may draw 0: a receiver that just failed gets at least a second.
        countdown = max(
            1,
            get_exponential_backoff_interval(
                factor=deliver_webhook.retry_backoff,
                retries=attempts - 1,
                maximum=deliver_webhook.retry_backoff_max,
                full_jitter=deliver_webhook.retry_jitter,
            ),
        )
        deliver_webhook.apply_async((delivery_id,), countdown=countdown, retries=attempts)
    for delivery_id in outcome.left:
        deliver_webhook.delay(delivery_id)
