"""Click2call's Celery tasks: thin, they take ids and call click2call.services.dialing."""

from celery import shared_task

from click2call.services import dialing


@shared_task(name="click2call.dial_attempt", acks_late=True)
def dial_attempt(request_id: int):
    """The next automatic try of a request, if it is due and still open."""
    dialing.attempt_dial_next(request_id=request_id)
