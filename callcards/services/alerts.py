"""Low-balance alerts: a card's holder is told once that the card runs low, and each company gets a
daily digest of its cards running low.

Every alert is a LowBalanceAlert row, written PENDING before anything is sent; the database's
unique constraints make it once per card (holder) and once per company and day (digest), whoever
writes it. Sending claims the row with a conditional update first, so two workers running at once
never send one alert twice; a mail server that is down leaves the row PENDING with the error and it
goes out at a later run: delayed, never lost.
"""

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Count, Exists, F, OuterRef, Value
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string, select_template
from django.utils import timezone

from accounts.models import Company
from callcards.lifecycle import DIALABLE, Status
from callcards.models import CallcardSettings, Card, LowBalanceAlert
from config import outbox

logger = logging.getLogger(__name__)

# A company without its settings row has the model's default threshold.
DEFAULT_LOW_BALANCE_MINUTES: int = CallcardSettings._meta.get_field("low_balance_minutes").default
# The holder of a card emptied by one long call is told too: it fell below the threshold.
HOLDER_STATUSES = DIALABLE | {Status.EMPTY}
# The digest lists the cards still in use; an empty card has nothing left to run low.
DIGEST_STATUSES = DIALABLE
# Claims, pauses and batches are config.outbox's, shared with click2call's reminders.
CLAIM_SECONDS = outbox.CLAIM_SECONDS
DIGEST_LINES = 200  # cards listed in a digest; the count says how many more there are
CREATE_BATCH = 500


def _threshold(prefix: str = ""):
    """The company's low-balance threshold as an expression, the default when it has no settings."""
    return Coalesce(F(f"{prefix}callcard_settings__low_balance_minutes"), Value(DEFAULT_LOW_BALANCE_MINUTES))


def cards_running_low(*, statuses=DIGEST_STATUSES):
    """Cards of active companies at or below their company's threshold (0: the company never alerts)."""
    return (
        Card.objects.filter(status__in=sorted(statuses), company__active=True)
        .annotate(threshold=_threshold("company__"))
        .filter(threshold__gt=0, balance_minutes__lte=F("threshold"))
    )


# Writing the alerts


def holder_alerts_create() -> int:
    """A PENDING holder alert for each card with an e-mail that is running low and has none yet;
    returns how many cards were found (a rival run may have written some of them first)."""
    cards = (
        cards_running_low(statuses=HOLDER_STATUSES)
        .exclude(email="")
        .filter(
            ~Exists(LowBalanceAlert.objects.filter(card=OuterRef("pk"), kind=LowBalanceAlert.Kind.HOLDER))
        )
        .values_list("pk", "company_id", "email", "balance_minutes")
    )
    found = 0
    batch: list[LowBalanceAlert] = []
    for card_id, company_id, email, balance in cards.iterator(chunk_size=CREATE_BATCH):
        batch.append(
            LowBalanceAlert(
                kind=LowBalanceAlert.Kind.HOLDER,
                company_id=company_id,
                card_id=card_id,
                to=email,
                balance_minutes=balance,
            )
        )
        if len(batch) == CREATE_BATCH:
            found += _insert(batch)
    return found + _insert(batch)


def _insert(batch: list[LowBalanceAlert]) -> int:
    # The unique constraints decide: a row a rival run wrote first is skipped, never duplicated.
    LowBalanceAlert.objects.bulk_create(batch, ignore_conflicts=True)
    count = len(batch)
    batch.clear()
    return count


def digests_create(*, now: dt.datetime | None = None) -> int:
    """Today's PENDING digest for each company that has cards running low, a recipient, no digest
    for its day yet and has reached CALLCARDS_DIGEST_HOUR in its own time zone; returns how many
    companies were due."""
    now = now or timezone.now()
    low_cards = dict(
        cards_running_low().order_by().values("company").annotate(n=Count("pk")).values_list("company", "n")
    )
    companies = Company.objects.filter(pk__in=list(low_cards)).select_related("callcard_settings")
    batch = []
    for company in companies:
        local = now.astimezone(company.tzinfo)
        if local.hour < settings.CALLCARDS_DIGEST_HOUR:
            continue
        to = _digest_recipient(company)
        if not to:
            logger.info("no digest of low cards for company %s: no alert or billing e-mail", company.pk)
            continue
        batch.append(
            LowBalanceAlert(
                kind=LowBalanceAlert.Kind.DIGEST,
                company=company,
                day=local.date(),
                to=to,
                cards=low_cards[company.pk],
            )
        )
    return _insert(batch)


def _settings_of(company: Company) -> CallcardSettings | None:
    try:
        return company.callcard_settings
    except CallcardSettings.DoesNotExist:
        return None


def _digest_recipient(company: Company) -> str:
    own = _settings_of(company)
    return (own.alert_email if own else "") or company.billing_email


# Sending them


def alerts_send_pending(*, now: dt.datetime | None = None) -> outbox.SendReport:
    """Send the PENDING alerts that are due, each claimed first; a failure leaves the alert PENDING
    with its error, to be tried again after a pause (config.outbox)."""
    return outbox.outbox_send(
        rows=LowBalanceAlert.objects.select_related("card", "company__callcard_settings"),
        message=lambda alert: alert_message(alert=alert),
        # What the mail said, as of its sending.
        sent_fields=lambda alert: {"balance_minutes": alert.balance_minutes, "cards": alert.cards},
        now=now,
    )


def _claim(pk: int, now: dt.datetime) -> bool:
    return outbox.outbox_claim(model=LowBalanceAlert, pk=pk, now=now)


# The messages


def alert_message(*, alert: LowBalanceAlert) -> EmailMultiAlternatives:
    """The mail of an alert, as of now: the holder's in the card's language, the digest in English.
    Card ids, balances and the company's name; never a PIN."""
    company = alert.company
    own = _settings_of(company)
    reply_to = [address for address in [(own.alert_email if own else "") or company.billing_email] if address]
    if alert.kind == LowBalanceAlert.Kind.HOLDER:
        card = alert.card
        alert.balance_minutes = card.balance_minutes
        context = {"card": card, "balance": card.balance_minutes, "company": company}
        template = select_template(
            [f"callcards/mail/holder_low.{card.language}.txt", "callcards/mail/holder_low.en.txt"]
        )
        subject, _, body = template.render(context).partition("\n")
        return EmailMultiAlternatives(
            subject=outbox.one_line(subject), body=body.lstrip("\n"), to=[alert.to], reply_to=reply_to
        )
    low = cards_running_low().filter(company=company)
    cards = list(low.select_related("batch").order_by("balance_minutes", "card_id")[:DIGEST_LINES])
    alert.cards = len(cards) if len(cards) < DIGEST_LINES else low.count()
    threshold = own.low_balance_minutes if own else DEFAULT_LOW_BALANCE_MINUTES
    context = {
        "company": company,
        "day": alert.day,
        "cards": cards,
        "count": alert.cards,
        "more": alert.cards - len(cards),
        "threshold": threshold,
    }
    plural = "s" if alert.cards != 1 else ""
    subject = f"{company.name}: {alert.cards} call card{plural} running low on {alert.day}"
    message = EmailMultiAlternatives(
        subject=outbox.one_line(subject),
        body=render_to_string("callcards/mail/digest.txt", context),
        to=[alert.to],
    )
    message.attach_alternative(render_to_string("callcards/mail/digest.html", context), "text/html")
    return message
