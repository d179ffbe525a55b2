"""Clear call times no PBX can have made (pushed before the check existed): the year 9999 cannot even
be shown in zones east of UTC, and made the company's call pages fail."""

import datetime as dt

from django.db import migrations
from django.db.models import Q
from django.utils import timezone

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
TIMES = ("started_at", "answered_at", "ended_at")


def clear_impossible_times(apps, schema_editor):
    CallRecord = apps.get_model("telephony", "CallRecord")
    latest = timezone.now() + dt.timedelta(days=1)
    impossible = Q()
    for name in TIMES:
        impossible |= Q(**{f"{name}__lt": EARLIEST}) | Q(**{f"{name}__gt": latest})
    for record in CallRecord.objects.filter(impossible).iterator():
        for name in TIMES:
            when = getattr(record, name)
            if when is not None and not EARLIEST <= when <= latest:
                setattr(record, name, None)
        ended, started, answered = record.ended_at, record.started_at, record.answered_at
        record.duration = max(0, int((ended - started).total_seconds())) if ended and started else 0
        record.billsec = max(0, int((ended - answered).total_seconds())) if ended and answered else 0
        record.save(update_fields=[*TIMES, "duration", "billsec"])


class Migration(migrations.Migration):
    dependencies = [("telephony", "0001_initial")]

    operations = [migrations.RunPython(clear_impossible_times, migrations.RunPython.noop)]
