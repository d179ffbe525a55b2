"""The portal's call card forms: the list filters, a card's holder, the company's settings. The
rules themselves are the models' validators and callcards.services."""

import re

from django import forms

from callcards.lifecycle import Status
from callcards.models import MAX_MINUTES, CallcardSettings, Card, CardBatch
from config.periods import MAX_PERIOD_DAYS, ReportDateField
from config.validators import validate_plain_text

_CARD_ID_PART = re.compile(r"[0-9]{1,20}", re.ASCII)


def card_id_digits(text: str) -> str:
    """A card id or its first digits, as people copy it off a card ("1234 5678 9012")."""
    digits = text.strip().replace(" ", "")
    if digits and not _CARD_ID_PART.fullmatch(digits):
        raise forms.ValidationError("Digits of a card id (0-9), at most 20.")
    return digits


class BatchChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.run}/{obj.batch}"


class CardFilterForm(forms.Form):
    batch = BatchChoiceField(queryset=CardBatch.objects.none(), required=False, empty_label="all")
    status = forms.ChoiceField(choices=[("", "all"), *Status.choices], required=False)
    card_id = forms.CharField(label="Card id", max_length=40, required=False)

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        # Another company's batch is not a choice: "not a valid choice", never its cards.
        self.fields["batch"].queryset = CardBatch.objects.filter(company=company)

    def clean_card_id(self):
        return card_id_digits(self.cleaned_data["card_id"])


class CallFilterForm(forms.Form):
    """The call log's period (the company's days, both included), card and agent."""

    start = ReportDateField(required=False, label="From")
    end = ReportDateField(required=False, label="To")
    card_id = forms.CharField(label="Card id", max_length=40, required=False)
    agent = forms.CharField(max_length=130, required=False, validators=[validate_plain_text])
    batch = BatchChoiceField(queryset=CardBatch.objects.none(), required=False, empty_label="all")

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["batch"].queryset = CardBatch.objects.filter(company=company)

    def clean_card_id(self):
        return card_id_digits(self.cleaned_data["card_id"])

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError("The period ends before it starts.")
            if (end - start).days >= MAX_PERIOD_DAYS:
                raise forms.ValidationError(f"A period of at most {MAX_PERIOD_DAYS} days.")
        return data


class CardHolderForm(forms.ModelForm):
    """Who holds the card: the name on it, the address its low-balance alert goes to, notes."""

    class Meta:
        model = Card
        fields = ["name", "email", "comments"]
        labels = {"name": "Holder's name", "email": "Holder's e-mail"}
        widgets = {"comments": forms.Textarea(attrs={"rows": 3})}


class CallcardSettingsForm(forms.ModelForm):
    low_balance_minutes = forms.IntegerField(
        label="Low balance (minutes)",
        min_value=0,
        max_value=MAX_MINUTES,
        help_text="a card at or below this many minutes is running low (0: never alert)",
    )

    class Meta:
        model = CallcardSettings
        fields = ["low_balance_minutes", "alert_email"]
        labels = {"alert_email": "Daily digest to"}
