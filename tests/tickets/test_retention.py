"""Recordings retention: files older than their line's retention_days deleted and their calls marked,
younger ones kept, a file already gone taken as deleted, nothing outside the recording directory ever
touched, every deletion logged; run by a task on a default beat schedule a migration installs."""

import datetime as dt
import importlib
import logging

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tests.tickets.factories import TicketCallFactory, TicketLineFactory
from tickets.models import TicketCall
from tickets.services.retention import recording_dir, recording_path, recordings_expire
from tickets.tasks import expire_recordings

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def root(settings, tmp_path):
    settings.TICKETS_RECORDING_DIR = tmp_path / "recordings"
    settings.TICKETS_RECORDING_DIR.mkdir()
    return settings.TICKETS_RECORDING_DIR


def recorded(root, line, *, age_days, name=None, write=True):
    relative = name or f"{line.company.slug}/2026/11/ticket-{line.pk}-{age_days}.wav"
    if write:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"RIFF")
    return TicketCallFactory(
        line=line, recording=relative, started_at=NOW - dt.timedelta(days=age_days, minutes=1)
    )


def test_recordings_older_than_their_lines_retention_are_deleted(root, caplog):
    week, quarter = TicketLineFactory(retention_days=7), TicketLineFactory(retention_days=90)
    old = recorded(root, week, age_days=8)
    young = recorded(root, week, age_days=6)
    kept_longer = recorded(root, quarter, age_days=8)
    quarter_old = recorded(root, quarter, age_days=91)
    unrecorded = TicketCallFactory(line=week, started_at=NOW - dt.timedelta(days=30))
    with caplog.at_level(logging.INFO, logger="tickets.services.retention"):
        outcome = recordings_expire(now=NOW)
    assert (
        sorted(outcome.deleted) == sorted([old.pk, quarter_old.pk]) and not outcome.refused + outcome.failed
    )
    for call, gone in [(old, True), (young, False), (kept_longer, False), (quarter_old, True)]:
        call.refresh_from_db()
        assert (root / call.recording).exists() is not gone
        assert call.recording_deleted_at == (NOW if gone else None)
        assert call.recording  # the path stays, for the log: only the file goes
    unrecorded.refresh_from_db()
    assert unrecorded.recording_deleted_at is None
    deleted = [r.getMessage() for r in caplog.records if "deleted" in r.getMessage()]
    assert any(
        str(root / old.recording) in m and f"ticket call {old.pk}" in m and "kept 7 days" in m
        for m in deleted
    )
    assert "2 deleted, 0 refused" in caplog.text


def test_a_second_run_deletes_nothing_again(root):
    line = TicketLineFactory(retention_days=1)
    recorded(root, line, age_days=2)
    assert len(recordings_expire(now=NOW).deleted) == 1
    later = recordings_expire(now=NOW + dt.timedelta(hours=1))
    assert later.deleted == later.refused == later.failed == []
    assert TicketCall.objects.get().recording_deleted_at == NOW


def test_a_file_already_gone_is_fine(root):
    call = recorded(root, TicketLineFactory(retention_days=1), age_days=2, write=False)
    assert recordings_expire(now=NOW).deleted == [call.pk]
    call.refresh_from_db()
    assert call.recording_deleted_at == NOW


@pytest.mark.parametrize("how", ["parent", "absolute", "deep parent", "symbolic link out", "the directory"])
def test_nothing_outside_the_recording_directory_is_touched(root, tmp_path, how, caplog):
    outside = tmp_path / "precious.wav"
    outside.write_bytes(b"keep me")
    line = TicketLineFactory(retention_days=1)
    name = {
        "parent": "../precious.wav",
        "absolute": str(outside),
        "deep parent": "demo/2026/../../../precious.wav",
        "symbolic link out": "demo/link.wav",
        "the directory": ".",
    }[how]
    if how == "symbolic link out":
        (root / "demo").mkdir()
        (root / "demo" / "link.wav").symlink_to(outside)
    call = recorded(root, line, age_days=2, name=name, write=False)
    outcome = recordings_expire(now=NOW)
    assert outcome.refused == [call.pk] and outcome.deleted == []
    assert outside.read_bytes() == b"keep me" and root.is_dir()
    call.refresh_from_db()
    assert call.recording_deleted_at is None
    assert "not deleted, look at it" in caplog.text


def test_a_file_that_cannot_be_deleted_is_tried_again(root, caplog):
    line = TicketLineFactory(retention_days=1)
    call = recorded(root, line, age_days=2, name="demo/a-directory.wav", write=False)
    (root / "demo" / "a-directory.wav").mkdir(parents=True)  # unlink() refuses a directory
    outcome = recordings_expire(now=NOW)
    assert outcome.failed == [call.pk]
    call.refresh_from_db()
    assert call.recording_deleted_at is None
    assert "could not be deleted" in caplog.text
    (root / "demo" / "a-directory.wav").rmdir()
    assert recordings_expire(now=NOW).deleted == [call.pk]


def test_the_task_runs_it(root):
    call = recorded(root, TicketLineFactory(retention_days=1), age_days=2)
    call.started_at = timezone.now() - dt.timedelta(days=2)
    call.save()
    expire_recordings.apply()
    call.refresh_from_db()
    assert call.recording_deleted_at is not None and not (root / call.recording).exists()


def test_the_directory_defaults_to_var_recordings_until_the_setting_is_there(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    if hasattr(settings, "TICKETS_RECORDING_DIR"):
        del settings.TICKETS_RECORDING_DIR
    assert recording_dir() == tmp_path / "recordings"
    assert recording_path("demo/2026/12/ticket-1-7.wav") == (
        tmp_path / "recordings/demo/2026/12/ticket-1-7.wav"
    )
    assert recording_path("") is None and recording_path("../x.wav") is None


def test_the_schedule_is_a_default_that_a_migration_installs():
    name = "delete ticket recordings past their retention"
    entry = django_settings.BEAT_SCHEDULE_DEFAULTS[name]
    assert entry["task"] == expire_recordings.name == "tickets.expire_recordings"
    PeriodicTask.objects.filter(name=name).delete()
    migration = importlib.import_module("tickets.migrations.0003_recording_retention_schedule")
    state = MigrationLoader(connection).project_state(("tickets", "0003_recording_retention_schedule"))
    migration.install(state.apps, None)
    task = PeriodicTask.objects.select_related("crontab").get(name=name)
    assert (task.task, task.enabled, task.crontab.minute, task.crontab.hour) == (
        "tickets.expire_recordings",
        True,
        "41",
        "*",
    )
