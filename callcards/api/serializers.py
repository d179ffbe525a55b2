"""The call cards API's shapes: cards (never their PIN, which has an endpoint of its own), their
history, calls, batches with their usage, and the list filters."""

import datetime as dt

from rest_framework import serializers

from callcards.forms import card_id_digits
from callcards.lifecycle import Status
from callcards.models import Card, CardBatch, CardCall, CardEvent
from config.filters import DayField, ListFilterSerializer, RowIdField
from config.periods import MAX_PERIOD_DAYS


class BatchSerializer(serializers.ModelSerializer):
    queue = serializers.CharField(source="queue.name", default=None, read_only=True)

    class Meta:
        model = CardBatch
        fields = [
            "id", "run", "batch", "count", "pack_size", "initial_minutes", "initial_value",
            "warning_minutes", "language", "did", "queue", "purchase_order", "printer", "created_at", "job",
            "generated", "error",
        ]  # fmt: skip


class BatchUsageSerializer(serializers.Serializer):
    """A batch with what became of its cards (the usage report's row)."""

    batch = BatchSerializer()
    cards = serializers.IntegerField()
    minutes_sold = serializers.IntegerField(help_text="cards made x initial minutes")
    minutes_used = serializers.IntegerField(help_text="talk minutes billed")
    minutes_remaining = serializers.IntegerField(help_text="balances of the live cards")
    calls = serializers.IntegerField(help_text="billed calls")
    talk_seconds = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField(), help_text="cards per status")


class CardSerializer(serializers.ModelSerializer):
    batch = serializers.CharField(source="batch_id", read_only=True)
    run = serializers.CharField(source="batch.run", read_only=True)
    batch_name = serializers.CharField(source="batch.batch", read_only=True)

    class Meta:
        model = Card
        fields = [
            "id", "card_id", "batch", "run", "batch_name", "pack", "sequence", "status", "balance_minutes",
            "warning_minutes", "did", "language", "name", "email", "comments", "create_user", "create_time",
            "activate_user", "activate_time", "used_user", "used_time", "void_user", "void_time",
        ]  # fmt: skip
        read_only_fields = fields


class CardEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CardEvent
        fields = ["at", "user", "old_status", "new_status", "note"]


class CardDetailSerializer(CardSerializer):
    events = CardEventSerializer(many=True, read_only=True)

    class Meta(CardSerializer.Meta):
        fields = [*CardSerializer.Meta.fields, "events"]
        read_only_fields = fields


class CardPinSerializer(serializers.Serializer):
    card_id = serializers.CharField()
    pin = serializers.CharField()


class CardCallSerializer(serializers.ModelSerializer):
    card_id = serializers.CharField(source="card.card_id", read_only=True)

    class Meta:
        model = CardCall
        fields = [
            "id", "uniqueid", "card_id", "state", "balance_minutes_start", "balance_minutes_end",
            "call_time", "agent_time", "end_time", "dispo_time", "agent", "agent_dispo", "agent_talk_sec",
            "agent_talk_min", "phone_number", "inbound_did", "queue", "end_reason",
        ]  # fmt: skip
        read_only_fields = fields


class CardIdPartField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=40, help_text="a card id or its first digits", **kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            return card_id_digits(text)
        except Exception as error:  # the form's ValidationError, said the API's way
            raise serializers.ValidationError(error.messages) from None


class CardFilterSerializer(ListFilterSerializer):
    batch = RowIdField(required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    card_id = CardIdPartField(required=False)


class CallFilterSerializer(ListFilterSerializer):
    start = DayField(required=False, help_text="the first day, in the company's time zone")
    end = DayField(required=False, help_text="the last day, included")
    card_id = CardIdPartField(required=False)
    agent = serializers.CharField(max_length=130, required=False)
    batch = RowIdField(required=False)

    def validate(self, data):
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise serializers.ValidationError("The period ends before it starts.")
            if end - start >= dt.timedelta(days=MAX_PERIOD_DAYS):
                raise serializers.ValidationError(f"A period of at most {MAX_PERIOD_DAYS} days.")
        return data
