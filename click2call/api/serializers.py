from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from click2call.api import progress
from click2call.models import CallAttempt, CallRequest
from config.validators import validate_plain_text


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
