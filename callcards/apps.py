from django.apps import AppConfig


class CallcardsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "callcards"
