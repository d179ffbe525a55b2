"""Call cards in the staff admin. Every page needs the `callcards.callcard_admin` permission (the
seed's callcard_admin) on top of Django's model permissions: cards carry PINs, so staff without
it see no call card at all.

Batches are added through the generation form (callcards.services.cards.batch_create); cards
change status only through the bulk actions, each confirmed on a page that says how many cards
will change and how many the status table refuses, then calling the services. Calls, dial-in
failures and alerts are the platform's record: read only.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone

from callcards import pins
from callcards.lifecycle import Status
from callcards.models import (
    CallcardSettings,
    Card,
    CardBatch,
    CardCall,
    CardEvent,
    DialInFailure,
    Lockout,
    LowBalanceAlert,
)
from callcards.resources import CardCallResource, CardResource
from callcards.services import cards as card_services
from callcards.services import printing
from callcards.services.lockouts import lockout_lift
from config.exports import ExportAdminMixin

PERMISSION = "callcards.callcard_admin"


def callcard_admin(request) -> bool:
    return request.user.is_active and request.user.has_perm(PERMISSION)


def _an_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) < 2**63


class CallcardPermissionMixin:
    """The callcard_admin permission first, then Django's own for the model; and a selection that
    is not row ids (a forged form) refused before any action sees it (Django answers it with a 500)."""

    def response_action(self, request, queryset):
        if not all(_an_id(value) for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)):
            self.message_user(request, "The selection is not a list of rows: nothing done.", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def has_module_permission(self, request):
        return callcard_admin(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return callcard_admin(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return callcard_admin(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return callcard_admin(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return callcard_admin(request) and super().has_delete_permission(request, obj)

    def has_export_permission(self, request):
        return callcard_admin(request) and super().has_export_permission(request)


class ReadOnlyMixin:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(CallcardPermissionMixin, ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


# -- the bulk actions -----------------------------------------------------------------------------

# action name -> (target status, what the cards will do, the confirm button)
CARD_ACTIONS = {
    "print_cards": (Status.PRINT, "be printed (generated ones become Printed)", "Yes, make the PDF"),
    "ship_cards": (Status.SHIP, "be shipped", "Yes, ship them"),
    "activate_cards": (Status.ACTIVE, "be activated (callers may use them)", "Yes, activate them"),
    "hold_cards": (Status.HOLD, "be put on hold", "Yes, hold them"),
    "release_cards": (card_services.RELEASE, "go back to the status they were held from", "Yes, release"),
    "void_cards": (Status.VOID, "be voided, for good", "Yes, void them"),
    "cancel_cards": (Status.CANCEL, "be cancelled, for good", "Yes, cancel them"),
}


def card_action(modeladmin, request, queryset, cards, action: str):
    """A bulk action in two steps, as Django's delete: a page saying what will happen, then the
    POST that confirms it (which calls the service)."""
    to, verb, confirm_label = CARD_ACTIONS[action]
    if request.POST.get("confirm") == "yes":
        if action == "print_cards":
            try:
                pdf = printing.cards_print_pdf(cards=cards, user=request.user)
            except printing.PrintRefused as exc:
                modeladmin.message_user(request, str(exc), messages.ERROR)
                return None
            response = HttpResponse(pdf, content_type="application/pdf")
            stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
            response["Content-Disposition"] = f'attachment; filename="cards-{stamp}.pdf"'
            return response
        note = f"admin: {action}"
        result = card_services.cards_transition(cards=cards, to=to, user=request.user, note=note)
        level = messages.SUCCESS if not result.refused else messages.WARNING
        modeladmin.message_user(
            request,
            f"{result.changed} card(s) changed; {result.refused} refused by their status.",
            level,
        )
        return None
    preview = card_services.cards_transition_preview(cards=cards, to=to)
    refusal = printing.cards_print_refusal(cards=cards) if action == "print_cards" else ""
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "title": "Are you sure?",
        "question": f"{preview.changed + preview.refused} card(s) selected.",
        "changed": preview.changed,
        "refused": preview.refused,
        "refused_why": (
            "their status does not allow it"
            if action != "print_cards"
            else "only generated or printed cards are printed"
        ),
        "verb": verb,
        "refusal": refusal,
        "can_confirm": preview.changed > 0 and not refusal,
        "confirm_label": confirm_label,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across") == "1",
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/callcards/confirm_action.html", context)


def _card_actions(cards_of):
    """The bulk actions, for an admin whose rows give their cards through `cards_of(queryset)`."""
    made = {}
    for name in CARD_ACTIONS:

        def action(modeladmin, request, queryset, _name=name):
            return card_action(modeladmin, request, queryset, cards_of(queryset), _name)

        label = "Print" if name == "print_cards" else name.split("_")[0].capitalize()
        action.__name__ = name
        made[name] = admin.action(description=f"{label} the selected cards…", permissions=["change"])(action)
    return made


# -- batches -----------------------------------------------------------------------------------------


class CardBatchForm(forms.ModelForm):
    class Meta:
        model = CardBatch
        fields = [
            "company",
            "run",
            "batch",
            "count",
            "pack_size",
            "initial_minutes",
            "initial_value",
            "warning_minutes",
            "language",
            "did",
            "queue",
            "purchase_order",
            "printer",
        ]

    def clean(self):
        # As batch_create: the cards' callers wait in a queue of the batch's own company.
        cleaned = super().clean()
        company, queue = cleaned.get("company"), cleaned.get("queue")
        if company and queue and queue.company_id != company.pk:
            self.add_error("queue", "A queue of the batch's company.")
        return cleaned


@admin.register(CardBatch)
class CardBatchAdmin(CallcardPermissionMixin, admin.ModelAdmin):
    form = CardBatchForm
    list_display = [
        "__str__",
        "company",
        "count",
        "initial_minutes",
        "progress_shown",
        "job",
        "error",
        "created_by",
        "created_at",
    ]
    list_filter = ["job", "company"]
    list_select_related = ["company", "created_by"]
    search_fields = ["run", "batch", "purchase_order", "company__name"]
    actions = ["resume", *_card_actions(lambda batches: Card.objects.filter(batch__in=batches)).values()]

    @admin.display(description="progress")
    def progress_shown(self, batch):
        return f"{batch.progress}% ({batch.generated} of {batch.count})"

    def get_fields(self, request, obj=None):
        if obj is None:
            return CardBatchForm.Meta.fields
        return [*CardBatchForm.Meta.fields, "progress_shown", "job", "error", "created_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # A batch is what its cards were made from: never edited afterwards.
        return [] if obj is None else self.get_fields(request, obj)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("company", "created_by", "queue")

    def save_model(self, request, obj, form, change):
        made = card_services.batch_create(user=request.user, **form.cleaned_data)
        obj.pk = made.pk
        obj.refresh_from_db()
        if made.job != CardBatch.Job.DONE:
            self.message_user(request, f"{made.count} cards being made by a worker: see the progress here.")

    def has_change_permission(self, request, obj=None):
        # The batch's page is read only; the actions (which need the change permission) stay.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Resume generating the selected batches", permissions=["change"])
    def resume(self, request, queryset):
        from callcards.tasks import generate_batch

        unfinished = [batch.pk for batch in queryset if batch.job != CardBatch.Job.DONE]
        for pk in unfinished:
            generate_batch.delay_on_commit(pk)
        self.message_user(request, f"{len(unfinished)} batch(es) queued to finish their cards.")


# -- cards -------------------------------------------------------------------------------------------


class CardEventInline(ReadOnlyInline):
    model = CardEvent
    fields = ["at", "user", "old_status", "new_status", "note"]


class CardCallInline(ReadOnlyInline):
    model = CardCall
    fields = [
        "call_time",
        "state",
        "phone_number",
        "queue",
        "agent",
        "agent_talk_sec",
        "agent_talk_min",
        "balance_minutes_start",
        "balance_minutes_end",
        "agent_dispo",
        "end_reason",
    ]


class LowBalanceAlertInline(ReadOnlyInline):
    model = LowBalanceAlert
    fields = ["created_at", "kind", "to", "balance_minutes", "state", "sent_at", "attempts", "last_error"]


CARD_FIELDSETS = [
    (None, {"fields": ["card_id", "pin_shown", "company", "batch", "pack", "sequence"]}),
    ("Status and balance", {"fields": ["status", "held_from", "balance_minutes", "warning_minutes"]}),
    ("Calls", {"fields": ["queue", "did", "language"]}),
    ("Holder", {"fields": ["name", "email", "comments"]}),
    (
        "Who and when",
        {
            "fields": [
                ("create_user", "create_time"),
                ("activate_user", "activate_time"),
                ("used_user", "used_time"),
                ("void_user", "void_time"),
                "updated_at",
            ]
        },
    ),
]
EDITABLE = {"name", "email", "comments"}


@admin.register(Card)
class CardAdmin(CallcardPermissionMixin, ExportAdminMixin, admin.ModelAdmin):
    resource_classes = [CardResource]
    list_display = [
        "card_id",
        "company",
        "batch",
        "pack",
        "sequence",
        "status",
        "balance_minutes",
        "did",
        "language",
        "updated_at",
    ]
    list_filter = ["status", "batch", "company"]
    list_select_related = ["company", "batch"]
    search_fields = ["^card_id"]
    show_full_result_count = False  # a count(*) of a million cards per page is wasted
    inlines = [CardEventInline, CardCallInline, LowBalanceAlertInline]
    actions = list(_card_actions(lambda cards: cards).values())

    def get_fieldsets(self, request, obj=None):
        if callcard_admin(request):
            return CARD_FIELDSETS
        # Never reached while every page needs the permission; kept so the PIN's rule stands alone.
        first = [name for name in CARD_FIELDSETS[0][1]["fields"] if name != "pin_shown"]
        return [(None, {"fields": first}), *CARD_FIELDSETS[1:]]

    def get_readonly_fields(self, request, obj=None):
        names = []
        for _title, options in CARD_FIELDSETS:
            for entry in options["fields"]:
                names += list(entry) if isinstance(entry, tuple) else [entry]
        return [name for name in names if name not in EDITABLE]

    @admin.display(description="PIN")
    def pin_shown(self, card):
        try:
            return pins.pin_reveal(card.pin_sealed)
        except pins.PinKeyMismatch as exc:
            return str(exc)

    def has_add_permission(self, request):
        return False  # cards are made by batches

    def has_delete_permission(self, request, obj=None):
        return False  # a card is cancelled or voided, its history kept


# -- calls, failures, lockouts ---------------------------------------------------------------------


@admin.register(CardCall)
class CardCallAdmin(CallcardPermissionMixin, ReadOnlyMixin, ExportAdminMixin, admin.ModelAdmin):
    resource_classes = [CardCallResource]
    list_display = [
        "call_time",
        "card",
        "company",
        "state",
        "phone_number",
        "inbound_did",
        "queue",
        "agent",
        "agent_talk_min",
        "balance_minutes_start",
        "balance_minutes_end",
    ]
    list_filter = ["state", "company"]
    list_select_related = ["card", "company"]
    search_fields = ["=card__card_id", "=uniqueid", "phone_number", "agent"]
    date_hierarchy = "call_time"


@admin.register(DialInFailure)
class DialInFailureAdmin(CallcardPermissionMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["at", "phone_number", "card_id", "inbound_did", "reason"]
    list_filter = ["reason"]
    search_fields = ["=phone_number", "=card_id"]
    date_hierarchy = "at"


class LockoutActiveFilter(admin.SimpleListFilter):
    title = "active"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "Active now"), ("no", "Ended or lifted")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(until__gt=now, lifted_at__isnull=True)
        if self.value() == "no":
            return queryset.exclude(until__gt=now, lifted_at__isnull=True)
        return queryset


@admin.register(Lockout)
class LockoutAdmin(CallcardPermissionMixin, admin.ModelAdmin):
    list_display = ["kind", "value", "company", "failures", "locked_at", "until", "active", "lifted_by"]
    list_filter = [LockoutActiveFilter, "kind", "company"]
    list_select_related = ["company"]
    search_fields = ["=value"]
    actions = ["lift"]

    @admin.display(boolean=True)
    def active(self, lockout):
        return lockout.lifted_at is None and lockout.until > timezone.now()

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Lockout._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Lift the selected lockouts", permissions=["change"])
    def lift(self, request, queryset):
        lifted = sum(lockout_lift(lockout=lockout, user=request.user) for lockout in queryset)
        self.message_user(request, f"{lifted} lockout(s) lifted.")


# -- settings and alerts -------------------------------------------------------------------------


@admin.register(CallcardSettings)
class CallcardSettingsAdmin(CallcardPermissionMixin, admin.ModelAdmin):
    list_display = ["company", "low_balance_minutes", "alert_email"]
    list_select_related = ["company"]
    search_fields = ["company__name"]


@admin.register(LowBalanceAlert)
class LowBalanceAlertAdmin(CallcardPermissionMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "kind", "company", "card", "to", "balance_minutes", "cards", "state"]
    list_filter = ["kind", "state", "company"]
    list_select_related = ["company", "card"]
    search_fields = ["=card__card_id", "to"]
    date_hierarchy = "created_at"
