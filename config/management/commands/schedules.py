"""`manage.py schedules [--reset [NAME ...]]`: the default beat schedules into the database."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from config.schedules import schedule_tasks_missing, schedules_install


class Command(BaseCommand):
    help = (
        "Create the default beat schedules (settings.BEAT_SCHEDULE_DEFAULTS) that are missing; the ones "
        "that exist keep their admin's edits and are listed with what differs. --reset puts them (or "
        "the ones named) back to their defaults, switched on."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reset", nargs="*", metavar="NAME", help="restore these (all when none named)")

    def handle(self, *args, reset=None, **options):
        missing = schedule_tasks_missing()
        if missing:
            raise CommandError(
                f"BEAT_SCHEDULE_DEFAULTS names tasks the Celery app does not have: {', '.join(missing)}"
            )
        try:
            outcomes = schedules_install(reset=reset is not None, names=reset or None)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        for outcome in outcomes:
            self.stdout.write(str(outcome))
        if any(outcome.what == "kept" for outcome in outcomes):
            self.stdout.write(
                "Kept as edited in the admin; `manage.py schedules --reset NAME` restores a default."
            )
