"""The timers apps set in the pbx process, kept in the database so a restart rebuilds them."""

import datetime as dt

from django.utils import timezone

from telephony.models import AppTimer


def app_timer_set(*, app: str, server_id: int, key: str, seconds: float, payload: dict) -> dt.datetime:
    """Set (or replace) the app's timer `key` on a server; returns when it is due."""
    due = timezone.now() + dt.timedelta(seconds=max(0.0, seconds))
    AppTimer.objects.update_or_create(
        app=app, server_id=server_id, key=key, defaults={"due_at": due, "payload": payload}
    )
    return due


def app_timer_cancel(*, app: str, server_id: int, key: str):
    AppTimer.objects.filter(app=app, server_id=server_id, key=key).delete()


def app_timer_take(*, app: str, server_id: int, key: str, due_at: dt.datetime) -> dict | None:
    """Remove a due timer and return its payload; None when it was cancelled or set anew meanwhile."""
    timer = AppTimer.objects.filter(app=app, server_id=server_id, key=key, due_at=due_at).first()
    if timer is None or AppTimer.objects.filter(pk=timer.pk, due_at=due_at).delete()[0] != 1:
        return None
    return timer.payload


def app_timers_of(*, app: str, server_id: int) -> list[tuple[str, dt.datetime]]:
    return list(AppTimer.objects.filter(app=app, server_id=server_id).values_list("key", "due_at"))
