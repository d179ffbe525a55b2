"""What callcards hears from the other apps (connected in CallcardsConfig.ready)."""

import logging

from callcards.services.dispositions import card_call_disposition_set

logger = logging.getLogger(__name__)

# The queues' Member.source_app of a caller the dial-in sent to a queue; its source_ref is the
# CardCall's id.
SOURCE_APP = "callcards"


def queue_call_disposed(sender, *, source_app, source_ref, agent, disposition, at, company_id, **kwargs):
    """queues.signals.queue_call_disposed: a card call's agent set its disposition."""
    if source_app != SOURCE_APP:
        return
    # A CardCall's id: ASCII digits that fit the database's 64-bit key.
    if not (source_ref.isascii() and source_ref.isdigit() and len(source_ref) <= 18):
        logger.warning("a card call's disposition with a reference that is no call id: %r", source_ref[:40])
        return
    card_call_disposition_set(
        call_id=int(source_ref), company_id=company_id, agent=agent, disposition=disposition, at=at
    )
