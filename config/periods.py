"""A report's period, the same in every app's portal forms and API filters: days whose midnights
exist in every time zone, a period at most MAX_PERIOD_DAYS long."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError

MAX_PERIOD_DAYS = 366
# Dates far out (year 1, 9999) would overflow when turned into the company's midnights.
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


class ReportDateField(forms.DateField):
    def clean(self, value):
        day = super().clean(value)
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ValidationError(f"A date from {EARLIEST} to {LATEST}.")
        return day
