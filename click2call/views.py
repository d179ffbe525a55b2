"""The company portal's click2call pages: calls and their comments, campaigns, operators, tariffs
and rates, blocked prefixes, comment types. Thin: forms check input, services write, selectors read."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from import_export.formats import base_formats

from accounts.portal import company_view
from click2call import forms, selectors
from click2call.models import BlockedPrefix, CallRequest, Campaign, CommentType, Invoice, Operator, Tariff
from click2call.resources import CallRequestResource, RateResource, UnreadableFile, rate_file_check
from click2call.services import campaigns, comments, dialing, rate_imports
from config import words
from config.exports import export_response

PAGE_SIZE = 50
FAILED = (CallRequest.Status.FAILED_USER, CallRequest.Status.FAILED_COMPANY)


def _form_errors(form, error: ValidationError):
    """A service's refusal shown on the form that asked for it."""
    if hasattr(error, "error_dict"):
        for field, messages_ in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages_)
    else:
        form.add_error(None, error.messages)


# Calls


@company_view
@require_GET
def call_list(request):
    form = forms.CallFilterForm(request.GET, company=request.company)
    statuses = [(value, words.C2C_REQUEST_STATUS[value]) for value in CallRequest.Status.values]
    context = {"form": form, "query": request.GET, "statuses": statuses}
    if not form.is_valid():
        return render(request, "click2call/call_list.html", {**context, "page": []}, status=400)
    filters = {name: value for name, value in form.cleaned_data.items() if value}
    calls = selectors.call_requests_for_company(company=request.company, **filters)
    totals = selectors.call_requests_totals(requests=calls)
    if request.GET.get("format") == "csv":
        resource = CallRequestResource(
            comment_columns=selectors.comment_columns(company=request.company),
            currency=request.company.currency,
            totals=totals,
        )
        return export_response(
            resource,
            selectors.call_requests_with_comments(requests=calls),
            filename=f"c2c-calls-{request.company.slug}",
        )
    paginator = Paginator(calls, PAGE_SIZE)
    paginator.count = totals.count  # counted with the totals already (a cached property)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "click2call/call_list.html", {**context, "page": page, "totals": totals})


def _call_detail(request, call, comment_forms=None, status=200):
    types = selectors.comment_types_for_company(company=request.company, active_only=True)
    comment_forms = comment_forms or {}
    return render(
        request,
        "click2call/call_detail.html",
        {
            "call": call,
            "attempts": selectors.call_request_attempts(request=call),
            "comments": selectors.call_comments_of(request=call),
            "reminder": selectors.call_reminder_of(request=call),
            "comment_forms": [
                comment_forms.get(kind.pk) or forms.CallCommentForm(comment_type=kind) for kind in types
            ],
            "can_call_back": call.status in FAILED,
        },
        status=status,
    )


@company_view
@require_GET
def call_detail(request, pk):
    call = get_object_or_404(CallRequest.objects.select_related("campaign"), company=request.company, pk=pk)
    return _call_detail(request, call)


@company_view
@require_POST
def call_callback(request, pk):
    """The company rings the visitor back by hand: its operators first, then the visitor."""
    call = get_object_or_404(CallRequest, company=request.company, pk=pk)
    try:
        dialing.request_callback(request=call, user=request.user)
    except dialing.CallbackRefused as refused:
        messages.error(request, f"No call back: {refused}")
    else:
        messages.success(request, f"Calling back {call.number}: your operators ring first.")
    return redirect("click2call:call", company_slug=request.company.slug, pk=call.pk)


@company_view
@require_POST
def call_comment_add(request, pk):
    call = get_object_or_404(CallRequest.objects.select_related("campaign"), company=request.company, pk=pk)
    chosen = forms.CommentTypeChoiceForm(request.POST)
    kind = get_object_or_404(
        selectors.comment_types_for_company(company=request.company, active_only=True),
        pk=chosen.cleaned_data["comment_type"] if chosen.is_valid() else None,
    )
    form = forms.CallCommentForm(request.POST, comment_type=kind)
    if form.is_valid():
        comments.call_comment_add(request=call, comment_type=kind, values=form.values, author=request.user)
        messages.success(request, f"{kind.name} added.")
        return redirect("click2call:call", company_slug=request.company.slug, pk=call.pk)
    return _call_detail(request, call, comment_forms={kind.pk: form}, status=400)


