"""The beat schedules' defaults (settings.BEAT_SCHEDULE_DEFAULTS) written into django-celery-beat's
tables, where beat reads them and staff edit them in the admin (Periodic tasks).

Installing creates the defaults that are missing and leaves every existing one as it is, so an
interval an admin changed or a schedule switched off stays so; `reset` puts the named ones (or all)
back to their defaults, switched on. The same code runs in the data migration (on its historical
models) and in `manage.py schedules` (on the real ones). Beat itself installs nothing: its
CELERY_BEAT_SCHEDULE is empty, since django-celery-beat's DatabaseScheduler writes that dict over
the database at each start (update_or_create), which would undo the admin's edits.
"""

import json
from dataclasses import dataclass

from celery import schedules as celery_schedules
from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

DESCRIPTION = "A default (settings.BEAT_SCHEDULE_DEFAULTS); `manage.py schedules --reset` restores it."
CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


@dataclass
class Outcome:
    name: str
    what: str  # created, unchanged, kept, reset
    differences: list[str]

    def __str__(self):
        extra = f" ({'; '.join(self.differences)})" if self.differences else ""
        return f"{self.name}: {self.what}{extra}"


def schedule_tasks_missing(defaults: dict | None = None) -> list[str]:
    """The tasks the defaults name that the Celery app does not have (a typo, a task renamed)."""
    from config.celery import app  # the Celery app imports Django's settings

    app.loader.import_default_modules()
    defaults = settings.BEAT_SCHEDULE_DEFAULTS if defaults is None else defaults
    return sorted({entry["task"] for entry in defaults.values()} - set(app.tasks))


def _wanted(entry: dict, apps) -> dict:
    """A default as django-celery-beat's PeriodicTask fields (its schedule row found or made)."""
    schedule = entry["schedule"]
    if isinstance(schedule, int | float):
        schedule = celery_schedules.schedule(schedule)
    fields = {
        "task": entry["task"],
        "interval": None,
        "crontab": None,
        "args": json.dumps(entry.get("args", [])),
        "kwargs": json.dumps(entry.get("kwargs", {})),
        "enabled": True,
    }
    if isinstance(schedule, celery_schedules.crontab):
        spec = {field: str(getattr(schedule, f"_orig_{field}")) for field in CRONTAB_FIELDS}
        model = apps.get_model("django_celery_beat", "CrontabSchedule")
        zone = str(settings.CELERY_TIMEZONE)
        fields["crontab"] = model.objects.filter(**spec, timezone=zone).first() or model.objects.create(
            **spec, timezone=zone
        )
    elif type(schedule) is celery_schedules.schedule:
        every = int(schedule.run_every.total_seconds())
        model = apps.get_model("django_celery_beat", "IntervalSchedule")
        fields["interval"] = model.objects.filter(every=every, period="seconds").first() or (
            model.objects.create(every=every, period="seconds")
        )
    else:
        raise ImproperlyConfigured(
            f"BEAT_SCHEDULE_DEFAULTS: {schedule!r} is neither an interval nor a crontab"
        )
    return fields


def _describe(row) -> str:
    if row.interval_id:
        return f"every {row.interval.every} {row.interval.period}"
    if row.crontab_id:
        cron = row.crontab
        return "crontab " + " ".join(getattr(cron, field) for field in CRONTAB_FIELDS) + f" {cron.timezone}"
    return "another kind of schedule"


def _differences(row, wanted: dict) -> list[str]:
    found = []
    if row.task != wanted["task"]:
        found.append(f"task {row.task}, default {wanted['task']}")
    if (row.interval_id, row.crontab_id) != (
        wanted["interval"] and wanted["interval"].pk,
        wanted["crontab"] and wanted["crontab"].pk,
    ):
        default = type(row)(interval=wanted["interval"], crontab=wanted["crontab"])
        found.append(f"{_describe(row)}, default {_describe(default)}")
    if (row.args, row.kwargs) != (wanted["args"], wanted["kwargs"]):
        found.append("arguments changed")
    if not row.enabled:
        found.append("disabled")
    return found


def schedules_install(
    *, apps=django_apps, reset: bool = False, names: list[str] | None = None
) -> list[Outcome]:
    """Each default schedule created when missing, left as it is otherwise (the admin's edits kept);
    with `reset`, the named ones (all when none are named) put back to their defaults."""
    defaults = settings.BEAT_SCHEDULE_DEFAULTS
    unknown = sorted(set(names or []) - set(defaults))
    if unknown:
        raise ImproperlyConfigured(f"No default schedule named {', '.join(map(repr, unknown))}")
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    outcomes = []
    for name, entry in defaults.items():
        wanted = _wanted(entry, apps)
        row = periodic_task.objects.filter(name=name).select_related("interval", "crontab").first()
        if row is None:
            periodic_task.objects.create(
                name=name, description="a default: settings.BEAT_SCHEDULE_DEFAULTS", **wanted
            )
            outcomes.append(Outcome(name, "created", []))
            continue
        differences = _differences(row, wanted)
        if not differences:
            outcomes.append(Outcome(name, "unchanged", []))
        elif reset and (not names or name in names):
            for field, value in wanted.items():
                setattr(row, field, value)
            row.solar = row.clocked = None
            row.save()
            outcomes.append(Outcome(name, "reset", differences))
        else:
            outcomes.append(Outcome(name, "kept", differences))
    if any(outcome.what in ("created", "reset") for outcome in outcomes):
        # Beat rereads its schedules when this moves (the real models' signals do it too; the
        # migration's historical models have none).
        tracker = apps.get_model("django_celery_beat", "PeriodicTasks")
        tracker.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
    return outcomes
