"""Tenancy for portal views: every portal URL starts with the company's slug.

A user reaches only their own company's pages; any other slug, and any object
of another company, is a 404 (never a 403, which would confirm it exists).
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404


def company_view(view):
    """Resolve `company_slug` to request.company, 404 unless it is the user's own active company."""

    @login_required
    @wraps(view)
    def wrapper(request, company_slug, *args, **kwargs):
        company = request.user.company
        if company is None or not company.active or company.slug != company_slug:
            raise Http404("No such company.")
        request.company = company
        return view(request, *args, **kwargs)

    return wrapper
