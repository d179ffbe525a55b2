"""The portal's queue forms: the agent's status buttons and dispositions, the report period, the event
filters."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError

from queues.models import DISPOSITION_MAX, Agent, Queue, QueueEvent, validate_disposition

MAX_PERIOD_DAYS = 366
# Dates far out (year 1, 9999) would overflow when turned into the company's midnights.
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


class ReportDateField(forms.DateField):
    def clean(self, value):
        day = super().clean(value)
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ValidationError(f"A date from {EARLIEST} to {LATEST}.")
        return day


class AgentStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Agent.Status.choices)


class DispositionForm(forms.Form):
    disposition = forms.CharField(max_length=DISPOSITION_MAX, validators=[validate_disposition])


class PeriodForm(forms.Form):
    """Dates in the company's time zone, both days included; today when left out."""

    start = ReportDateField(required=False, label="From")
    end = ReportDateField(required=False, label="To")

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        data["start"] = data.get("start") or data.get("end") or self.today
        data["end"] = data.get("end") or max(data["start"], self.today)
        if data["end"] < data["start"]:
            raise ValidationError("The period ends before it starts.")
        if (data["end"] - data["start"]).days >= MAX_PERIOD_DAYS:
            raise ValidationError(f"A period of at most {MAX_PERIOD_DAYS} days.")
        return data


class EventFilterForm(forms.Form):
    queue = forms.ModelChoiceField(queryset=Queue.objects.none(), required=False, empty_label="all")
    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), required=False, empty_label="all")
    action = forms.ChoiceField(choices=[("", "all"), *QueueEvent.Action.choices], required=False)
    start = ReportDateField(required=False, label="From")
    end = ReportDateField(required=False, label="To")

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        # Another company's queue or agent is not a choice: "not a valid choice", never its events.
        self.fields["queue"].queryset = Queue.objects.filter(company=company)
        self.fields["agent"].queryset = Agent.objects.filter(company=company)
        # The short name: full_name would read each one's company again.
        for name in ("queue", "agent"):
            self.fields[name].label_from_instance = lambda obj: obj.name

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise ValidationError("The period ends before it starts.")
        return data
