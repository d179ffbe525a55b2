from django.apps import AppConfig


class QueuesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "queues"

    def ready(self):
        from accounts.portal import home_panel_register
        from accounts.signals import demo_data_loading
        from queues.demo import load_demo_queues

        demo_data_loading.connect(load_demo_queues, dispatch_uid="queues-demo")

        home_panel_register(
            template="queues/home_panel.html",
            context="queues.reports.home_panel",
        )
