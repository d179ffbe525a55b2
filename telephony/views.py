from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.portal import company_view
from telephony import selectors
from telephony.models import CallRecord
from telephony.resources import CallRecordResource

PAGE_SIZE = 50


def _filtered_records(request):
    records = selectors.call_records_for_company(company=request.company)
    disposition = request.GET.get("disposition", "")
    if disposition in CallRecord.Disposition.values:
        records = records.filter(disposition=disposition)
    if request.GET.get("from"):
        records = records.filter(started_at__date__gte=request.GET["from"])
    if request.GET.get("to"):
        records = records.filter(started_at__date__lte=request.GET["to"])
    return records


@company_view
def call_record_list(request):
    records = _filtered_records(request)
    if request.GET.get("format") == "csv":
        response = HttpResponse(CallRecordResource().export(records).csv, content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="calls-{request.company.slug}.csv"'
        return response
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "telephony/call_record_list.html",
        {
            "page": page,
            "dispositions": CallRecord.Disposition.choices,
            "query": request.GET,
        },
    )


@company_view
def call_record_detail(request, pk):
    record = get_object_or_404(selectors.call_records_for_company(company=request.company), pk=pk)
    return render(request, "telephony/call_record_detail.html", {"record": record, "legs": record.legs.all()})


@company_view
def webhook_delivery_list(request):
    page = Paginator(selectors.webhook_deliveries_for_company(company=request.company), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "telephony/webhook_delivery_list.html", {"page": page})
