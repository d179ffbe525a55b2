"""An answered call's disposition: the agent's word on it after the call (the seed's Dispo), kept on
the agent's Offer and announced to the app that sent the caller (queues.signals.queue_call_disposed)."""

import logging
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from queues.models import Offer, validate_disposition
from queues.signals import queue_call_disposed

logger = logging.getLogger(__name__)


class DispositionRefused(ValueError):
    """The offer takes no disposition (not answered, not over yet, another company's)."""


@transaction.atomic
def offer_disposition_set(*, offer: Offer, disposition: str, user: User) -> Offer:
    """Set (or correct) the disposition of an answered call that has ended, on behalf of `user`, and
    announce it once committed. Raises ValidationError for a disposition that is not one, and
    DispositionRefused for an offer that takes none."""
    disposition = disposition.strip()
    field = Offer._meta.get_field("disposition")
    if len(disposition) > field.max_length:
        raise ValidationError(f"At most {field.max_length} characters.", code="max_length")
    validate_disposition(disposition)
    locked = (
        Offer.objects.select_for_update(of=("self",))
        .select_related("member", "agent__company", "queue")
        .get(pk=offer.pk)
    )
    if user.company_id != locked.queue.company_id:
        raise DispositionRefused("This call belongs to another company.")
    if locked.result != Offer.Result.ANSWERED or locked.agent is None:
        raise DispositionRefused("Only a call the agent answered takes a disposition.")
    if locked.ended_at is None:
        raise DispositionRefused("The disposition is set after the call: this one is still on.")
    now = timezone.now()
    locked.disposition, locked.disposition_at, locked.disposition_by = disposition, now, user.get_username()
    locked.save(update_fields=["disposition", "disposition_at", "disposition_by"])
    transaction.on_commit(
        partial(
            _announce,
            source_app=locked.member.source_app,
            source_ref=locked.member.source_ref,
            agent=locked.agent.full_name,
            disposition=disposition,
            at=now,
            company_id=locked.queue.company_id,
            offer_id=locked.pk,
        )
    )
    return locked


def _announce(**fields):
    for receiver, result in queue_call_disposed.send_robust(sender=Offer, **fields):
        if isinstance(result, Exception):
            logger.error(
                "%s failed on the disposition of offer %s (%s %s): %r",
                getattr(receiver, "__qualname__", receiver),
                fields["offer_id"],
                fields["source_app"] or "-",
                fields["source_ref"] or "-",
                result,
                exc_info=result,
            )
