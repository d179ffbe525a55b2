from celery import shared_task

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
