from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.portal import company_view
from config.exports import export_response
from telephony import selectors
from telephony.models import CallRecord, PushToken
from telephony.resources import CallRecordResource
from telephony.services import push, webhooks

PAGE_SIZE = 50


class CallFilterForm(forms.Form):
    disposition = forms.ChoiceField(choices=[("", "all"), *CallRecord.Disposition.choices], required=False)
    start = forms.DateField(required=False)
    end = forms.DateField(required=False)
    number = forms.CharField(max_length=80, required=False)


@company_view
def call_record_list(request):
    form = CallFilterForm(request.GET)
    context = {"form": form, "dispositions": CallRecord.Disposition.choices, "query": request.GET}
    if not form.is_valid():
        return render(request, "telephony/call_record_list.html", {**context, "page": []}, status=400)
    filters = {k: v for k, v in form.cleaned_data.items() if v}
    if request.GET.get("format") == "csv":  # the records themselves, a row per leg
        records = selectors.call_records_for_company(company=request.company, **filters)
        return export_response(
            CallRecordResource(), records.select_related("company"), filename=f"calls-{request.company.slug}"
        )
    # A row per call, as the home counts them; its legs are on its page.
    page = Paginator(selectors.calls_for_company(company=request.company, **filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "telephony/call_record_list.html", {**context, "page": page})


@company_view
def call_record_detail(request, pk):
    record = get_object_or_404(selectors.call_records_for_company(company=request.company), pk=pk)
    return render(
        request,
        "telephony/call_record_detail.html",
        {"record": record, "legs": selectors.call_legs(record=record)},
    )


@company_view
def webhook_delivery_list(request):
    page = Paginator(selectors.webhook_deliveries_for_company(company=request.company), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "telephony/webhook_delivery_list.html", {"page": page})


# The pages below show a key or a secret once: never from a cache, never again on reload.


@company_view
@never_cache
@require_http_methods(["GET", "POST"])
def push_token_list(request):
    """The company's push tokens; a POST makes one and shows its key, this once."""
    created = push.push_token_create(company=request.company) if request.method == "POST" else None
    return render(
        request,
        "telephony/push_token_list.html",
        {"tokens": selectors.push_tokens_for_company(company=request.company), "created": created},
    )


@company_view
@require_POST
def push_token_revoke(request, pk):
    try:
        token = push.push_token_revoke(company=request.company, token_id=pk)
    except PushToken.DoesNotExist:
        raise Http404("No such push token.") from None
    messages.success(request, f"Push token {token.key_hint} is revoked: pushes with it are refused.")
    return redirect("telephony:push-tokens", company_slug=request.company.slug)


@company_view
@never_cache
@require_http_methods(["GET", "POST"])
def webhook_secret(request):
    """The webhook signing secret, masked; a POST rotates it and shows the new one, this once."""
    secret = webhooks.webhook_secret_rotate(company=request.company) if request.method == "POST" else None
    return render(
        request,
        "telephony/webhook_secret.html",
        {"secret": secret, "hint": selectors.webhook_secret_hint(company=request.company)},
    )
