from django.apps import AppConfig


class TicketsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tickets"

    def ready(self):
        from accounts.signals import demo_data_loading
        from tickets.demo import load_demo_tickets

        demo_data_loading.connect(load_demo_tickets, dispatch_uid="tickets-demo")
