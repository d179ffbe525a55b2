from django.db import transaction
from django.utils.text import slugify

from accounts.models import Company, User


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
    """A login for the company's portal and API; never staff."""
    user = User(company=company, username=username, email=email, first_name=first_name, last_name=last_name)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user
