"""Ticket lines in the staff admin: lines with their technicians, the companies' SMS settings, and
the calls, hops (the log, exported to CSV or XLSX) and messages, which are the platform's record and
read only.

Secrets (the SMS settings' secret, a technician's SMS user name and password) are written and never
shown back: the field is empty on the page, left empty it keeps the stored value, "forget" empties
it; staff who may only view see whether one is set, never the value.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from config.exports import ExportAdminMixin
from tickets.models import SmsSettings, Technician, TicketCall, TicketHop, TicketLine, TicketMessage
from tickets.resources import TicketCallResource, TicketHopResource
from tickets.services.lines import ticket_line_next_ticket_check, ticket_line_next_ticket_set
from tickets.services.messages import hop_log_line


class WriteOnlySecretsForm(forms.ModelForm):
    """A form whose `secret_fields` are written, never rendered back."""

    secret_fields: tuple[str, ...] = ()
    forget_secrets = forms.BooleanField(
        required=False, label="Forget the stored secrets", help_text="empties them on save"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            field = self.fields[name]
            field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            field.required = False
            stored = self.instance.pk and getattr(self.instance, name)
            field.help_text = "Set: leave empty to keep it." if stored else "Not set."

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            if cleaned.get("forget_secrets"):
                cleaned[name] = ""
            elif not cleaned.get(name):
                cleaned[name] = getattr(self.instance, name)
        return cleaned


class SecretsHiddenFromViewersMixin:
    """Staff who may view but not change would get every field as text: not the secrets."""

    secret_fields: tuple[str, ...] = ()

    def get_exclude(self, request, obj=None):
        excluded = list(super().get_exclude(request, obj) or [])
        if not self.has_change_permission(request, obj):
            excluded += [*self.secret_fields, "forget_secrets"]
        return excluded

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not self.has_change_permission(request, obj):
            hidden = {*self.secret_fields, "forget_secrets"}
            fields = [name for name in fields if name not in hidden]
        return fields


class ReadOnlyMixin:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# -- lines and technicians -------------------------------------------------------------------------

TECHNICIAN_SECRETS = ("sms_username", "sms_password")


class TechnicianForm(WriteOnlySecretsForm):
    secret_fields = TECHNICIAN_SECRETS

    class Meta:
        model = Technician
        fields = [
            "line", "name", "position", "internal", "mobile", "sms_number", "im_address", "sms_username",
            "sms_password", "active",
        ]  # fmt: skip


class TechnicianInline(SecretsHiddenFromViewersMixin, admin.TabularInline):
    model = Technician
    form = TechnicianForm
    secret_fields = TECHNICIAN_SECRETS
    fields = [
        "position", "name", "internal", "mobile", "sms_number", "im_address", "sms_username", "sms_password",
        "forget_secrets", "active",
    ]  # fmt: skip
    extra = 0


class TicketLineForm(forms.ModelForm):
    class Meta:
        model = TicketLine
        fields = [
            "company", "server", "name", "number", "route", "active", "announcement_sound",
            "announcement_file", "confirm_digit", "confirm_seconds", "in_charge", "ring_seconds", "wrap",
            "rounds", "next_ticket", "message_template", "record", "retention_days",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The one in charge is one of the line's own technicians (none before the line has any).
        if "in_charge" in self.fields:
            self.fields["in_charge"].queryset = Technician.objects.filter(line_id=self.instance.pk or 0)

    def clean_next_ticket(self):
        value = self.cleaned_data["next_ticket"]
        if self.instance.pk and value is not None and "next_ticket" in self.changed_data:
            try:
                ticket_line_next_ticket_check(line_id=self.instance.pk, next_ticket=value)
            except ValidationError as error:
                raise forms.ValidationError(error.message_dict["next_ticket"]) from None
        return value


@admin.register(TicketLine)
class TicketLineAdmin(admin.ModelAdmin):
    form = TicketLineForm
    list_display = [
        "name", "number", "company", "server", "in_charge", "next_ticket", "ring_seconds", "record",
        "retention_days", "active",
    ]  # fmt: skip
    list_filter = ["active", "record", "wrap", "server", "company"]
    list_select_related = ["company", "server", "in_charge"]
    search_fields = ["name", "=number", "company__name"]
    inlines = [TechnicianInline]
    fieldsets = [
        (None, {"fields": ["company", "server", "name", "number", "route", "active"]}),
        (
            "Caller",
            {"fields": ["announcement_sound", "announcement_file", "confirm_digit", "confirm_seconds"]},
        ),
        ("Hunt", {"fields": ["in_charge", "ring_seconds", "wrap", "rounds"]}),
        ("Tickets", {"fields": ["next_ticket", "message_template", "record", "retention_days"]}),
    ]

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Calls move the counter while the page is open: it is never written from the page's copy,
        # only when changed, under the line's lock (tickets.services.lines).
        obj.save(update_fields=[name for name in form.Meta.fields if name != "next_ticket"])
        if "next_ticket" in form.changed_data:
            try:
                obj.next_ticket = ticket_line_next_ticket_set(
                    line_id=obj.pk, next_ticket=form.cleaned_data["next_ticket"]
                )
            except ValidationError as error:
                messages.error(request, " ".join(error.message_dict["next_ticket"]))


@admin.register(Technician)
class TechnicianAdmin(SecretsHiddenFromViewersMixin, admin.ModelAdmin):
    form = TechnicianForm
    secret_fields = TECHNICIAN_SECRETS
    fields = [*TechnicianForm.Meta.fields, "forget_secrets"]
    list_display = [
        "name",
        "line",
        "position",
        "internal",
        "mobile",
        "sms_number",
        "sms_credentials",
        "active",
    ]
    list_filter = ["active", "line__company", "line"]
    list_select_related = ["line"]
    search_fields = ["name", "internal", "mobile", "sms_number", "line__name"]

    @admin.display(description="SMS credentials", boolean=True)
    def sms_credentials(self, technician):
        return bool(technician.sms_username or technician.sms_password)


# -- SMS settings ----------------------------------------------------------------------------------


class SmsSettingsForm(WriteOnlySecretsForm):
    secret_fields = ("secret",)
    # A gateway's URL typed without its scheme is an https one (the model's validator still checks it).
    url = forms.URLField(
        assume_scheme="https", required=False, max_length=200, help_text="the gateway's send URL"
    )

    class Meta:
        model = SmsSettings
        fields = [
            "company", "provider", "url", "method", "auth", "username", "secret", "parameters", "sender",
            "country_prefix", "timeout_seconds",
        ]  # fmt: skip


@admin.register(SmsSettings)
class SmsSettingsAdmin(SecretsHiddenFromViewersMixin, admin.ModelAdmin):
    form = SmsSettingsForm
    secret_fields = ("secret",)
    fields = [*SmsSettingsForm.Meta.fields, "forget_secrets"]
    list_display = ["company", "provider", "url", "method", "auth", "sender", "secret_set"]
    list_filter = ["provider", "method", "auth"]
    list_select_related = ["company"]
    search_fields = ["company__name", "url"]

    @admin.display(description="secret", boolean=True)
    def secret_set(self, settings):
        return bool(settings.secret)


# -- calls, the log, messages ----------------------------------------------------------------------


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


class HopInline(ReadOnlyInline):
    model = TicketHop
    fields = [
        "sequence", "ticket", "technician_name", "called", "started_at", "ended_at", "dial_status",
        "answered", "last",
    ]  # fmt: skip
    ordering = ["sequence"]


class MessageInline(ReadOnlyInline):
    model = TicketMessage
    fields = ["channel", "to", "body", "state", "attempts", "last_error", "sent_at", "delivery_status"]


@admin.register(TicketCall)
class TicketCallAdmin(ReadOnlyMixin, ExportAdminMixin, admin.ModelAdmin):
    resource_classes = [TicketCallResource]
    list_display = [
        "started_at", "line", "company", "caller", "called", "state", "answered_by", "recorded",
        "recording_deleted_at",
    ]  # fmt: skip
    list_filter = ["state", "line__company", "line"]
    list_select_related = ["line__company", "answered_by"]
    search_fields = ["caller", "=uniqueid", "=hops__ticket"]
    date_hierarchy = "started_at"
    inlines = [HopInline, MessageInline]

    @admin.display(ordering="line__company__name")
    def company(self, call):
        return call.line.company

    @admin.display(boolean=True)
    def recorded(self, call):
        return bool(call.recording) and call.recording_deleted_at is None


class EndFilter(admin.SimpleListFilter):
    title = "end of the call"
    parameter_name = "end"

    def lookups(self, request, model_admin):
        return [("yes", "_END: the call's last hop"), ("no", "a hop the call went on from")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(last=self.value() == "yes")
        return queryset


@admin.register(TicketHop)
class TicketHopAdmin(ReadOnlyMixin, ExportAdminMixin, admin.ModelAdmin):
    """The log: a ticket per technician rung, exported with the seed's line."""

    resource_classes = [TicketHopResource]
    list_display = [
        "started_at", "ticket", "line", "technician_name", "called", "dial_status", "answered", "last",
        "log_line",
    ]  # fmt: skip
    list_filter = [EndFilter, "answered", "dial_status", "line__company", "line"]
    list_select_related = ["call", "line__company"]
    search_fields = ["=ticket", "call__caller", "technician_name", "called"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    @admin.display(description="log line")
    def log_line(self, hop):
        return hop_log_line(hop=hop, caller=hop.call.caller, tz=hop.line.company.tzinfo)


@admin.register(TicketMessage)
class TicketMessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "channel",
        "to",
        "state",
        "attempts",
        "sent_at",
        "delivery_status",
        "last_error",
    ]
    list_filter = ["channel", "state"]
    list_select_related = ["call"]
    search_fields = ["to", "=provider_reference", "=call__uniqueid"]
    date_hierarchy = "created_at"
