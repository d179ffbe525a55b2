from django import forms
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from accounts.portal import company_view
from config.exports import export_response
from telephony import selectors
from telephony.models import CallRecord
from telephony.resources import CallRecordResource

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
    records = selectors.call_records_for_company(company=request.company, **filters)
    if request.GET.get("format") == "csv":
        return export_response(
            CallRecordResource(), records.select_related("company"), filename=f"calls-{request.company.slug}"
        )
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "telephony/call_record_list.html", {**context, "page": page})


@company_view
def call_record_detail(request, pk):
    record = get_object_or_404(selectors.call_records_for_company(company=request.company), pk=pk)
    return render(
        request,
        "telephony/call_record_detail.html",
        {"record": record, "legs": record.legs.filter(company=request.company)},
    )


@company_view
def webhook_delivery_list(request):
    page = Paginator(selectors.webhook_deliveries_for_company(company=request.company), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "telephony/webhook_delivery_list.html", {"page": page})
