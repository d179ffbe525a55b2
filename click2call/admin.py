from django import forms
from django.contrib import admin, messages
from import_export.admin import ImportExportModelAdmin
from import_export.forms import ConfirmImportForm, ImportForm

from click2call.models import (
    BlockedPrefix,
    CallAttempt,
    CallComment,
    CallRequest,
    Campaign,
    CampaignOperator,
    CommentField,
    CommentType,
    Operator,
    Rate,
    Tariff,
)
from click2call.resources import RateResource
from click2call.selectors import campaigns_by_key_forget
from click2call.services import campaigns
from config.exports import SPREADSHEET_FORMATS


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
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


class RateImportForm(ImportForm):
    tariff = forms.ModelChoiceField(queryset=Tariff.objects.select_related("company"), required=True)


class RateConfirmImportForm(ConfirmImportForm):
    tariff = forms.ModelChoiceField(queryset=Tariff.objects.all(), widget=forms.HiddenInput)


@admin.register(Rate)
class RateAdmin(ImportExportModelAdmin):
    """Rates in bulk from a carrier's table (prefix, destination, price); the import form names the tariff."""

    resource_classes = [RateResource]
    formats = SPREADSHEET_FORMATS
    import_form_class = RateImportForm
    confirm_form_class = RateConfirmImportForm
    list_display = ["prefix", "destination", "price", "tariff"]
    list_filter = ["tariff__company", "tariff"]
    list_select_related = ["tariff__company"]
    search_fields = ["=prefix", "destination"]
    raw_id_fields = ["tariff"]
    list_per_page = 100

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form:
            initial["tariff"] = import_form.cleaned_data["tariff"].pk
        return initial

    def get_import_resource_kwargs(self, request, **kwargs):
        resource_kwargs = super().get_import_resource_kwargs(request, **kwargs)
        form = kwargs.get("form")
        if form is not None and getattr(form, "cleaned_data", None) and form.cleaned_data.get("tariff"):
            resource_kwargs["tariff"] = form.cleaned_data["tariff"]
        return resource_kwargs

    def get_import_data_kwargs(self, **kwargs):
        data_kwargs = super().get_import_data_kwargs(**kwargs)
        data_kwargs["rollback_on_validation_errors"] = True
        return data_kwargs


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


@admin.register(CallRequest)
class CallRequestAdmin(admin.ModelAdmin):
    """Requests are evidence of what a visitor asked and what was done: read, never added or edited here."""

    list_display = [
        "created_at",
        "company",
        "campaign",
        "number",
        "status",
        "destination",
        "tries",
        "finished_at",
    ]
    list_filter = ["status", "country", "company", "campaign"]
    list_select_related = ["company", "campaign"]
    search_fields = ["=number", "name", "carrier", "destination", "status_token"]
    date_hierarchy = "created_at"
    inlines = [CallAttemptInline, CallCommentInline]

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
