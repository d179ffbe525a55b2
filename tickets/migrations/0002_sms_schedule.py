"""The beat schedule of ticket SMS left pending (settings.BEAT_SCHEDULE_DEFAULTS), created on an
existing database too; every schedule an admin edited is kept (config.schedules)."""

from django.db import migrations


def install(apps, schema_editor):
    from config.schedules import schedules_install

    schedules_install(apps=apps)


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial"), ("config", "0001_beat_schedules")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
