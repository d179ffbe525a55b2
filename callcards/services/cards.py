"""Cards' status changes: every writer goes through `card_status_set`, which follows the table in
callcards.lifecycle and records who and when."""

import datetime as dt

from django.utils import timezone

from callcards import lifecycle
from callcards.lifecycle import Status
from callcards.models import Card, CardEvent

# The seed's who-and-when columns each status change fills.
_STAMPS = {
    Status.ACTIVE: ("activate_user", "activate_time"),
    Status.USED: ("used_user", "used_time"),
    Status.VOID: ("void_user", "void_time"),
}


def card_status_set(
    *, card: Card, to: str, user: str = "", note: str = "", at: dt.datetime | None = None
) -> CardEvent:
    """Move a card (locked by the caller's transaction) to `to`, as the status table allows, and
    record it; `user` empty means the platform (a call's billing). Raises TransitionRefused."""
    if not lifecycle.allowed(card.status, to, card.held_from):
        raise lifecycle.TransitionRefused(card.card_id, card.status, to)
    at = at or timezone.now()
    old = card.status
    fields = ["status", "held_from", "updated_at"]
    card.held_from = old if to == Status.HOLD else ""
    card.status = to
    stamp = _STAMPS.get(to)
    if stamp:
        setattr(card, stamp[0], user)
        setattr(card, stamp[1], at)
        fields += list(stamp)
    card.save(update_fields=fields)
    return CardEvent.objects.create(
        card=card, at=at, user=user, old_status=old, new_status=to, note=note[:200]
    )
