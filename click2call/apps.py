from django.apps import AppConfig


class Click2callConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "click2call"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from accounts.models import Company
        from accounts.signals import demo_data_loading
        from click2call.demo import load_demo_click2call
        from click2call.models import Campaign
        from click2call.selectors import campaigns_by_key_forget

        demo_data_loading.connect(load_demo_click2call, dispatch_uid="click2call-demo")
        for signal in (post_save, post_delete):
            for sender in (Campaign, Company):
                signal.connect(campaigns_by_key_forget, sender=sender, dispatch_uid="c2c-campaign-keys")
