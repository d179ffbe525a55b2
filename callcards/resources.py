"""Call cards as spreadsheets (the seed's callcard_export_report): the cards and the call log, to CSV
or XLSX, through config.exports' formula escaping. A card's holder name and comments are typed by
people, its caller's number comes from any carrier: every text cell is escaped.

No column ever carries a PIN, sealed or in clear, nor its digest: the fields are listed one by one
(never "all fields"), so a field added to Card later stays out until someone adds it here. The
admin's export buttons use these same resources.
"""

from import_export import fields, widgets

from callcards.models import Card, CardBatch, CardCall
from callcards.selectors import STATUS_ORDER
from config.exports import ExportResource

CARD_COLUMNS = [
    "card_id",
    "batch",
    "pack",
    "sequence",
    "status",
    "balance_minutes",
    "initial_minutes",
    "initial_value",
    "queue",
    "did",
    "language",
    "name",
    "email",
    "comments",
    "purchase_order",
    "printer",
    "create_user",
    "create_time",
    "activate_user",
    "activate_time",
    "used_user",
    "used_time",
    "void_user",
    "void_time",
]

# The seed's callcard_log, in its order, then what the platform adds (the queue, the end, the state).
CALL_COLUMNS = [
    "uniqueid",
    "card_id",
    "balance_minutes_start",
    "call_time",
    "agent_time",
    "dispo_time",
    "agent",
    "agent_dispo",
    "agent_talk_sec",
    "agent_talk_min",
    "phone_number",
    "inbound_did",
    "queue",
    "end_time",
    "balance_minutes_end",
    "state",
    "end_reason",
]


class CardResource(ExportResource):
    """One row per card, with what it inherits from its batch (initial minutes and value, purchase
    order, printer)."""

    batch = fields.Field(column_name="batch", dehydrate_method="dehydrate_batch")
    initial_minutes = fields.Field(attribute="batch__initial_minutes", column_name="initial_minutes")
    initial_value = fields.Field(attribute="batch__initial_value", column_name="initial_value")
    purchase_order = fields.Field(attribute="batch__purchase_order", column_name="purchase_order")
    printer = fields.Field(attribute="batch__printer", column_name="printer")
    queue = fields.Field(attribute="queue__name", column_name="queue")

    class Meta:
        model = Card
        fields = CARD_COLUMNS
        export_order = CARD_COLUMNS

    def dehydrate_batch(self, card):
        return f"{card.batch.run}/{card.batch.batch}"

    def get_queryset(self):
        return super().get_queryset().select_related("batch", "queue")

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("batch", "queue")


class CardCallResource(ExportResource):
    card_id = fields.Field(attribute="card__card_id", column_name="card_id")

    class Meta:
        model = CardCall
        fields = CALL_COLUMNS
        export_order = CALL_COLUMNS

    def get_queryset(self):
        return super().get_queryset().select_related("card")

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("card")


NUMBER = widgets.IntegerWidget()


class BatchUsageResource(ExportResource):
    """The usage report (callcards.selectors.batches_with_usage's rows): a batch a row, its cards per
    status a column each."""

    run = fields.Field(attribute="batch__run", column_name="run")
    batch = fields.Field(attribute="batch__batch", column_name="batch")
    initial_minutes = fields.Field(
        attribute="batch__initial_minutes", column_name="initial_minutes", widget=NUMBER
    )
    cards = fields.Field(attribute="cards", column_name="cards", widget=NUMBER)
    minutes_sold = fields.Field(attribute="minutes_sold", column_name="minutes_sold", widget=NUMBER)
    minutes_used = fields.Field(attribute="minutes_used", column_name="minutes_used", widget=NUMBER)
    minutes_remaining = fields.Field(
        attribute="minutes_remaining", column_name="minutes_remaining", widget=NUMBER
    )
    calls = fields.Field(attribute="calls", column_name="calls", widget=NUMBER)
    talk_seconds = fields.Field(attribute="talk_seconds", column_name="talk_seconds", widget=NUMBER)

    class Meta:
        model = CardBatch
        fields = [
            "run", "batch", "initial_minutes", "cards", "minutes_sold", "minutes_used", "minutes_remaining",
            "calls", "talk_seconds",
        ]  # fmt: skip
        export_order = fields

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for status in STATUS_ORDER:
            self.fields[status] = fields.Field(
                column_name=f"cards {status}", dehydrate_method=self._count_of(status), widget=NUMBER
            )

    @staticmethod
    def _count_of(status):
        return lambda row: row.by_status.get(status, 0)

    def get_export_fields(self, selected_fields=None):
        return list(self.fields.values())
