from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.urls import reverse
from django.utils.html import format_html

from accounts.forms import AdminLoginForm
from accounts.models import ApiToken, Company, User

admin.site.login_form = AdminLoginForm


class CompanyUserInline(admin.TabularInline):
    """The company's users, to review and edit; new ones come from the user form, which asks a password."""

    model = User
    fields = ["username", "email", "is_active", "last_login"]
    readonly_fields = ["last_login"]
    extra = 0
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "currency", "billing_email", "has_webhook", "active"]
    list_filter = ["active", "currency"]
    search_fields = ["name", "slug", "billing_email"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [CompanyUserInline]
    readonly_fields = ["add_user_link"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "active"]}),
        (
            "Locale and billing",
            {"fields": ["time_zone", "currency", "billing_email", "postal_address", "vat_id", "tax_rate"]},
        ),
        ("Event push", {"fields": ["webhook_url", "webhook_secret"]}),
        ("Users", {"fields": ["add_user_link"]}),
    ]

    @admin.display(description="New user")
    def add_user_link(self, obj):
        if obj is None or obj.pk is None:
            return "Save the company first, then add its users."
        url = f"{reverse('admin:accounts_user_add')}?{urlencode({'company': obj.pk})}"
        return format_html('<a href="{}" class="addlink">Add a user to {}</a>', url, obj.name)

    @admin.display(boolean=True, description="Webhook")
    def has_webhook(self, obj):
        return bool(obj.webhook_url)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "email", "company", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_active", "company"]
    list_select_related = ["company"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        ("Company", {"fields": ["company"]}),
    ]
    add_fieldsets = [
        *BaseUserAdmin.add_fieldsets,
        ("Company", {"fields": ["company"]}),
    ]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Users make and revoke their tokens in the portal (the key is shown to them only); staff see them,
    and delete one to refuse it at once."""

    list_display = ["name", "user", "key_hint", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user__company"]
    search_fields = ["name", "user__username", "user__company__name", "key_hint"]
    readonly_fields = ["user", "name", "key_hint", "created_at", "last_used_at", "revoked_at"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False
