"""The beat schedule deleting ticket recordings past their line's retention (settings.
BEAT_SCHEDULE_DEFAULTS), created on an existing database too; every schedule an admin edited is
kept (config.schedules)."""

from django.db import migrations


def install(apps, schema_editor):
    from config.schedules import schedules_install

    schedules_install(apps=apps)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0002_sms_schedule")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
