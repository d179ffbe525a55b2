from accounts.models import ApiToken, Company, User


def company_users(*, company: Company):
    return User.objects.filter(company=company).order_by("username")


def company_summary(*, company: Company) -> dict:
    """Figures for the portal's home page."""
    return {
        "users": User.objects.filter(company=company, is_active=True).count(),
        "webhook": bool(company.webhook_url),
    }


def api_tokens_for_user(*, user: User):
    """The user's API tokens, newest first, revoked ones too (they say when they were last used)."""
    return ApiToken.objects.filter(user=user)
