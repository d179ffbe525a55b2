from django.apps import AppConfig


class QueuesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "queues"

    def ready(self):
        from accounts.portal import home_panel_register
        from queues.reports import home_panel

        home_panel_register(
            template="queues/home_panel.html",
            context=lambda request: home_panel(company=request.company, user=request.user),
        )
