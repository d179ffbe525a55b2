from django.utils import timezone


class CompanyTimezoneMiddleware:
    """Show times in the signed-in company user's time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.company_id:
            timezone.activate(user.company.tzinfo)
        else:
            timezone.deactivate()
        return self.get_response(request)
