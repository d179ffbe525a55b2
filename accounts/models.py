import ipaddress
import secrets
import zoneinfo
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

# accounts/migrations/0003 names the validator as accounts.models.validate_plain_text.
from config.validators import validate_plain_text


def generate_webhook_secret():
    return secrets.token_hex(32)


def validate_time_zone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not an IANA time zone such as Europe/Paris.") from None


# ISO 4217 List One, the codes of currencies in use (2025), transition codes included (ANG and XCG,
# SLL and SLE, ZWL and ZWG); not the fund codes, precious metals, testing or "no currency" codes.
_ISO_4217_LIST_ONE = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS
    VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
ISO_4217_CURRENCIES = frozenset(_ISO_4217_LIST_ONE.split())


def validate_currency(value):
    if value not in ISO_4217_CURRENCIES:
        raise ValidationError(f"{value!r} is not an ISO 4217 currency code such as EUR.")


# Host names that only ever mean the operator's own machines.
_INTERNAL_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def webhook_address_is_public(address: str) -> bool:
    """A webhook may reach a globally routed unicast address only (not private, loopback,
    link-local such as the cloud metadata 169.254.169.254, multicast, reserved or unspecified)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def validate_webhook_url(value):
    """http(s) only; a literal non-public address or an internal name is refused unless
    WEBHOOK_ALLOW_PRIVATE_TARGETS. Names are checked again, resolved, at each delivery."""
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError("Use an http:// or https:// URL.")
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        return
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        public = webhook_address_is_public(host)
    except ValueError:  # a name, not an address
        public = host != "localhost" and not host.endswith(_INTERNAL_NAME_SUFFIXES)
    if not public:
        raise ValidationError(f"{host or value!r} is not a public address: webhooks go to the internet only.")


class Company(models.Model):
    """A tenant: one company running its call work on the platform."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    currency = models.CharField(max_length=3, default="EUR", validators=[validate_currency])
    billing_email = models.EmailField(blank=True)
    # What an invoice says of the company (click2call.services.invoices), copied onto each one issued.
    postal_address = models.TextField(blank=True, help_text="as printed on invoices, several lines")
    vat_id = models.CharField("VAT id", max_length=30, blank=True)
    tax_rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="percent charged on invoices, e.g. 20.00",
    )
    webhook_url = models.URLField(
        blank=True,
        validators=[validate_webhook_url],
        help_text="Call events are POSTed here, signed, when set.",
    )
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


class ApiToken(models.Model):
    """A key an API client sends as `Authorization: Bearer <key>` to act as its user, without the password.

    Only an HMAC of the key is kept (`key_digest`), so a key is shown once, when made; the lookup is one
    indexed query, not a password hasher's deliberate 0.25 s. A revoked token stays listed, refused.
    """

    PREFIX = "cct_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(
        max_length=100, validators=[validate_plain_text], help_text="what uses it, e.g. CRM sync"
    )
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self):
        return f"API token {self.name!r} of {self.user} ({self.key_hint})"

    @property
    def active(self) -> bool:
        return self.revoked_at is None
