"""A report's period, the same in every app's portal forms and API filters: days whose midnights
exist in every time zone, a period at most MAX_PERIOD_DAYS long, its bounds in the company's zone."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

MAX_PERIOD_DAYS = 366
# Dates far out (year 1, 9999) would overflow when turned into the company's midnights.
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


def today(company) -> dt.date:
    """The company's day now, in its time zone."""
    return timezone.now().astimezone(company.tzinfo).date()


def day_bounds(company, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """From `start`'s midnight to the midnight after `end`, in the company's time zone (a DST day
    is 23 or 25 hours long, as its clocks say)."""
    tz = company.tzinfo
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


class ReportDateField(forms.DateField):
    def clean(self, value):
        day = super().clean(value)
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ValidationError(f"A date from {EARLIEST} to {LATEST}.")
        return day
