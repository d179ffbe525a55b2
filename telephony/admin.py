from django import forms
from django.contrib import admin, messages

from config.exports import ExportAdminMixin
from telephony.models import CallRecord, DialRoute, PbxServer, PushToken, WebhookDelivery
from telephony.resources import CallRecordResource
from telephony.selectors import pbx_server_is_up


class DialRouteInline(admin.TabularInline):
    model = DialRoute
    extra = 1


class PbxServerForm(forms.ModelForm):
    class Meta:
        model = PbxServer
        fields = [
            "name",
            "enabled",
            "outbound_caller_id",
            "ami_host",
            "ami_port",
            "ami_username",
            "ami_secret",
            "agi_bind_host",
            "agi_bind_port",
        ]
        # The secret is written, never shown back; left empty, it stays as it was.
        widgets = {"ami_secret": forms.PasswordInput(render_value=False)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["ami_secret"].required = False
            self.fields["ami_secret"].help_text = "Leave empty to keep the current secret."

    def clean_ami_secret(self):
        return self.cleaned_data["ami_secret"] or self.instance.ami_secret


@admin.register(PbxServer)
class PbxServerAdmin(admin.ModelAdmin):
    form = PbxServerForm
    list_display = [
        "name",
        "ami_address",
        "ami_username",
        "enabled",
        "health",
        "lease_owner",
        "event_lag",
        "last_event_at",
        "last_error",
    ]
    list_filter = ["enabled", "state"]
    readonly_fields = [
        "state",
        "state_changed_at",
        "last_event_at",
        "last_error",
        "lease_owner",
        "lease_expires_at",
        "event_lag",
        "events_timestamped",
    ]
    inlines = [DialRouteInline]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "outbound_caller_id"]}),
        ("AMI", {"fields": ["ami_host", "ami_port", "ami_username", "ami_secret"]}),
        ("FastAGI", {"fields": ["agi_bind_host", "agi_bind_port"]}),
        ("Health (reported by the pbx process)", {"fields": readonly_fields}),
    ]

    @admin.display(description="AMI")
    def ami_address(self, obj):
        return f"{obj.ami_host}:{obj.ami_port}"

    @admin.display(description="up", boolean=True)
    def health(self, obj):
        return pbx_server_is_up(obj)


@admin.register(CallRecord)
class CallRecordAdmin(ExportAdminMixin, admin.ModelAdmin):
    """Call records are evidence (billing, disputes): staff read and export them, nobody edits them."""

    resource_classes = [CallRecordResource]
    list_display = [
        "started_at",
        "company",
        "app",
        "direction",
        "caller",
        "callee",
        "disposition",
        "duration",
        "billsec",
        "hangup_cause",
    ]
    list_filter = ["disposition", "direction", "app", "company", "source"]
    list_select_related = ["company"]
    search_fields = ["uniqueid", "linkedid", "caller", "callee", "app_ref", "channel"]
    date_hierarchy = "started_at"
    raw_id_fields = ["parent", "company", "server"]

    def has_add_permission(self, request):
        return False  # records come from the PBX only

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Deliveries are evidence of what was sent: looked at, never added or edited by hand."""

    list_display = ["created_at", "company", "event", "status", "attempts", "last_status_code", "last_error"]
    list_filter = ["status", "event", "company"]
    list_select_related = ["company"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PushToken)
class PushTokenAdmin(admin.ModelAdmin):
    """The key is made when the token is saved and shown whole once, in the message that follows."""

    list_display = ["company", "key_hint", "active", "created_at"]
    list_filter = ["active"]
    list_select_related = ["company"]
    raw_id_fields = ["company"]

    def get_fields(self, request, obj=None):
        return ["company", "active"] if obj is None else ["company", "key_hint", "active", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["company", "key_hint", "created_at"]

    def response_add(self, request, obj, post_url_continue=None):
        messages.warning(request, f"The key of this push token, shown only this once: {obj.key}")
        return super().response_add(request, obj, post_url_continue)
