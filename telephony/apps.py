from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "telephony"

    def ready(self):
        from accounts.portal import home_panel_register
        from accounts.signals import demo_data_loading
        from telephony.demo import load_demo_pbx

        demo_data_loading.connect(load_demo_pbx, dispatch_uid="telephony-demo-pbx")
        home_panel_register(
            template="telephony/home_panel.html",
            context="telephony.selectors.home_panel",
        )
