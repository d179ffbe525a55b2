from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from click2call.forms import RateImportForm
from click2call.models import (
    BlockedPrefix,
    CallAttempt,
    CallComment,
    CallReminder,
    CallRequest,
    Campaign,
    CampaignOperator,
    CommentField,
    CommentType,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    Issuer,
    Operator,
    Rate,
    RateImport,
    Tariff,
)
from click2call.resources import RateResource, UnreadableFile, rate_file_check
from click2call.selectors import campaigns_by_key_forget
from click2call.services import campaigns, invoices, rate_imports
from click2call.views import invoice_pdf_response
from config.exports import ExportAdminMixin
from config.validators import validate_plain_text


class OperatorAdminForm(forms.ModelForm):
    def clean(self):
        # As campaigns.operator_save: a number is checked as the portal checks it (blocked prefixes,
        # rated by every campaign ringing it); a dial string is staff's own, rung as set.
        cleaned = super().clean()
        company, number = cleaned.get("company"), cleaned.get("number")
        if company and number:
            candidate = Operator(pk=self.instance.pk, company=company, number=number)
            candidate.name = cleaned.get("name") or self.instance.name
            try:
                campaigns.operator_check(operator=candidate)
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    form = OperatorAdminForm
    list_display = ["name", "company", "number", "dial_string", "active"]
    list_filter = ["active", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "number", "dial_string", "company__name"]
    raw_id_fields = ["company"]
    actions = ["deactivate"]

    @admin.action(description="Deactivate the selected operators")
    def deactivate(self, request, queryset):
        messages.success(request, f"{queryset.update(active=False)} operators deactivated.")


class CampaignOperatorFormSet(forms.BaseInlineFormSet):
    def clean(self):
        # As campaigns.campaign_operators_set: a campaign rings its own company's operators only.
        super().clean()
        for form in self.forms:
            operator = form.cleaned_data.get("operator") if form.cleaned_data else None
            if (
                operator
                and not form.cleaned_data.get("DELETE")
                and operator.company_id != self.instance.company_id
            ):
                form.add_error("operator", "An operator of the campaign's company.")


class CampaignOperatorInline(admin.TabularInline):
    model = CampaignOperator
    formset = CampaignOperatorFormSet
    extra = 1
    raw_id_fields = ["operator"]


class CampaignAdminForm(forms.ModelForm):
    def clean(self):
        # As campaigns.campaign_save: a campaign prices its calls with its own company's tariff.
        cleaned = super().clean()
        company, tariff = cleaned.get("company"), cleaned.get("tariff")
        if company and tariff and tariff.company_id != company.pk:
            self.add_error("tariff", "A tariff of the campaign's company.")
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm
    list_display = ["name", "company", "tariff", "server", "first_party", "active", "created_at"]
    list_filter = ["active", "first_party", "ringing", "server", "company"]
    list_select_related = ["company", "tariff", "server"]
    search_fields = ["name", "public_key", "company__name"]
    raw_id_fields = ["company", "tariff"]
    readonly_fields = ["public_key", "secret_key_hint", "created_at"]
    inlines = [CampaignOperatorInline]
    actions = ["deactivate", "rotate_secret_key"]

    @admin.action(description="Deactivate the selected campaigns (their banners stop taking requests)")
    def deactivate(self, request, queryset):
        messages.success(request, f"{queryset.update(active=False)} campaigns deactivated.")
        campaigns_by_key_forget()  # update() sends no post_save

    @admin.action(description="Make a new secret key (shown once)")
    def rotate_secret_key(self, request, queryset):
        for campaign in queryset:
            key = campaigns.campaign_secret_key_rotate(campaign=campaign)
            messages.warning(request, f"New secret key of {campaign.name}, shown only this once: {key}")

    def has_delete_permission(self, request, obj=None):
        # A campaign with requests is evidence of what visitors asked: deactivate it instead.
        return super().has_delete_permission(request, obj) and not (obj and obj.requests.exists())


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = ["name", "company"]
    list_filter = ["company"]
    list_select_related = ["company"]
    search_fields = ["name", "company__name"]
    raw_id_fields = ["company"]


class RateImportAdminForm(RateImportForm):
    tariff = forms.ModelChoiceField(queryset=Tariff.objects.select_related("company"))


