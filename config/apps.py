from django.apps import AppConfig


class PlatformConfig(AppConfig):
    """The platform-wide parts that belong to no one app: the beat schedules' defaults (their data
    migration and `manage.py schedules`)."""

    name = "config"
    verbose_name = "Platform"
