"""The company portal's call card pages: batches with their usage, the cards and a card's page (its
history, calls, alerts, holder, and its PIN on request), the call log, the usage report with its
chart, the company's settings; lists export to CSV or XLSX with their filters.

Only a user holding callcards.callcard_admin (the seed's callcard_admin) opens any of them: for
everyone else each is a 404, as for another company's pages, so the section does not even show it
exists. Thin: forms check input, services write, selectors read.
"""

from functools import wraps

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from import_export.formats import base_formats

from accounts.portal import company_view
from callcards import charts, forms, pins, selectors
from callcards.lifecycle import Status
from callcards.models import CardBatch
from callcards.resources import BatchUsageResource, CardCallResource, CardResource
from callcards.services import holders
from config.exports import export_response

PAGE_SIZE = 50
BATCH_PAGE_SIZE = 25
PERMISSION = "callcards.callcard_admin"
GENERATING = (CardBatch.Job.PENDING, CardBatch.Job.RUNNING)
# Rows exported within one request: import-export writes some 3,000 rows a second to CSV and 1,000 to
# XLSX on a small machine, and a web worker's answer must come well within its timeout (30 s).
EXPORT_MAX_ROWS = 20_000
EXPORT_FORMATS = {"csv": base_formats.CSV, "xlsx": base_formats.XLSX}


def callcard_view(view):
    """A company page for its callcard admins only: a 404 for anyone else (never a 403, which would
    tell a user that cards exist and that someone else may see them)."""

    @company_view
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.has_perm(PERMISSION):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def _card_or_404(request, pk):
    card = selectors.card_for_company(company=request.company, pk=pk)
    if card is None:
        raise Http404("No such card.")
    return card


def _export(request, resource, queryset, *, name):
    """The list as a download; a list too long for one answer is refused with a word on the page."""
    rows = len(queryset) if isinstance(queryset, list) else queryset.count()
    if rows > EXPORT_MAX_ROWS:
        messages.error(
            request,
            f"{rows:,} rows is more than one download holds ({EXPORT_MAX_ROWS:,}): "
            "narrow the list (a batch, a status, a period) and download each part.",
        )
        query = request.GET.copy()
        query.pop("format")
        return redirect(f"{request.path}?{query.urlencode()}" if query else request.path)
    file_format = EXPORT_FORMATS[request.GET["format"]]()
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return export_response(
        resource,
        queryset,
        filename=f"callcards-{name}-{request.company.slug}-{stamp}",
        file_format=file_format,
    )


def _page(request, items, size=PAGE_SIZE):
    # get_page: a page number that is no number, or beyond the last, shows the first or the last.
    return Paginator(items, size).get_page(request.GET.get("page"))


# Batches and their usage


def _batches(request):
    """A page of the company's batches, newest first, and their usage."""
    page = _page(request, selectors.batches_for_company(company=request.company), BATCH_PAGE_SIZE)
    on_page = selectors.batches_for_company(company=request.company).filter(pk__in=[b.pk for b in page])
    return page, selectors.batches_with_usage(company=request.company, batches=on_page)


@callcard_view
@never_cache
@require_GET
def batch_list(request):
    page, usage = _batches(request)
    # While a batch is being made, its row refreshes itself (static/js/live_sections.js).
    generating = any(row.batch.job in GENERATING for row in usage)
    return render(
        request, "callcards/batch_list.html", {"page": page, "usage": usage, "generating": generating}
    )


@callcard_view
@require_GET
def usage_report(request):
    if request.GET.get("format") in EXPORT_FORMATS:
        every = selectors.batches_with_usage(company=request.company)
        return _export(request, BatchUsageResource(), every, name="usage")
    page, usage = _batches(request)
    return render(
        request,
        "callcards/usage_report.html",
        {"page": page, "usage": usage, "chart": charts.usage_chart(usage), "legend": charts.legend()},
    )


# Cards


@callcard_view
@require_GET
def card_list(request):
    form = forms.CardFilterForm(request.GET, company=request.company)
    context = {"form": form, "statuses": Status.choices}
    if not form.is_valid():
        return render(request, "callcards/card_list.html", {**context, "page": []}, status=400)
    filters = {name: value for name, value in form.cleaned_data.items() if value}
    cards = selectors.cards_for_company(company=request.company, **filters)
    if request.GET.get("format") in EXPORT_FORMATS:
        return _export(request, CardResource(), cards, name="cards")
    return render(request, "callcards/card_list.html", {**context, "page": _page(request, cards)})


def _card_page(request, card, *, holder_form=None, pin=None, status=200):
    return render(
        request,
        "callcards/card_detail.html",
        {
            "card": card,
            "history": selectors.card_page(card=card),
            "holder_form": holder_form or forms.CardHolderForm(instance=card),
            "pin": pin,
        },
        status=status,
    )


@callcard_view
@never_cache
@require_GET
def card_detail(request, pk):
    return _card_page(request, _card_or_404(request, pk))


@callcard_view
@require_POST
def card_holder(request, pk):
    card = _card_or_404(request, pk)
    form = forms.CardHolderForm(request.POST, instance=card)
    if form.is_valid():
        try:
            holders.card_holder_update(
                card=card,
                name=form.cleaned_data["name"],
                email=form.cleaned_data["email"],
                comments=form.cleaned_data["comments"],
                user=request.user.get_username(),
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Card {card.card_id}: holder saved.")
            return redirect("callcards:card", company_slug=request.company.slug, pk=card.pk)
    card.refresh_from_db()  # the page shows what is stored, the form what was sent
    return _card_page(request, card, holder_form=form, status=400)


@callcard_view
@never_cache
@require_POST
def card_pin(request, pk):
    """The PIN, in this answer only (never cached; a reload shows the button again)."""
    card = _card_or_404(request, pk)
    try:
        pin = holders.card_pin_reveal(card=card, user=request.user.get_username())
    except pins.PinKeyMismatch:
        messages.error(
            request,
            "This PIN was sealed under another PIN key than the platform's: it cannot be shown. "
            "Ask your operator (CALLCARDS_PIN_KEY).",
        )
        return _card_page(request, card, status=409)
    return _card_page(request, card, pin=pin)


# The call log


@callcard_view
@require_GET
def call_list(request):
    form = forms.CallFilterForm(request.GET, company=request.company)
    if not form.is_valid():
        return render(request, "callcards/call_list.html", {"form": form, "page": []}, status=400)
    filters = {name: value for name, value in form.cleaned_data.items() if value}
    calls = selectors.card_calls_for_company(company=request.company, **filters)
    if request.GET.get("format") in EXPORT_FORMATS:
        return _export(request, CardCallResource(), calls, name="calls")
    return render(request, "callcards/call_list.html", {"form": form, "page": _page(request, calls)})


# Settings


@callcard_view
@require_http_methods(["GET", "POST"])
def settings_edit(request):
    current = selectors.callcard_settings_of(company=request.company)
    form = forms.CallcardSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        holders.callcard_settings_save(
            company=request.company,
            low_balance_minutes=form.cleaned_data["low_balance_minutes"],
            alert_email=form.cleaned_data["alert_email"],
        )
        messages.success(request, "Call card settings saved.")
        return redirect("callcards:settings", company_slug=request.company.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "callcards/settings.html", {"form": form}, status=status)
