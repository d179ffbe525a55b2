from rest_framework import serializers

from telephony.models import CALL_RECORD_PUBLIC_FIELDS, CallRecord, PushToken, WebhookDelivery
from telephony.services.push import PUSH_CALLTYPES, PUSH_EVENTS


class CallRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallRecord
        fields = ["id", "parent", *CALL_RECORD_PUBLIC_FIELDS]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "payload",
            "url",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        ]


class AnyCaseChoiceField(serializers.ChoiceField):
    """A choice sent in any letter case, as PBXs do; the schema lists the lower-case names."""

    def to_internal_value(self, data):
        return super().to_internal_value(data.lower() if isinstance(data, str) else data)


class PushedEventSerializer(serializers.Serializer):
    """An asterCC-style call event; the service checks the times and their order."""

    event = AnyCaseChoiceField(
        choices=PUSH_EVENTS,
        error_messages={"invalid_choice": f"event must be one of {', '.join(PUSH_EVENTS)}, not {{input!r}}"},
    )
    sessionid = serializers.CharField(max_length=150, help_text="The PBX's id of the call.")
    eventTime = serializers.CharField(
        max_length=40,
        help_text="Epoch seconds, or 'YYYY-MM-DD HH:MM:SS' in the company's time zone.",
    )
    calltype = AnyCaseChoiceField(
        choices=list(PUSH_CALLTYPES),
        required=False,
        default="dialout",
        error_messages={
            "invalid_choice": f"calltype must be one of {', '.join(PUSH_CALLTYPES)}, not {{input!r}}"
        },
    )
    activenum = serializers.CharField(required=False, allow_blank=True, max_length=80)
    callernum = serializers.CharField(required=False, allow_blank=True, max_length=80)


class PushTokenSerializer(serializers.ModelSerializer):
    """A push token as listed: its key is never shown whole again."""

    class Meta:
        model = PushToken
        fields = ["id", "key_hint", "active", "created_at"]


class PushTokenCreatedSerializer(serializers.ModelSerializer):
    """A push token just made: the one answer that carries its key."""

    class Meta:
        model = PushToken
        fields = ["id", "key", "key_hint", "active", "created_at"]


class WebhookSecretSerializer(serializers.Serializer):
    secret_hint = serializers.CharField(read_only=True)


class WebhookSecretRotatedSerializer(WebhookSecretSerializer):
    secret = serializers.CharField(read_only=True, help_text="the new secret, shown this once")
