"""The portal's one way to show a time: `{{ call.started_at|when }}` gives "2026-12-02 14:05:09 CET".

Always in the active time zone (the company's, see CompanyTimezoneMiddleware),
always naming it, so a time read off a screen or a screenshot is never ambiguous.
"""

from django import template
from django.utils.dateformat import format as format_date

register = template.Library()

PORTAL_DATETIME_FORMAT = "Y-m-d H:i:s T"


@register.filter(expects_localtime=True)
def when(value):
    if not value:
        return "—"
    return format_date(value, PORTAL_DATETIME_FORMAT)