# Comment types


@company_view
@require_GET
def comment_type_list(request):
    return render(
        request,
        "click2call/comment_type_list.html",
        {"types": selectors.comment_types_for_company(company=request.company)},
    )


@company_view
@require_http_methods(["GET", "POST"])
def comment_type_edit(request, pk=None):
    kind = get_object_or_404(CommentType, company=request.company, pk=pk) if pk else CommentType()
    data = request.POST if request.method == "POST" else None
    form = forms.CommentTypeForm(data, instance=kind, company=request.company)
    fields = forms.CommentFieldFormSet(data, instance=kind, prefix="fields")
    if data is not None and form.is_valid() and fields.is_valid():
        # Blank extra rows have no cleaned data; a ticked "delete" leaves its field out, which removes it.
        kept = [
            field_form.save(commit=False)
            for field_form in fields.forms
            if field_form.cleaned_data and not field_form.cleaned_data.get("DELETE")
        ]
        try:
            campaigns.comment_type_save(comment_type=form.instance, fields=kept)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Comment type {kind.name} saved.")
            return redirect("click2call:comment-types", company_slug=request.company.slug)
    status = 400 if data is not None else 200
    return render(
        request,
        "click2call/comment_type_form.html",
        {"form": form, "fields": fields, "kind": kind},
        status=status,
    )


# Campaigns


@company_view
@require_GET
def campaign_list(request):
    return render(
        request,
        "click2call/campaign_list.html",
        {"campaigns": selectors.campaigns_for_company(company=request.company)},
    )


@company_view
@require_http_methods(["GET", "POST"])
def campaign_edit(request, pk=None):
    campaign = get_object_or_404(Campaign, company=request.company, pk=pk) if pk else Campaign()
    form = forms.CampaignForm(
        request.POST or None, request.FILES or None, instance=campaign, company=request.company
    )
    if request.method == "POST" and form.is_valid():
        try:
            campaigns.campaign_save(campaign=form.instance)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Campaign {campaign.name} saved.")
            return redirect("click2call:campaign", company_slug=request.company.slug, pk=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "click2call/campaign_form.html", {"form": form, "campaign": campaign}, status=status
    )


def _campaign_page(request, campaign, *, operators_form=None, secret_key=None, status=200):
    current = {
        link.operator_id: link.position + 1 for link in selectors.campaign_operators(campaign=campaign)
    }
    return render(
        request,
        "click2call/campaign_detail.html",
        {
            "campaign": campaign,
            "operators": selectors.campaign_operators(campaign=campaign),
            "operators_form": operators_form
            or forms.CampaignOperatorsForm(
                operators=selectors.operators_for_company(company=request.company), current=current
            ),
            "snippet": f'<script src="{request.scheme}://{request.get_host()}/c2c/{campaign.public_key}/widget.js"></script>',
            "secret_key": secret_key,
            "has_requests": campaign.requests.exists(),
        },
        status=status,
    )


@company_view
@never_cache
@require_GET
def campaign_detail(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("tariff"), company=request.company, pk=pk)
    return _campaign_page(request, campaign)


@company_view
@require_POST
def campaign_operators(request, pk):
    campaign = get_object_or_404(Campaign, company=request.company, pk=pk)
    form = forms.CampaignOperatorsForm(
        request.POST,
        operators=selectors.operators_for_company(company=request.company),
        current={},
    )
    if form.is_valid():
        try:  # the service checks each number against the campaign (blocked, rated), once
            campaigns.campaign_operators_set(campaign=campaign, operators=form.ordered_operators())
        except ValidationError as error:
            _form_errors(form, error)
    if not form.is_valid():
        return _campaign_page(request, campaign, operators_form=form, status=400)
    messages.success(request, "Operators saved.")
    return redirect("click2call:campaign", company_slug=request.company.slug, pk=campaign.pk)


