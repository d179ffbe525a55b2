from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import ApiTokenForm
from accounts.models import ApiToken
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


# The key of a new token is in the answer to the POST that made it, and nowhere else: never cached.


@company_view
@never_cache
@require_http_methods(["GET", "POST"])
def api_token_list(request):
    """The signed-in user's API tokens; a POST makes one and shows its key, this once."""
    form = ApiTokenForm(request.POST if request.method == "POST" else None)
    created = key = None
    if form.is_valid():
        try:
            created, key = services.api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error(None, exc)  # a message about the name goes to the name field
        else:
            form = ApiTokenForm()
    return render(
        request,
        "accounts/api_token_list.html",
        {
            "tokens": selectors.api_tokens_for_user(user=request.user),
            "form": form,
            "created": created,
            "key": key,
            "api_url": request.build_absolute_uri("/api/company/"),
        },
        status=400 if form.errors else 200,
    )


@company_view
@require_POST
def api_token_revoke(request, pk):
    try:
        token = services.api_token_revoke(user=request.user, token_id=pk)
    except ApiToken.DoesNotExist:
        raise Http404("No such API token.") from None
    messages.success(request, f"API token “{token.name}” is revoked: requests with it are refused.")
    return redirect("portal:api-tokens", company_slug=request.company.slug)
