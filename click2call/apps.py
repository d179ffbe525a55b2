from django.apps import AppConfig


class Click2callConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "click2call"

    def ready(self):
        from accounts.signals import demo_data_loading
        from click2call.demo import load_demo_click2call

        demo_data_loading.connect(load_demo_click2call, dispatch_uid="click2call-demo")