@company_view
@require_POST
def campaign_deactivate(request, pk):
    campaign = get_object_or_404(Campaign, company=request.company, pk=pk)
    campaigns.campaign_deactivate(campaign=campaign)
    messages.success(request, f"Campaign {campaign.name} is inactive: its banner takes no more requests.")
    return redirect("click2call:campaign", company_slug=request.company.slug, pk=campaign.pk)


@company_view
@require_POST
def campaign_delete(request, pk):
    campaign = get_object_or_404(Campaign, company=request.company, pk=pk)
    try:
        campaigns.campaign_delete(campaign=campaign)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("click2call:campaign", company_slug=request.company.slug, pk=campaign.pk)
    messages.success(request, f"Campaign {campaign.name} deleted.")
    return redirect("click2call:campaigns", company_slug=request.company.slug)


@company_view
@require_POST
def campaign_public_key_rotate(request, pk):
    campaign = get_object_or_404(Campaign, company=request.company, pk=pk)
    campaigns.campaign_public_key_rotate(campaign=campaign)
    messages.warning(
        request, "New public key: put the new snippet on your site, the old one no longer works."
    )
    return redirect("click2call:campaign", company_slug=request.company.slug, pk=campaign.pk)


@company_view
@never_cache
@require_POST
def campaign_secret_key_rotate(request, pk):
    """The new secret is in this answer only: a reload shows its hint."""
    campaign = get_object_or_404(Campaign.objects.select_related("tariff"), company=request.company, pk=pk)
    secret_key = campaigns.campaign_secret_key_rotate(campaign=campaign)
    return _campaign_page(request, campaign, secret_key=secret_key)


# Operators


@company_view
@require_http_methods(["GET", "POST"])
def operator_list(request, pk=None):
    """The company's operators, with the form to add one (or to edit the one at `pk`)."""
    operator = get_object_or_404(Operator, company=request.company, pk=pk) if pk else Operator()
    form = forms.OperatorForm(request.POST or None, instance=operator, company=request.company)
    if request.method == "POST" and form.is_valid():
        try:  # the service checks the number (blocked, rated by its campaigns), once
            campaigns.operator_save(operator=form.instance)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Operator {operator.name} saved.")
            return redirect("click2call:operators", company_slug=request.company.slug)
    return render(
        request,
        "click2call/operator_list.html",
        {
            "operators": selectors.operators_for_company(company=request.company),
            "form": form,
            "operator": operator,
        },
        status=400 if request.method == "POST" else 200,
    )


# Tariffs and rates


@company_view
@require_http_methods(["GET", "POST"])
def tariff_list(request):
    form = forms.TariffForm(request.POST or None, company=request.company)
    if request.method == "POST" and form.is_valid():
        try:
            tariff = campaigns.tariff_save(tariff=form.instance)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            return redirect("click2call:tariff", company_slug=request.company.slug, pk=tariff.pk)
    return render(
        request,
        "click2call/tariff_list.html",
        {"tariffs": selectors.tariffs_for_company(company=request.company), "form": form},
        status=400 if request.method == "POST" else 200,
    )


@company_view
@require_http_methods(["GET", "POST"])
def tariff_detail(request, pk):
    """A tariff's rates, searched by prefix, with the forms to add a rate and to import a carrier's table."""
    tariff = get_object_or_404(Tariff, company=request.company, pk=pk)
    rate_form = forms.RateForm(request.POST or None, tariff=tariff)
    if request.method == "POST" and rate_form.is_valid():
        rate = campaigns.rate_save(rate=rate_form.instance)
        messages.success(request, f"Rate {rate.prefix} saved.")
        return redirect("click2call:tariff", company_slug=request.company.slug, pk=tariff.pk)
    return _tariff_page(request, tariff, rate_form=rate_form, status=400 if request.method == "POST" else 200)


