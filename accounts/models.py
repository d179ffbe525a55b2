import secrets
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def generate_webhook_secret():
    return secrets.token_hex(32)


def validate_time_zone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone such as Europe/Paris.") from None


def validate_currency(value):
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValidationError("Use a three-letter ISO 4217 code such as EUR.")


class Company(models.Model):
    """A tenant: one company running its call work on the platform."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    currency = models.CharField(max_length=3, default="EUR", validators=[validate_currency])
    billing_email = models.EmailField(blank=True)
    webhook_url = models.URLField(blank=True, help_text="Call events are POSTed here, signed, when set.")
    webhook_secret = models.CharField(
        max_length=128,
        default=generate_webhook_secret,
        help_text="Signs webhook bodies (HMAC-SHA256, X-Signature header).",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

    def __str__(self):
        return self.name

    @property
    def tzinfo(self):
        return zoneinfo.ZoneInfo(self.time_zone)


class User(AbstractUser):
    """A login. Company users belong to exactly one company; staff belong to none."""

    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(company__isnull=True) | Q(is_staff=False, is_superuser=False),
                name="staff_belong_to_no_company",
            )
        ]

    def clean(self):
        super().clean()
        if self.company_id and (self.is_staff or self.is_superuser):
            raise ValidationError("Staff use the admin and belong to no company.")

    @property
    def is_company_user(self):
        return self.company_id is not None and self.is_active
