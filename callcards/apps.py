from django.apps import AppConfig


class CallcardsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "callcards"

    def ready(self):
        from accounts.portal import home_panel_register
        from accounts.signals import demo_data_loading
        from callcards import receivers
        from callcards.demo import load_demo_callcards
        from queues.signals import queue_call_disposed

        queue_call_disposed.connect(receivers.queue_call_disposed, dispatch_uid="callcards-disposition")
        demo_data_loading.connect(load_demo_callcards, dispatch_uid="callcards-demo")
        home_panel_register(
            template="callcards/home_panel.html",
            context="callcards.selectors.home_panel",
        )
