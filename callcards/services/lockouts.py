"""Lockouts lifted by hand (the dial-in sets them, callcards.services.dialin)."""

from django.db import transaction
from django.utils import timezone

from callcards.models import Lockout


def lockout_lift(*, lockout: Lockout, user) -> bool:
    """End the lockout now, recording who lifted it; False when it had ended already (expired or
    lifted meanwhile), which leaves it as it was."""
    now = timezone.now()
    username = user if isinstance(user, str) else user.get_username()
    with transaction.atomic():
        lifted = Lockout.objects.filter(pk=lockout.pk, until__gt=now, lifted_at__isnull=True).update(
            until=now, lifted_by=username, lifted_at=now
        )
    lockout.refresh_from_db()
    return bool(lifted)
