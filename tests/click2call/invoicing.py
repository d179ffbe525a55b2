"""What the invoice tests share: the months, a mail server that is down, calls COMPLETED at a time,
an invoice issued as of December 2, 2026 (the fixtures `issuer` and `billed_company` are in conftest)."""

import datetime as dt

from click2call.models import CallRequest
from click2call.services.invoices import invoice_issue
from tests.click2call.factories import CallRequestFactory

NOVEMBER = dt.date(2026, 11, 1)
DECEMBER_2 = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
DOWN = "tests.click2call.invoicing.ServerDown"


class ServerDown:
    """An SMTP server nobody answers at."""

    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        raise ConnectionRefusedError(111, "Connection refused")

    def close(self):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError(111, "Connection refused")


def completed(campaign, count, at):
    """`count` requests of the campaign COMPLETED at `at`, at its price then (attempt_finish freezes it)."""
    for _ in range(count):
        CallRequestFactory(
            campaign=campaign,
            status=CallRequest.Status.COMPLETED,
            finished_at=at,
            price=campaign.price_per_completed,
        )


def issue(company, month=NOVEMBER, **kwargs):
    kwargs.setdefault("now", DECEMBER_2)
    return invoice_issue(company=company, period_start=month, **kwargs)
