from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from click2call.api import progress
from click2call.models import CallAttempt, CallComment, CallRequest, Campaign
from config.filters import DayField, ListFilterSerializer, RowIdField
from config.validators import validate_plain_text
from telephony.models import CallRecord


@extend_schema_field({"type": "boolean"})
class StrictBooleanField(serializers.Field):
    """JSON true or false only: DRF's BooleanField also takes "true", "yes", "on" and 1, and a
    visitor's consent is a box they ticked, not a word a script sent."""

    default_error_messages = {"invalid": "Must be JSON true or false, not {kind}."}
    KINDS = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", kind="null" if data is None else self.KINDS.get(type(data), "that"))
        return data

    def to_representation(self, value):
        return bool(value)


class CallRequestInSerializer(serializers.Serializer):
    number = serializers.CharField(
        max_length=40, help_text="as the visitor typed it; read in the campaign's default country"
    )
    name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default="", validators=[validate_plain_text]
    )
    note = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default="", validators=[validate_plain_text]
    )
    consent = StrictBooleanField(
        default=False,
        help_text="JSON true: the visitor agrees to be called; refused (consent_required) unless true",
    )


class CallRequestOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CallRequest.Status.choices)
    status_url = serializers.URLField(help_text="the request's progress, readable without credentials")


PROGRESS_WORDS = [
    progress.WAITING,
    progress.RETRY_SOON,
    progress.CALLING_YOU,
    progress.CALLING_COMPANY,
    progress.CONNECTED,
    progress.COMPLETED,
    progress.FAILED_YOU,
    progress.FAILED_COMPANY,
    progress.NOT_DIALED,
]


@extend_schema_field({"type": "string", "enum": PROGRESS_WORDS})
class ProgressField(serializers.CharField):
    pass


class AttemptProgressSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="1 for the first try")
    kind = serializers.ChoiceField(choices=CallAttempt.Kind.choices)
    status = serializers.ChoiceField(choices=CallAttempt.Status.choices)
    progress = ProgressField()


class RequestProgressSerializer(serializers.Serializer):
    """No number, no name: whoever holds the status URL sees only how the call goes."""

    status = serializers.ChoiceField(choices=CallRequest.Status.choices)
    final = serializers.BooleanField(help_text="true once the status changes no more by itself")
    progress = ProgressField(help_text="the status in words for the visitor")
    tries = serializers.IntegerField(help_text="automatic tries made")
    attempts = AttemptProgressSerializer(many=True)


class BannerErrorSerializer(serializers.Serializer):
    """Every refusal of the banner API: a stable `code`, a sentence, and for a malformed body the fields."""

    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


# -- the company's API: its requests, their attempts and legs -------------------------------------


