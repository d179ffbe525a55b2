"""Tenancy for portal views: every portal URL starts with the company's slug.

A user reaches only their own company's pages; any other slug, and any object
of another company, is a 404 (never a 403, which would confirm it exists).
"""

from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.utils.module_loading import import_string


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


@dataclass(frozen=True)
class HomePanel:
    """A part of the portal's home page that an app contributes (accounts knows no app)."""

    template: str
    # The dotted path of a function (*, company, user) -> dict, given to the template as `panel`:
    # imported when a page shows it, not by every process at setup (a report module imports the
    # spreadsheet libraries).
    context: str


_home_panels: list[HomePanel] = []


def home_panel_register(*, template: str, context: str):
    """Called from an app's AppConfig.ready(); panels show in the order the apps are installed."""
    if all(panel.template != template for panel in _home_panels):
        _home_panels.append(HomePanel(template, context))


def home_panels(request) -> list[dict]:
    return [
        {
            "template": panel.template,
            "context": import_string(panel.context)(company=request.company, user=request.user),
        }
        for panel in _home_panels
    ]
