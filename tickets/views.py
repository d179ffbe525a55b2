"""The company portal's ticket line pages: the lines and their settings, a line's technicians (the
hunt order, the one in charge), the SMS settings, the log (one row per hop, the seed's line) with
its CSV, and a call's page with its recording, played in the page and downloaded.

Every user of the company opens them; anyone else gets a 404, for the pages and for the recording
files alike. Thin: forms check input, tickets.services.lines writes, tickets.selectors reads.
"""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.portal import company_view
from config.exports import export_response
from tickets import forms, selectors
from tickets.resources import TicketHopResource
from tickets.services import lines
from tickets.services.messages import hop_log_line

PAGE_SIZE = 50
# Rows in one download: a web worker's answer must come well within its timeout.
EXPORT_MAX_ROWS = 20_000


def recording_dir() -> Path:
    # TICKETS_RECORDING_DIR comes with the call part's settings; until then the design's default.
    return Path(getattr(settings, "TICKETS_RECORDING_DIR", settings.VAR_DIR / "recordings"))


def recording_path(call) -> Path | None:
    """The call's recording file, only when it is inside the recording directory (a stored path
    such as ../../etc/passwd or an absolute one is refused, as is a link out of it)."""
    if not call.recording or call.recording_deleted_at:
        return None
    base = recording_dir().resolve()
    path = (base / call.recording).resolve()
    if not path.is_relative_to(base) or path == base:
        return None
    return path


def log_parts(line: str) -> list[str]:
    """The seed's log line cut after each `_`, where a narrow screen may wrap it (<wbr>): it is one
    word of some 80 characters, wider than a phone. Copied, it reads as one line again."""
    parts = line.split("_")
    return [f"{part}_" for part in parts[:-1]] + [parts[-1]]


def _form_errors(form, error: ValidationError):
    """A service's refusal shown on the form that asked for it."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _line_or_404(request, pk):
    line = selectors.line_for_company(company=request.company, pk=pk)
    if line is None:
        raise Http404("No such ticket line.")
    return line


def _technician_or_404(request, pk):
    technician = selectors.technician_of_company(company=request.company, pk=pk)
    if technician is None:
        raise Http404("No such technician.")
    return technician


def _call_or_404(request, pk):
    call = selectors.call_for_company(company=request.company, pk=pk)
    if call is None:
        raise Http404("No such call.")
    return call


# Lines


@company_view
@require_GET
def line_list(request):
    return render(
        request, "tickets/line_list.html", {"lines": selectors.lines_for_company(company=request.company)}
    )


@company_view
@require_http_methods(["GET", "POST"])
def line_edit(request, pk):
    line = _line_or_404(request, pk)
    form = forms.TicketLineForm(request.POST or None, request.FILES or None, instance=line)
    if request.method == "POST" and form.is_valid():
        try:
            lines.ticket_line_update(line=form.instance, next_ticket=form.next_ticket_change())
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Line {line.name} saved.")
            return redirect("tickets:technicians", company_slug=request.company.slug, pk=line.pk)
    if request.method == "POST":
        line = _line_or_404(request, pk)  # the page shows what is stored, the form what was sent
    return render(
        request,
        "tickets/line_form.html",
        {"form": form, "line": line},
        status=400 if request.method == "POST" else 200,
    )


# Technicians


def _technicians_page(request, line, *, form=None, status=200):
    technicians = selectors.technicians_of_line(line=line)
    return render(
        request,
        "tickets/technician_list.html",
        {
            "line": line,
            "technicians": technicians,
            "hunt": selectors.hunt_order(line=line, technicians=technicians),
            "form": form or forms.TechnicianForm(line=line),
        },
        status=status,
    )


@company_view
@require_http_methods(["GET", "POST"])
def technician_list(request, pk):
    """A line's technicians in hunt order, the hunt that makes, and the form to add one."""
    line = _line_or_404(request, pk)
    if request.method == "GET":
        return _technicians_page(request, line)
    form = forms.TechnicianForm(request.POST, line=line)
    if form.is_valid():
        try:
            technician = lines.technician_save(
                technician=form.instance, sms_password=form.cleaned_data["new_sms_password"] or None
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"{technician.name} added, rung last.")
            return redirect("tickets:technicians", company_slug=request.company.slug, pk=line.pk)
    return _technicians_page(request, line, form=form, status=400)


@company_view
@require_http_methods(["GET", "POST"])
def technician_edit(request, pk):
    technician = _technician_or_404(request, pk)
    line = technician.line
    form = forms.TechnicianForm(request.POST or None, instance=technician, line=line)
    if request.method == "POST" and form.is_valid():
        try:
            lines.technician_save(
                technician=form.instance,
                sms_password=form.cleaned_data["new_sms_password"] or None,
                clear_sms_password=form.cleaned_data.get("clear_sms_password", False),
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"{technician.name} saved.")
            return redirect("tickets:technicians", company_slug=request.company.slug, pk=line.pk)
    return render(
        request,
        "tickets/technician_form.html",
        {"form": form, "technician": technician, "line": line},
        status=400 if request.method == "POST" else 200,
    )


