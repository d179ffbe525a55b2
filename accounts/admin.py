from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import Company, User


class CompanyUserInline(admin.TabularInline):
    model = User
    fields = ["username", "email", "is_active", "last_login"]
    readonly_fields = ["last_login"]
    extra = 0
    show_change_link = True


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "currency", "billing_email", "has_webhook", "active"]
    list_filter = ["active", "currency"]
    search_fields = ["name", "slug", "billing_email"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [CompanyUserInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "active"]}),
        ("Locale and billing", {"fields": ["time_zone", "currency", "billing_email"]}),
        ("Event push", {"fields": ["webhook_url", "webhook_secret"]}),
    ]

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