@admin.register(Rate)
class RateAdmin(ExportAdminMixin, admin.ModelAdmin):
    """Rates in bulk from a carrier's table (prefix, destination, price): the import names the tariff
    and runs as the portal's does, a job (click2call.services.rate_imports) followed on its page."""

    resource_classes = [RateResource]
    change_list_template = "admin/click2call/rate/change_list.html"
    list_display = ["prefix", "destination", "price", "tariff"]
    list_filter = ["tariff__company", "tariff"]
    list_select_related = ["tariff__company"]
    search_fields = ["=prefix", "destination"]
    raw_id_fields = ["tariff"]
    list_per_page = 100

    def get_urls(self):
        rate_import = path(
            "import/", self.admin_site.admin_view(self.import_view), name="click2call_rate_import"
        )
        return [rate_import, *super().get_urls()]

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RateImportAdminForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            content = upload.read()
            try:
                rate_file_check(content, file_name=upload.name)
                job = rate_imports.rate_import_start(
                    tariff=form.cleaned_data["tariff"],
                    file_name=upload.name,
                    content=content,
                    user=request.user,
                )
            except UnreadableFile as exc:
                form.add_error("file", str(exc))
            except ValidationError as exc:
                form.add_error("file", exc.messages[0])
            else:
                return redirect("admin:click2call_rateimport_change", job.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import a carrier's rates",
            "form": form,
        }
        return TemplateResponse(
            request, "admin/click2call/rate/import.html", context, status=400 if form.errors else 200
        )


@admin.register(RateImport)
class RateImportAdmin(admin.ModelAdmin):
    """Rate imports as they run and as they ended; read only, started from the rates' Import button."""

    list_display = ["file_name", "tariff", "status", "progress", "requested_by", "created_at", "finished_at"]
    list_filter = ["status", "tariff__company"]
    list_select_related = ["tariff__company", "requested_by"]
    fields = [
        "tariff",
        "file_name",
        "status",
        "progress",
        "outcome",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    @admin.display(description="written")
    def progress(self, job):
        return f"{job.written} of {job.to_write} new or changed rates ({job.rows} in the file)"

    @admin.display(description="outcome")
    def outcome(self, job):
        if job.status == RateImport.Status.DONE:
            return f"{job.created_count} new, {job.changed_count} changed"
        if not job.problems:
            return "—"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((p,) for p in job.problems)))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BlockedPrefix)
class BlockedPrefixAdmin(admin.ModelAdmin):
    list_display = ["prefix", "company", "reason"]
    list_filter = ["company"]
    list_select_related = ["company"]
    search_fields = ["prefix", "reason"]
    raw_id_fields = ["company"]