@company_view
@require_POST
def technician_deactivate(request, pk):
    technician = _technician_or_404(request, pk)
    lines.technician_deactivate(technician=technician)
    messages.success(request, f"{technician.name} is inactive: no longer rung.")
    return redirect("tickets:technicians", company_slug=request.company.slug, pk=technician.line_id)


@company_view
@require_POST
def technician_move(request, pk):
    technician = _technician_or_404(request, pk)
    offset = {"up": -1, "down": 1}.get(request.POST.get("direction"))
    if offset is None:
        messages.error(request, "Move a technician up or down.")
    else:
        lines.technician_move(technician=technician, offset=offset)
    return redirect("tickets:technicians", company_slug=request.company.slug, pk=technician.line_id)


@company_view
@require_POST
def technician_in_charge(request, pk):
    """One click: this technician is rung first (the seed's follow-me/CFU)."""
    technician = _technician_or_404(request, pk)
    try:
        lines.ticket_line_in_charge_set(line=technician.line, technician=technician)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{technician.name} is in charge: rung first.")
    return redirect("tickets:technicians", company_slug=request.company.slug, pk=technician.line_id)


# SMS settings


@company_view
@require_http_methods(["GET", "POST"])
def sms_settings_edit(request):
    current = selectors.sms_settings_of(company=request.company)
    form = forms.SmsSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            lines.sms_settings_save(
                settings=form.instance,
                company=request.company,
                secret=form.cleaned_data["new_secret"] or None,
            )
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, "SMS settings saved.")
            return redirect("tickets:sms", company_slug=request.company.slug)
    return render(
        request, "tickets/sms_settings.html", {"form": form}, status=400 if request.method == "POST" else 200
    )


# The log


@company_view
@never_cache
@require_GET
def hop_list(request):
    form = forms.HopFilterForm(request.GET, company=request.company)
    if not form.is_valid():
        return render(request, "tickets/hop_list.html", {"form": form, "rows": []}, status=400)
    hops = selectors.hops_for_company(company=request.company, **form.filters())
    if request.GET.get("format") == "csv":
        return _export(request, hops)
    page = Paginator(hops, PAGE_SIZE).get_page(request.GET.get("page"))
    tz = request.company.tzinfo
    rows = [
        (
            hop,
            log_parts(hop_log_line(hop=hop, caller=hop.call.caller, tz=tz)),
            [message for message in hop.call.messages.all() if message.hop_id == hop.pk],
        )
        for hop in page
    ]
    return render(
        request,
        "tickets/hop_list.html",
        {
            "form": form,
            "page": page,
            "rows": rows,
            "live": selectors.has_live_calls(hops=page),
            "filtered": any(request.GET.get(name) for name in form.fields),
        },
    )


def _export(request, hops):
    rows = hops.count()
    if rows > EXPORT_MAX_ROWS:
        messages.error(
            request,
            f"{rows:,} rows is more than one download holds ({EXPORT_MAX_ROWS:,}): "
            "narrow the log (a line, a period) and download each part.",
        )
        query = request.GET.copy()
        query.pop("format")
        return redirect(f"{request.path}?{query.urlencode()}" if query else request.path)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return export_response(
        TicketHopResource(),
        hops,
        filename=f"tickets-log-{request.company.slug}-{stamp}",
    )


# A call and its recording


@company_view
@never_cache
@require_GET
def call_detail(request, pk):
    call = _call_or_404(request, pk)
    page = selectors.call_page(call=call)
    tz = request.company.tzinfo
    path = recording_path(call)
    return render(
        request,
        "tickets/call_detail.html",
        {
            "call": call,
            "hops": [(hop, log_parts(hop_log_line(hop=hop, caller=call.caller, tz=tz))) for hop in page.hops],
            "messages_sent": [(message, log_parts(message.body)) for message in page.messages],
            "recording_present": path is not None and path.is_file(),
            "live": call.state in selectors.LIVE_CALL_STATES,
        },
    )


@company_view
@require_GET
def call_recording(request, pk):
    """The recording as a WAV, to play in the page (inline) or to keep (?download=1)."""
    call = _call_or_404(request, pk)
    path = recording_path(call)
    if path is None or not path.is_file():
        raise Http404("No recording of this call.")
    download = request.GET.get("download") == "1"
    response = FileResponse(
        path.open("rb"), as_attachment=download, filename=path.name, content_type="audio/wav"
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
