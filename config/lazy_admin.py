"""The admin, its ModelAdmins imported by the processes that use them, not by every django.setup().

Django's AdminConfig imports every app's admin module at setup, and with them django-import-export's
admin, tablib and openpyxl (about 25 MiB a process): the pbx process and the Celery beat serve no
page. Here they are imported by the URL configuration (config/urls.py, before `admin.site.urls`)
and by the admin's system checks, which check every ModelAdmin as before whichever runs first.
"""

from django.contrib import admin
from django.contrib.admin.apps import SimpleAdminConfig
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks


def check_admin_app_discovered(app_configs, **kwargs):
    admin.autodiscover()
    return check_admin_app(app_configs, **kwargs)


class AdminConfig(SimpleAdminConfig):
    def ready(self):
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_admin_app_discovered, checks.Tags.admin)
