"""The default beat schedules (settings.BEAT_SCHEDULE_DEFAULTS), created where missing: a fresh
database gets them all at `migrate`, an existing one keeps the schedules its admins edited."""

from django.db import migrations


def install(apps, schema_editor):
    from config.schedules import schedules_install

    schedules_install(apps=apps)


class Migration(migrations.Migration):
    dependencies = [("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
