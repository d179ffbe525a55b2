"""The portal's queue forms: the agent's status buttons and dispositions, the report period, the event
filters."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError

from config.periods import MAX_PERIOD_DAYS, ReportDateField
from queues.models import DISPOSITION_MAX, Agent, Queue, QueueEvent, validate_disposition


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
