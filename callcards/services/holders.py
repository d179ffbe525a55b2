"""What a company's callcard admin changes from the portal: a card's holder (name, e-mail, comments),
the PIN shown on request, and the company's call card settings."""

from django.db import transaction
from django.utils import timezone

from accounts.models import Company
from callcards import pins
from callcards.models import CallcardSettings, Card, CardEvent

PIN_SHOWN = "PIN shown"
HOLDER_FIELDS = ("name", "email", "comments")
HOLDER_CHANGED = "holder changed"


@transaction.atomic
def card_holder_update(*, card: Card, name: str, email: str, comments: str, user: str) -> Card:
    """Set who holds a card, checked by the model's own rules (plain text, a valid address). What
    changed is recorded on the card with who changed it: the e-mail is where its alerts go."""
    stored = Card.objects.select_for_update().only(*HOLDER_FIELDS).get(pk=card.pk)
    changed = [
        field
        for field, value in zip(HOLDER_FIELDS, (name, email, comments), strict=True)
        if getattr(stored, field) != value
    ]
    card.name, card.email, card.comments = name, email, comments
    # Only these are checked: a card's other fields are not the holder's to answer for.
    others = [field.name for field in Card._meta.fields if field.name not in HOLDER_FIELDS]
    card.full_clean(exclude=others, validate_unique=False, validate_constraints=False)
    if changed:
        card.save(update_fields=[*HOLDER_FIELDS, "updated_at"])
        CardEvent.objects.create(
            card=card, at=timezone.now(), user=user, old_status=card.status, new_status=card.status,
            note=f"{HOLDER_CHANGED}: {', '.join(changed)}",
        )  # fmt: skip
    return card


def card_pin_reveal(*, card: Card, user: str) -> str:
    """The card's PIN in clear, for a callcard admin who asked for it; each showing is recorded on the
    card (who and when), so a leaked PIN can be traced to the people who saw it. Raises
    pins.PinKeyMismatch (nothing recorded) when the PIN was sealed under another CALLCARDS_PIN_KEY."""
    pin = pins.pin_reveal(card.pin_sealed)
    CardEvent.objects.create(
        card=card,
        at=timezone.now(),
        user=user,
        old_status=card.status,
        new_status=card.status,
        note=PIN_SHOWN,
    )
    return pin


@transaction.atomic
def callcard_settings_save(
    *, company: Company, low_balance_minutes: int, alert_email: str
) -> CallcardSettings:
    """Set the company's low-balance threshold and the address its daily digest goes to."""
    settings, _ = CallcardSettings.objects.select_for_update().get_or_create(company=company)
    settings.low_balance_minutes = low_balance_minutes
    settings.alert_email = alert_email
    settings.full_clean()
    settings.save()
    return settings
