"""The SMS and IM template's check: the line's field validator (so the portal, the API, the admin
and the line's service all refuse the same templates) and the text's own fallback test."""

import string

from django.core.exceptions import ValidationError

FIELDS = ("start_date", "start_time", "end_date", "end_time", "ticket", "caller", "called")


def template_check(template: str) -> None:
    """ValueError unless every {field} of the template is one of FIELDS (no attribute, no index)."""
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name not in FIELDS or spec or conversion:
            raise ValueError(f"unknown field {{{name}}}: use {', '.join('{' + f + '}' for f in FIELDS)}")


def validate_message_template(value: str) -> None:
    """template_check as TicketLine.message_template's validator."""
    try:
        template_check(value)
    except ValueError as exc:
        raise ValidationError(str(exc), code="template") from None
