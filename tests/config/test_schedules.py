"""Beat schedules: the defaults (settings.BEAT_SCHEDULE_DEFAULTS) are created by the data migration
and by `manage.py schedules`, idempotently; an admin's edits are kept, `--reset` restores them;
beat itself installs nothing over them; every task a schedule names exists."""

import importlib
import os
import sqlite3
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from config.celery import app
from config.schedules import schedule_tasks_missing, schedules_install

pytestmark = pytest.mark.django_db

DEFAULTS = settings.BEAT_SCHEDULE_DEFAULTS
REMINDERS = "e-mail click2call reminders"
DIGESTS = "e-mail the daily digests of cards running low"


@pytest.fixture(autouse=True)
def _defaults_installed():
    """The migration's schedules, as a test that flushed the database (transaction=True) left none."""
    schedules_install()


def schedules(*args):
    out = StringIO()
    call_command("schedules", *args, stdout=out)
    return out.getvalue()


def snapshot():
    return list(PeriodicTask.objects.order_by("name").values()), (
        IntervalSchedule.objects.count(),
        CrontabSchedule.objects.count(),
    )


def installed():
    return {task.name: task for task in PeriodicTask.objects.select_related("interval", "crontab")}


def assert_the_defaults(tasks):
    assert set(DEFAULTS) <= set(tasks)
    for name, entry in DEFAULTS.items():
        assert tasks[name].task == entry["task"] and tasks[name].enabled
    assert (tasks[REMINDERS].interval.every, tasks[REMINDERS].interval.period) == (60, "seconds")
    cron = tasks[DIGESTS].crontab
    assert (cron.minute, cron.hour, cron.day_of_month, str(cron.timezone)) == (
        "3",
        "*",
        "*",
        settings.TIME_ZONE,
    )


def test_the_data_migration_creates_every_default():
    PeriodicTask.objects.all().delete()
    migration = importlib.import_module("config.migrations.0001_beat_schedules")
    state = MigrationLoader(connection).project_state(("config", "0001_beat_schedules"))

    migration.install(state.apps, None)  # on the migration's historical models

    assert_the_defaults(installed())


@pytest.mark.long
def test_a_fresh_database_has_them_after_migrate(tmp_path):
    """What `make run` does on a fresh machine: migrate, then beat reads the schedules."""
    database = tmp_path / "fresh.sqlite3"
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{database}", "VAR_DIR": str(tmp_path)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=settings.BASE_DIR,
        env=env,
        check=True,
        timeout=300,
    )
    with sqlite3.connect(database) as db:
        rows = dict(db.execute("SELECT name, task FROM django_celery_beat_periodictask WHERE enabled"))
    assert rows == {name: entry["task"] for name, entry in DEFAULTS.items()}


def test_the_command_creates_the_missing_ones_and_a_second_run_changes_nothing():
    PeriodicTask.objects.filter(name__in=[REMINDERS, DIGESTS]).delete()

    out = schedules()
    assert f"{REMINDERS}: created" in out and f"{DIGESTS}: created" in out
    assert "dial due click2call tries: unchanged" in out
    assert_the_defaults(installed())

    before = snapshot()
    out = schedules()
    assert snapshot() == before
    assert out.count(": unchanged") == len(DEFAULTS)


def test_an_admins_edits_are_kept_and_reset_restores_the_default():
    task = PeriodicTask.objects.get(name=REMINDERS)
    task.interval = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    task.enabled = False
    task.save()
    PeriodicTask.objects.filter(name=DIGESTS).update(enabled=False)
    before = snapshot()

    out = schedules()

    assert snapshot() == before
    assert f"{REMINDERS}: kept (every 5 minutes, default every 60 seconds; disabled)" in out
    assert "--reset NAME" in out

    out = schedules("--reset", REMINDERS)
    assert f"{REMINDERS}: reset" in out and f"{DIGESTS}: kept (disabled)" in out
    tasks = installed()
    assert tasks[REMINDERS].enabled and tasks[REMINDERS].interval.every == 60
    assert not tasks[DIGESTS].enabled

    schedules("--reset")
    assert_the_defaults(installed())


def test_an_unknown_name_to_reset_is_refused():
    with pytest.raises(CommandError, match="No default schedule named 'e-mail everybody'"):
        schedules("--reset", "e-mail everybody")


def test_beat_at_its_start_keeps_the_admins_edits_and_runs_the_database_schedules(monkeypatch):
    # Beat closes stale connections between reads: here that would be the test's own transaction.
    monkeypatch.setattr("django_celery_beat.schedulers.close_old_connections", lambda: None)
    assert app.conf.beat_schedule == {}
    PeriodicTask.objects.filter(name=REMINDERS).update(
        interval=IntervalSchedule.objects.create(every=7, period=IntervalSchedule.MINUTES)
    )
    PeriodicTask.objects.filter(name=DIGESTS).update(enabled=False)

    beat = DatabaseScheduler(app=app)  # what `celery beat` makes at its start

    tasks = installed()
    assert tasks[REMINDERS].interval.every == 7 and not tasks[DIGESTS].enabled
    assert set(beat.schedule) >= set(DEFAULTS) - {DIGESTS}
    assert DIGESTS not in beat.schedule
    assert beat.schedule[REMINDERS].schedule.run_every.total_seconds() == 7 * 60


def test_every_task_a_schedule_names_exists_in_the_celery_app():
    app.loader.import_default_modules()
    for name, entry in DEFAULTS.items():
        assert entry["task"] in app.tasks, f"schedule {name!r} names no task: {entry['task']}"
    assert schedule_tasks_missing() == []


def test_a_typo_in_a_task_name_stops_the_command(settings):
    settings.BEAT_SCHEDULE_DEFAULTS = {
        **DEFAULTS,
        REMINDERS: {"task": "click2call.send_remindres", "schedule": 60},
    }
    assert schedule_tasks_missing() == ["click2call.send_remindres"]
    with pytest.raises(CommandError, match="click2call.send_remindres"):
        schedules()


def test_the_admin_lists_the_schedules_and_edits_one(admin_client):
    body = admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist")).content.decode()
    for name in DEFAULTS:
        assert name in body
    task = PeriodicTask.objects.get(name=REMINDERS)
    response = admin_client.get(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]))
    assert response.status_code == 200 and "click2call.send_reminders" in response.content.decode()