@extend_schema_field({"type": "string", "format": "date", "pattern": r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"})
class PeriodDayField(DayField):
    """A day from 2000-01-01 to 2099-12-31, as the schema says too."""


class CallFilterSerializer(ListFilterSerializer):
    """The portal's filters of the calls list, as query parameters. An end before the start is a
    period of no day, as in the portal: nothing is listed."""

    status = serializers.ChoiceField(choices=CallRequest.Status.choices, required=False)
    campaign = RowIdField(required=False, help_text="a campaign's id")
    start = PeriodDayField(required=False, help_text="the first day asked, in the company's time zone")
    end = PeriodDayField(required=False, help_text="the last day asked, included")
    # Words as destinations and carriers are written (Île-de-France, AT&T, O2 (UK)); one rule for the
    # server and the schema, so no line break, control or invisible character, no formula.
    direction = serializers.RegexField(
        r"^[\w .,'&()/+-]+$",
        max_length=80,
        required=False,
        trim_whitespace=False,
        help_text="part of the destination, region or carrier, or a country code (FR): letters, digits, "
        "spaces and . , ' & ( ) / + -",
    )


MONEY = {"max_digits": 14, "decimal_places": 2, "coerce_to_string": True}
RATE = {"max_digits": 10, "decimal_places": 5, "coerce_to_string": True}


class CompanyCurrencyMixin(serializers.Serializer):
    currency = serializers.SerializerMethodField(help_text="ISO 4217: the company's, of every amount here")

    @extend_schema_field({"type": "string", "pattern": "^[A-Z]{3}$"})
    def get_currency(self, _):
        return self.context["currency"]


class CallSerializer(CompanyCurrencyMixin, serializers.ModelSerializer):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    rate_price = serializers.DecimalField(
        **RATE, allow_null=True, read_only=True, help_text="per minute, of the visitor's number when asked"
    )
    price = serializers.DecimalField(
        **MONEY,
        allow_null=True,
        read_only=True,
        help_text="the campaign's price_per_completed when the request completed; null until then",
    )
    cost = serializers.DecimalField(
        **MONEY, read_only=True, help_text="what the request cost: its price once COMPLETED, else 0.00"
    )

    class Meta:
        model = CallRequest
        fields = [
            "id", "created_at", "campaign", "campaign_name", "number", "name", "note", "status",
            "destination", "country", "region", "carrier", "rate_prefix", "rate_price", "tries",
            "next_try_at", "finished_at", "price", "cost", "currency",
        ]  # fmt: skip
        read_only_fields = fields


class LegSerializer(serializers.ModelSerializer):
    """A real call of an attempt (a telephony call record) with what it cost at its rate."""

    role = serializers.SerializerMethodField(help_text="first: the first party's leg; second: one it dialed")
    party = serializers.ChoiceField(choices=Campaign.FirstParty.choices, read_only=True)
    rate_price = serializers.DecimalField(
        **RATE, allow_null=True, read_only=True, help_text="per minute; null: not rated (a dial string)"
    )
    cost = serializers.DecimalField(
        max_digits=14,
        decimal_places=5,
        coerce_to_string=True,
        allow_null=True,
        read_only=True,
        help_text="per started minute of billsec at rate_price; null: not rated, or not ended",
    )

    class Meta:
        model = CallRecord
        fields = [
            "id", "role", "party", "uniqueid", "linkedid", "channel", "caller", "callee", "started_at",
            "answered_at", "ended_at", "duration", "billsec", "state", "disposition", "hangup_cause",
            "hangup_cause_text", "rate_price", "cost",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field({"type": "string", "enum": ["first", "second"]})
    def get_role(self, leg):
        return "first" if leg.parent_id is None else "second"


class AttemptSerializer(serializers.Serializer):
    seq = serializers.IntegerField(source="attempt.seq", help_text="1 for the first try")
    kind = serializers.ChoiceField(source="attempt.kind", choices=CallAttempt.Kind.choices)
    first_party = serializers.ChoiceField(source="attempt.first_party", choices=Campaign.FirstParty.choices)
    status = serializers.ChoiceField(source="attempt.status", choices=CallAttempt.Status.choices)
    detail = serializers.CharField(source="attempt.detail", help_text="what decided the outcome")
    requested_by = serializers.CharField(
        source="attempt.requested_by.username", default=None, allow_null=True, help_text="who called back"
    )
    created_at = serializers.DateTimeField(source="attempt.created_at")
    finished_at = serializers.DateTimeField(source="attempt.finished_at", allow_null=True)
    legs = LegSerializer(many=True, help_text="the first party's leg, then those it dialed, as rung")


class CommentSerializer(serializers.ModelSerializer):
    comment_type = serializers.CharField(source="comment_type.name")
    author = serializers.CharField(source="author.username", default=None, allow_null=True)
    values = serializers.DictField(child=serializers.JSONField(), help_text="field name: value")

    class Meta:
        model = CallComment
        fields = ["id", "comment_type", "values", "author", "created_at"]
        read_only_fields = fields


class CallDetailSerializer(CallSerializer):
    attempts = AttemptSerializer(many=True, read_only=True, source="attempt_legs")
    comments = CommentSerializer(many=True, read_only=True, source="comment_rows")

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "attempts", "comments"]
        read_only_fields = fields


class CallTotalsSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="requests matching the filters")
    completed = serializers.IntegerField(help_text="of those, COMPLETED")
    amount = serializers.DecimalField(**MONEY, help_text="what the COMPLETED ones cost")
    currency = serializers.CharField()
