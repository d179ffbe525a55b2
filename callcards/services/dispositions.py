"""A card call's disposition, as the agent set it on the queues' agent page after the call (the
seed's Dispo URL; the minutes were deducted at hang-up already)."""

import datetime as dt
import logging

from callcards.models import CardCall

logger = logging.getLogger(__name__)


def card_call_disposition_set(
    *, call_id: int, company_id: int, agent: str, disposition: str, at: dt.datetime
) -> bool:
    """Record the disposition (and its time) on the company's card call `call_id`, and its agent if
    the call has none yet; a later disposition replaces an earlier one. False when there is no such
    call of that company."""
    calls = CardCall.objects.filter(pk=call_id, company_id=company_id)
    found = calls.update(agent_dispo=disposition[:40], dispo_time=at) == 1
    if not found:
        logger.warning("a disposition for card call %s, no call of company %s", call_id, company_id)
        return False
    calls.filter(agent="").update(agent=agent[:130])
    return True
