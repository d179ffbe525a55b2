from django.apps import AppConfig


class CallcardsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "callcards"

    def ready(self):
        from accounts.signals import demo_data_loading
        from callcards.demo import load_demo_callcards

        demo_data_loading.connect(load_demo_callcards, dispatch_uid="callcards-demo")
