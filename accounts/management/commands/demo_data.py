"""Loads the demo data `make run` starts with; safe to run again."""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Company, User
from accounts.signals import demo_data_loading

DEMO_COMPANY = {
    "slug": "demo",
    "name": "Demo Support Ltd",
    "time_zone": "Europe/Paris",
    "currency": "EUR",
    "billing_email": "billing@demo.example",
}
STAFF_LOGIN = ("operator", "operator-demo")
COMPANY_LOGIN = ("demo", "demo-company")


class Command(BaseCommand):
    help = "Create (or reset) the demo company, a staff login and a company login."

    @transaction.atomic
    def handle(self, *args, **options):
        company, _ = Company.objects.update_or_create(slug=DEMO_COMPANY["slug"], defaults=DEMO_COMPANY)
        staff = self._login(STAFF_LOGIN, is_staff=True, is_superuser=True, company=None)
        member = self._login(COMPANY_LOGIN, is_staff=False, is_superuser=False, company=company)
        demo_data_loading.send(sender=self.__class__, company=company, write=self.stdout.write)
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write(f"  staff login (admin):      {staff.username} / {STAFF_LOGIN[1]}")
        self.stdout.write(
            f"  company login (portal):   {member.username} / {COMPANY_LOGIN[1]}  ({company.name})"
        )

    def _login(self, credentials, **fields):
        username, password = credentials
        user, _ = User.objects.update_or_create(username=username, defaults=fields)
        user.set_password(password)
        user.save(update_fields=["password"])
        return user