class CallAttemptInline(admin.TabularInline):
    model = CallAttempt
    extra = 0
    can_delete = False
    fields = [
        "seq",
        "kind",
        "first_party",
        "status",
        "detail",
        "channel_id",
        "requested_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CallCommentInline(admin.TabularInline):
    model = CallComment
    extra = 0
    fields = ["comment_type", "values", "author", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class CallReminderInline(admin.TabularInline):
    model = CallReminder
    extra = 0
    can_delete = False
    fields = ["state", "to", "created_at", "sent_at", "attempts", "last_error", "next_try_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CallReminder)
class CallReminderAdmin(admin.ModelAdmin):
    """Reminders sent, waiting (a mail server down: the error and the next try) or not sent, and why."""

    list_display = ["created_at", "company", "request", "to", "state", "attempts", "sent_at", "last_error"]
    list_filter = ["state", "company"]
    list_select_related = ["company", "request"]
    search_fields = ["to", "=request__number"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in CallReminder._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CallRequest)
class CallRequestAdmin(admin.ModelAdmin):
    """Requests are evidence of what a visitor asked and what was done: read, never added or edited here."""

    list_display = [
        "created_at",
        "company",
        "campaign",
        "number",
        "status",
        "price",
        "destination",
        "tries",
        "finished_at",
    ]
    list_filter = ["status", "country", "company", "campaign"]
    list_select_related = ["company", "campaign"]
    search_fields = ["=number", "name", "carrier", "destination", "status_token"]
    date_hierarchy = "created_at"
    inlines = [CallAttemptInline, CallReminderInline, CallCommentInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in CallRequest._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CallAttempt)
class CallAttemptAdmin(admin.ModelAdmin):
    """Attempts are evidence of who was rung and when: read only, never deleted."""

    list_display = ["created_at", "request", "seq", "kind", "first_party", "status", "detail", "finished_at"]
    list_filter = ["status", "kind", "first_party"]
    list_select_related = ["request"]
    search_fields = ["=channel_id", "request__number", "detail"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in CallAttempt._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CommentFieldInline(admin.TabularInline):
    model = CommentField
    extra = 1


@admin.register(CommentType)
class CommentTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "company", "active"]
    list_filter = ["active", "company"]
    list_select_related = ["company"]
    search_fields = ["name", "company__name"]
    raw_id_fields = ["company"]
    inlines = [CommentFieldInline]
    actions = ["deactivate"]

    @admin.action(description="Deactivate the selected comment types")
    def deactivate(self, request, queryset):
        messages.success(request, f"{queryset.update(active=False)} comment types deactivated.")


@admin.register(CallComment)
class CallCommentAdmin(admin.ModelAdmin):
    list_display = ["created_at", "request", "comment_type", "author"]
    list_filter = ["comment_type__company", "comment_type"]
    list_select_related = ["request", "comment_type", "author"]
    search_fields = ["request__number"]
    raw_id_fields = ["request", "comment_type", "author"]


# Invoices


@admin.register(Issuer)
class IssuerAdmin(admin.ModelAdmin):
    list_display = ["name", "number_prefix", "vat_id", "email", "default"]

    def has_delete_permission(self, request, obj=None):
        # Its invoices keep it (PROTECT); one without any may go.
        return super().has_delete_permission(request, obj) and not (obj and obj.invoices.exists())


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ["description", "quantity", "unit_price", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CreditNoteForm(forms.Form):
    net = forms.DecimalField(
        label="Amount before tax", max_digits=14, decimal_places=2, min_value=Decimal("0.01")
    )
    reason = forms.CharField(max_length=200, validators=[validate_plain_text])


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Issued invoices and credit notes: read only, never deleted; the PDF to download, a credit note
    to issue on an invoice. Issuing one is an invoice run's."""

    list_display = [
        "number",
        "kind",
        "company",
        "period_start",
        "gross",
        "currency",
        "mail_state",
        "mail_error",
        "issued_at",
        "pdf_link",
    ]
    list_filter = ["kind", "mail_state", "issuer", "period_start"]
    list_select_related = ["company"]
    search_fields = ["number", "company__name", "company_name"]
    inlines = [InvoiceLineInline]
    exclude = ["pdf"]
    readonly_fields = ["pdf_link", "credit_link"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields if f.name != "pdf"] + ["pdf_link", "credit_link"]

    @admin.display(description="PDF")
    def pdf_link(self, invoice):
        url = reverse("admin:click2call_invoice_pdf", args=[invoice.pk])
        return format_html('<a href="{}">{}</a>', url, invoice.filename)

    @admin.display(description="Correction")
    def credit_link(self, invoice):
        if invoice.kind != Invoice.Kind.INVOICE:
            return "-"
        url = reverse("admin:click2call_invoice_credit", args=[invoice.pk])
        return format_html('<a href="{}">Issue a credit note on it</a>', url)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("<int:pk>/pdf/", self.admin_site.admin_view(self.pdf_view), name="click2call_invoice_pdf"),
            path(
                "<int:pk>/credit/",
                self.admin_site.admin_view(self.credit_view),
                name="click2call_invoice_credit",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice, pk=pk)
        return invoice_pdf_response(invoice)

    def credit_view(self, request, pk):
        if not request.user.has_perm("click2call.add_invoice"):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice, pk=pk, kind=Invoice.Kind.INVOICE)
        form = CreditNoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                note = invoices.credit_note_issue(
                    invoice=invoice, issued_by=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                self.message_user(request, f"{note} issued on invoice {invoice.number}.")
                return redirect("admin:click2call_invoice_change", note.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Credit note on invoice {invoice.number}",
            "invoice": invoice,
            "left": invoice.net - invoices.credited_net(invoice=invoice),
            "form": form,
        }
        return TemplateResponse(
            request, "admin/click2call/invoice/credit.html", context, status=400 if form.errors else 200
        )


RUN_FIELDS = ["company", "period_start"]


class InvoiceRunForm(forms.ModelForm):
    period_start = forms.DateField(
        label="Month", help_text="any day of the month to invoice (YYYY-MM-DD): the whole month is billed"
    )

    class Meta:
        model = InvoiceRun
        fields = ["company", "period_start"]


@admin.register(InvoiceRun)
class InvoiceRunAdmin(admin.ModelAdmin):
    """Staff issue one company's invoice of a month: a Celery job whose progress shows here."""

    form = InvoiceRunForm
    list_display = ["__str__", "company", "status", "calls", "invoice", "error", "requested_by", "created_at"]
    list_filter = ["status"]
    list_select_related = ["company", "invoice", "requested_by"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return RUN_FIELDS
        return [*RUN_FIELDS, "status", "calls", "invoice", "error", "requested_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        run = invoices.invoice_run_request(requested_by=request.user, **form.cleaned_data)
        obj.pk = run.pk
        obj.refresh_from_db()
        self.message_user(request, "The invoice is being issued by a worker: see its progress here.")

    def response_add(self, request, obj, post_url_continue=None):
        return redirect("admin:click2call_invoicerun_change", obj.pk)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)
