from django.apps import AppConfig


class CallcardsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "callcards"

    def ready(self):
        from callcards import receivers
        from queues.signals import queue_call_disposed

        queue_call_disposed.connect(receivers.queue_call_disposed, dispatch_uid="callcards-disposition")
