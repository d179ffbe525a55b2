from django.apps import AppConfig


class Click2callConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "click2call"