def _tariff_page(request, tariff, *, rate_form=None, import_form=None, status=200):
    search = forms.RateSearchForm(request.GET)
    prefix = search.cleaned_data["prefix"] if search.is_valid() else ""
    rates = selectors.rates_of_tariff(tariff=tariff, prefix=prefix)
    return render(
        request,
        "click2call/tariff_detail.html",
        {
            "tariff": tariff,
            "search": search,
            "page": Paginator(rates, PAGE_SIZE).get_page(request.GET.get("page")),
            "rate_form": rate_form or forms.RateForm(tariff=tariff),
            "import_form": import_form or forms.RateImportForm(),
            "last_import": selectors.rate_imports_of_tariff(tariff=tariff).first(),
        },
        status=status,
    )


@company_view
@require_POST
def tariff_import(request, pk):
    """A carrier's table into the tariff, as a job (click2call.services.rate_imports): the answer is
    the job's page, which follows its progress and says how it ended."""
    tariff = get_object_or_404(Tariff, company=request.company, pk=pk)
    form = forms.RateImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _tariff_page(request, tariff, import_form=form, status=400)
    upload = form.cleaned_data["file"]
    content = upload.read()
    try:
        # What can be told at once (not a workbook, not text) is told here; the rows in the job.
        rate_file_check(content, file_name=upload.name)
        job = rate_imports.rate_import_start(
            tariff=tariff, file_name=upload.name, content=content, user=request.user
        )
    except (UnreadableFile, ValidationError) as exc:
        form.add_error("file", exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
        return _tariff_page(request, tariff, import_form=form, status=400)
    return redirect(
        "click2call:tariff-import-detail", company_slug=request.company.slug, pk=tariff.pk, job=job.pk
    )


@company_view
@require_GET
def tariff_import_detail(request, pk, job):
    """An import's progress (the page reloads itself while it runs) and its outcome."""
    tariff = get_object_or_404(Tariff, company=request.company, pk=pk)
    rate_import = get_object_or_404(selectors.rate_imports_of_tariff(tariff=tariff), pk=job)
    return render(request, "click2call/rate_import.html", {"tariff": tariff, "job": rate_import})


@company_view
@require_GET
def tariff_export(request, pk):
    tariff = get_object_or_404(Tariff, company=request.company, pk=pk)
    file_format = base_formats.XLSX() if request.GET.get("format") == "xlsx" else None
    return export_response(
        RateResource(tariff=tariff),
        selectors.rates_of_tariff(tariff=tariff),
        filename=f"rates-{tariff.pk}",
        file_format=file_format,
    )


# Blocked prefixes


@company_view
@require_http_methods(["GET", "POST"])
def blocked_list(request):
    form = forms.BlockedPrefixForm(request.POST or None, company=request.company)
    if request.method == "POST" and form.is_valid():
        try:
            campaigns.blocked_prefix_add(company=request.company, **form.cleaned_data)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Numbers starting with {form.instance.prefix} are never called.")
            return redirect("click2call:blocked", company_slug=request.company.slug)
    return render(
        request,
        "click2call/blocked_list.html",
        {"blocked": selectors.blocked_prefixes_for_company(company=request.company), "form": form},
        status=400 if request.method == "POST" else 200,
    )


@company_view
@require_POST
def blocked_delete(request, pk):
    blocked = get_object_or_404(BlockedPrefix, company=request.company, pk=pk)
    blocked.delete()
    messages.success(request, f"{blocked.prefix} is no longer blocked.")
    return redirect("click2call:blocked", company_slug=request.company.slug)


# Invoices


@company_view
@require_GET
def invoice_list(request):
    invoices = selectors.invoices_for_company(company=request.company)
    page = Paginator(invoices, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "click2call/invoice_list.html", {"page": page})


@company_view
@require_GET
def invoice_pdf(request, pk):
    return invoice_pdf_response(get_object_or_404(Invoice, pk=pk, company=request.company))


def invoice_pdf_response(invoice: Invoice) -> HttpResponse:
    """The invoice's PDF as issued, to download (the portal's and the admin's)."""
    response = HttpResponse(bytes(invoice.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.filename}"'
    return response
