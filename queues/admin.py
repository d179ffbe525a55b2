"""Admin screens for the queues. Writes go through the services (status changes emit their events,
every write bumps changed_at for the dispatcher); members, offers and events are the dispatcher's
record and are read-only here."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from queues.models import Agent, Member, Offer, Queue, QueueEvent, Tier
from queues.services import config
from queues.services.agents import agent_status_set


class TierInline(admin.TabularInline):
    model = Tier
    extra = 0
    fields = ["agent", "level", "position", "state"]
    readonly_fields = ["state"]
    autocomplete_fields = ["agent"]
    # A tier is changed or removed on its own page, through tier_update and tier_del (refused while
    # it carries a call); here tiers are listed and added.
    can_delete = False

    def has_change_permission(self, request, obj=None):
        return False


class ThroughServicesAdmin(admin.ModelAdmin):
    """A change saved through the service that decides it (`update`), on the row it locks: a
    refusal (the row is in a call now) is shown on the form again, nothing saved."""

    # The row's identity is set when it is added; what is the dispatcher's is never set on add.
    fixed_on_change: tuple = ()
    fixed_on_add: tuple = ()

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        fixed = self.fixed_on_change if obj else self.fixed_on_add
        return fields + [name for name in fixed if name not in fields]

    def update(self, obj, changes: dict):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            self.update(obj, changes)
        except (config.ConfigRefused, ValidationError) as exc:
            request.queues_refused = True
            text = str(exc) if isinstance(exc, config.ConfigRefused) else " ".join(exc.messages)
            self.message_user(request, text, messages.ERROR)

    def save_related(self, request, form, formsets, change):
        if not getattr(request, "queues_refused", False):
            super().save_related(request, form, formsets, change)

    def log_change(self, request, obj, message):
        if not getattr(request, "queues_refused", False):  # nothing changed
            return super().log_change(request, obj, message)
        return None

    def response_change(self, request, obj):
        if getattr(request, "queues_refused", False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["__str__", "strategy", "server", "loaded", "max_wait_time", "changed_at"]
    list_filter = ["loaded", "strategy", "server", "company"]
    search_fields = ["name", "company__slug", "company__name"]
    list_select_related = ["company", "server"]
    readonly_fields = ["last_agent", "changed_at"]
    inlines = [TierInline]
    actions = ["load", "unload"]

    @admin.action(description="Load the selected queues (the dispatcher serves them)")
    def load(self, request, queryset):
        for queue in queryset:
            config.queue_load(queue=queue)
        self.message_user(request, f"{len(queryset)} queue(s) loaded.")

    @admin.action(description="Unload the selected queues (the dispatcher stops serving them)")
    def unload(self, request, queryset):
        for queue in queryset:
            config.queue_unload(queue=queue)
        self.message_user(request, f"{len(queryset)} queue(s) unloaded.")

    def delete_model(self, request, obj):
        try:
            config.queue_del(queue=obj)
        except config.ConfigRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for queue in queryset:
            self.delete_model(request, queue)


@admin.register(Agent)
class AgentAdmin(ThroughServicesAdmin):
    list_display = [
        "__str__",
        "type",
        "contact",
        "status",
        "state",
        "calls_answered",
        "no_answer_count",
        "user",
    ]
    list_filter = ["status", "state", "type", "company"]
    search_fields = ["name", "contact", "company__slug", "user__username"]
    list_select_related = ["company", "user"]
    raw_id_fields = ["user"]
    # Status and state change through the actions (and their events), counters through calls.
    readonly_fields = [
        "status",
        "state",
        "standby_channel",
        "calls_answered",
        "talk_time",
        "no_answer_count",
        "last_bridge_start",
        "last_bridge_end",
        "last_offered_call",
        "last_status_change",
        "changed_at",
    ]
    actions = ["log_out", "on_break", "available"]
    fixed_on_change = ("company",)

    def update(self, obj, changes):
        config.agent_update(agent=obj, changes=changes)

    def set_status(self, request, queryset, status):
        for agent in queryset:
            agent_status_set(agent_id=agent.pk, status=status)
        self.message_user(request, f"{len(queryset)} agent(s) now {status}.")

    @admin.action(description="Log the selected agents out")
    def log_out(self, request, queryset):
        self.set_status(request, queryset, Agent.Status.LOGGED_OUT)

    @admin.action(description="Put the selected agents On Break")
    def on_break(self, request, queryset):
        self.set_status(request, queryset, Agent.Status.ON_BREAK)

    @admin.action(description="Make the selected agents Available")
    def available(self, request, queryset):
        self.set_status(request, queryset, Agent.Status.AVAILABLE)

    def delete_model(self, request, obj):
        try:
            config.agent_del(agent=obj)
        except config.ConfigRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for agent in queryset:
            self.delete_model(request, agent)


@admin.register(Tier)
class TierAdmin(ThroughServicesAdmin):
    list_display = ["__str__", "queue", "agent", "level", "position", "state"]
    list_filter = ["state", "level", "queue__company"]
    search_fields = ["queue__name", "agent__name", "queue__company__slug"]
    list_select_related = ["queue__company", "agent__company"]
    autocomplete_fields = ["queue", "agent"]
    readonly_fields = ["changed_at"]
    fixed_on_change = ("queue", "agent")
    # A new tier is Ready: Offering and Active Inbound are the dispatcher's, set by its calls only.
    fixed_on_add = ("state",)

    def update(self, obj, changes):
        config.tier_update(tier=obj, changes=changes)

    def delete_model(self, request, obj):
        try:
            config.tier_del(tier=obj)
        except config.ConfigRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for tier in queryset:
            self.delete_model(request, tier)


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ["cid_number", "cid_name", "queue", "state", "joined_at", "agent", "cancel_reason"]
    list_filter = ["state", "cancel_reason", "queue__company"]
    search_fields = ["cid_number", "cid_name", "uuid", "session_uuid", "queue__name"]
    list_select_related = ["queue__company", "agent__company"]
    date_hierarchy = "joined_at"


@admin.register(Offer)
class OfferAdmin(ReadOnlyAdmin):
    list_display = [
        "agent",
        "member",
        "queue",
        "result",
        "offered_at",
        "talk_time",
        "hangup_cause",
        "disposition",
    ]
    list_filter = ["result", "queue__company"]
    search_fields = ["agent__name", "channel_id", "member__cid_number", "disposition"]
    list_select_related = ["agent__company", "member", "queue__company"]
    date_hierarchy = "offered_at"


@admin.register(QueueEvent)
class QueueEventAdmin(ReadOnlyAdmin):
    list_display = ["action", "company", "queue", "agent", "created_at"]
    list_filter = ["action", "company"]
    search_fields = ["queue__name", "agent__name"]
    list_select_related = ["company", "queue__company", "agent__company"]
    date_hierarchy = "created_at"
