"""Seconds as a person reads them on a wallboard: 0:42, 12:05, 1:02:03."""

from django import template

register = template.Library()


@register.filter
def duration(seconds):
    if seconds is None or seconds == "":
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
