from rest_framework import serializers

from telephony.models import CallRecord, PushToken, WebhookDelivery


class CallRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallRecord
        fields = [
            "id",
            "uniqueid",
            "linkedid",
            "parent",
            "app",
            "app_ref",
            "caller",
            "callee",
            "direction",
            "started_at",
            "answered_at",
            "ended_at",
            "duration",
            "billsec",
            "disposition",
            "hangup_cause",
            "hangup_cause_text",
        ]


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


class PushedEventSerializer(serializers.Serializer):
    """An asterCC-style call event; the service checks the values."""

    event = serializers.CharField(max_length=20)
    sessionid = serializers.CharField(max_length=150)
    eventTime = serializers.CharField(max_length=40)
    calltype = serializers.CharField(required=False, default="dialout", max_length=20)
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
    secret = serializers.CharField(
        read_only=True, required=False, help_text="only in the answer to a rotation"
    )
