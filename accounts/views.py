from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from accounts import selectors
from accounts.portal import company_view, home_panels


@login_required
def portal_entry(request):
    """Send each user where they work: staff to the admin, company users to their portal."""
    user = request.user
    if user.company_id and user.company.active:
        return redirect("portal:home", company_slug=user.company.slug)
    if user.is_staff:
        return redirect("admin:index")
    logout(request)
    messages.error(request, "This login belongs to no active company. Ask your operator.")
    return redirect("login")


@company_view
def home(request):
    return render(
        request,
        "accounts/home.html",
        {
            "summary": selectors.company_summary(company=request.company),
            "panels": home_panels(request),
        },
    )


@company_view
def user_list(request):
    return render(
        request, "accounts/user_list.html", {"users": selectors.company_users(company=request.company)}
    )
