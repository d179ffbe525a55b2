"""The banner's call requests."""

from contextlib import nullcontext

from django.db import IntegrityError, transaction

from click2call.models import CallRequest, Campaign
from click2call.services.rating import NumberRefused, number_normalize, number_rate


def call_request_create(
    *,
    campaign: Campaign,
    number: str,
    consent: bool,
    name: str = "",
    note: str = "",
    origin: str = "",
    client_address: str | None = None,
) -> tuple[CallRequest, bool]:
    """A visitor's request to be called: normalised, refused when blocked or unrated, and the same
    request again (created False) when that number already has one in progress on the campaign;
    refused as campaign_key_invalid when the campaign was deleted while the request was written.
    The first try is queued after commit (click2call.tasks)."""
    if not consent:
        raise NumberRefused("consent_required", "The visitor must agree to be called.")
    e164 = number_normalize(raw=number, country=campaign.default_country)
    rate, direction = number_rate(campaign=campaign, number=e164)
    fields = {
        "company_id": campaign.company_id,
        "name": name[:100],
        "note": note[:500],
        "consent": True,
        "destination": direction.destination,
        "country": direction.country,
        "region": direction.region,
        "carrier": direction.carrier,
        "rate_prefix": rate.prefix,
        "rate_price": rate.price,
        "origin": origin[:200],
        "client_address": client_address,
    }
    # Insert first: most posts are a new number, and the unique constraint on open requests
    # finds the repeat one without a lookup on every post. In autocommit (a web request) the
    # INSERT is its own transaction, two round trips fewer than BEGIN and COMMIT around it;
    # within a caller's transaction a savepoint keeps that transaction usable after a refusal.
    savepoint = transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
    try:
        with savepoint:
            request = CallRequest.objects.create(campaign=campaign, number=e164, **fields)
    except IntegrityError:  # that number has a request in progress (perhaps posted at the same moment)
        open_request = CallRequest.objects.filter(
            campaign=campaign, number=e164, status__in=CallRequest.OPEN
        ).first()
        if open_request is None:
            # None in progress: the refusal was the foreign key, the campaign deleted meanwhile
            # (campaign_delete decides on the locked campaign, which the INSERT waited for).
            raise NumberRefused(
                "campaign_key_invalid", "Unknown or inactive campaign, or a wrong key.", 403
            ) from None
        return open_request, False
    from click2call.tasks import dial_attempt  # tasks import this module

    dial_attempt.delay_on_commit(request.pk)  # at once in autocommit: the row is committed
    return request, True
