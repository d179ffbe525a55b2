import hashlib
import ipaddress
import math
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.text import slugify

from accounts.models import ApiToken, Company, User


@transaction.atomic
def company_create(
    *,
    name: str,
    slug: str = "",
    time_zone: str = "UTC",
    currency: str = "EUR",
    billing_email: str = "",
    webhook_url: str = "",
) -> Company:
    """Create a company after validating every field, as the admin form would."""
    company = Company(
        name=name,
        slug=slug or slugify(name)[:60],
        time_zone=time_zone,
        currency=currency,
        billing_email=billing_email,
        webhook_url=webhook_url,
    )
    company.full_clean()
    company.save()
    return company


@transaction.atomic
def company_user_create(
    *,
    company: Company,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    """A login for the company's portal and API; never staff. The password must pass the validators."""
    user = User(company=company, username=username, email=email, first_name=first_name, last_name=last_name)
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


class LoginThrottled(Exception):
    """Too many failed logins for the account or the client address: no password is checked."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        minutes = math.ceil(retry_after / 60)
        super().__init__(
            f"Too many failed logins for this account or address; "
            f"try again in {minutes} minute{'' if minutes == 1 else 's'}."
        )


def login_authenticate(*, request, username: str, password: str) -> User | None:
    """The user these credentials name, or None; the one password check of every login path.

    Failures count per account and per client address; reaching a limit locks that account or
    address for LOGIN_LOCKOUT_SECONDS, during which even the right password is refused (raises
    LoginThrottled) without running the password hasher.
    """
    subjects = _throttle_subjects(request=request, username=username)
    now = time.time()
    locked_until = max(cache.get_many([s.lock_key for s in subjects]).values(), default=0)
    if locked_until > now:
        raise LoginThrottled(math.ceil(locked_until - now))
    # PostgreSQL refuses NUL in a query string: a 500, not a failed login, if it got that far.
    user = None if "\x00" in username else authenticate(request, username=username, password=password)
    if user is not None:
        cache.delete(subjects[0].failures_key)
        return user
    locked_until = max(_login_failure_record(subject, now=now) for subject in subjects)
    if locked_until:
        raise LoginThrottled(math.ceil(locked_until - now))
    return None


class _ThrottleSubject:
    def __init__(self, kind, value, limit):
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        self.failures_key = f"login-failures:{kind}:{digest}"
        self.lock_key = f"login-lock:{kind}:{digest}"
        self.limit = limit


def _throttle_subjects(*, request, username):
    # One account however its name is cased or composed, in case a lookup ignores case.
    account = User.normalize_username(username).casefold()
    return [
        _ThrottleSubject("account", account, settings.LOGIN_FAILURES_PER_ACCOUNT),
        _ThrottleSubject("address", client_address(request), settings.LOGIN_FAILURES_PER_ADDRESS),
    ]


def client_address(request) -> str:
    """The client's address (behind TRUSTED_PROXY_HOPS proxies), an IPv6 host counted by its /64."""
    address = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    # One IPv6 host usually owns a whole /64; counting per address would let it rotate freely.
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def _login_failure_record(subject, *, now):
    """Count one failure; returns when the subject's lock ends if this one reached the limit, else 0."""
    window = settings.LOGIN_LOCKOUT_SECONDS
    cache.add(subject.failures_key, 0, timeout=window)
    try:
        count = cache.incr(subject.failures_key)
    except ValueError:  # expired between add and incr
        cache.set(subject.failures_key, 1, timeout=window)
        count = 1
    # FileBasedCache's incr drops the timeout; touching keeps the count for a window after the last failure.
    cache.touch(subject.failures_key, timeout=window)
    if count < subject.limit:
        return 0
    cache.set(subject.lock_key, now + window, timeout=window)
    return now + window


# -- API tokens -------------------------------------------------------------------------------------

# Enough for a few integrations and a rotation; a script stuck in a loop stops here.
API_TOKENS_PER_USER = 20
# last_used_at is a hint for people ("used 3 minutes ago"): written at most once a minute per token,
# not on every request.
API_TOKEN_USE_PRECISION = timedelta(minutes=1)


def _api_token_digest(key: str, secret: str) -> str:
    return salted_hmac("accounts.ApiToken", key, secret=secret, algorithm="sha256").hexdigest()


@transaction.atomic
def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new API token of an active company user, answered with its key: the key is not kept (only its
    HMAC under SECRET_KEY), so this is the one time anyone sees it."""
    # The user's row is the lock: two creations at once cannot both pass the count.
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.company_id is None or not user.is_active:
        raise ValidationError("Only an active company user has API tokens; staff use the admin.")
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= API_TOKENS_PER_USER:
        raise ValidationError(f"You have {API_TOKENS_PER_USER} active API tokens: revoke one first.")
    key = ApiToken.PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name.strip(),
        key_digest=_api_token_digest(key, settings.SECRET_KEY),
        key_hint=key[: len(ApiToken.PREFIX) + 6],
    )
    token.full_clean()
    token.save()
    return token, key


def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens: requests with it get 401 from then on. Another user's
    token (of this company or another) is ApiToken.DoesNotExist, as if it did not exist."""
    token = ApiToken.objects.get(pk=token_id, user=user)
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def api_token_authenticate(*, key: str) -> ApiToken | None:
    """The active token of this key whose user is active, its user loaded; None for any other key.

    Keys made under an older SECRET_KEY still work while it is listed in SECRET_KEY_FALLBACKS.
    Notes the time of use, to the minute. The company's own state is the API permission's to judge.
    """
    digests = [
        _api_token_digest(key, secret) for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    ]
    token = (
        ApiToken.objects.select_related("user__company")
        .filter(key_digest__in=digests, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    stale = now - API_TOKEN_USE_PRECISION
    if token.last_used_at is None or token.last_used_at < stale:
        ApiToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk).update(
            last_used_at=now
        )
        token.last_used_at = now
    return token
