from django.core.validators import RegexValidator, validate_slug
from rest_framework import serializers

from config.filters import ROW_ID, ListFilterSerializer, RowIdField
from queues.models import Agent, Member, Queue, QueueEvent, Tier
from queues.services.config import AGENT_SETTINGS, QUEUE_SETTINGS

# What Agent.clean takes, said in the schema: a number, or one channel such as PJSIP/1000.
CONTACT = RegexValidator(
    r"^(\+?[0-9*#]{1,40}|[A-Za-z0-9]{1,20}/[A-Za-z0-9@._:+*#/-]{1,99})\Z",
    "A number (digits, * #) or one dial string such as PJSIP/1000.",
)


class QueueSerializer(serializers.ModelSerializer):
    server = serializers.CharField(source="server.name", read_only=True)

    class Meta:
        model = Queue
        fields = ["id", "name", "full_name", "server", *QUEUE_SETTINGS, "loaded", "changed_at"]
        read_only_fields = ["name", "loaded", "changed_at"]


class AgentSerializer(serializers.ModelSerializer):
    contact = serializers.CharField(
        max_length=120,
        validators=[CONTACT],
        help_text="a number dialed through the queue server's dial route, or a dial string (PJSIP/1000)",
    )
    user = serializers.IntegerField(
        source="user_id",
        allow_null=True,
        required=False,
        help_text="the company user this agent is",
        **ROW_ID,
    )

    class Meta:
        model = Agent
        fields = [
            "id",
            "name",
            "full_name",
            *AGENT_SETTINGS,
            "user",
            "status",
            "state",
            "calls_answered",
            "talk_time",
            "no_answer_count",
            "last_bridge_start",
            "last_bridge_end",
            "last_offered_call",
            "last_status_change",
            "changed_at",
        ]
        read_only_fields = [
            "status",
            "state",
            "calls_answered",
            "talk_time",
            "no_answer_count",
            "last_bridge_start",
            "last_bridge_end",
            "last_offered_call",
            "last_status_change",
            "changed_at",
        ]
        # Names already taken are the service's 409, not a 400.
        validators = []
        extra_kwargs = {
            "name": {"validators": [Agent._meta.get_field("name").validators[0]]},
            # A dial route is named by a slug (telephony's DialRoute.name).
            "route": {"validators": [validate_slug], "min_length": 1},
        }


class AgentStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Agent.Status.choices)


class TierSerializer(serializers.ModelSerializer):
    queue_name = serializers.CharField(source="queue.full_name", read_only=True)
    agent_name = serializers.CharField(source="agent.full_name", read_only=True)

    class Meta:
        model = Tier
        fields = [
            "id",
            "queue",
            "queue_name",
            "agent",
            "agent_name",
            "level",
            "position",
            "state",
            "changed_at",
        ]
        read_only_fields = ["queue", "agent", "changed_at"]


class TierCreateSerializer(serializers.Serializer):
    queue = RowIdField()
    agent = RowIdField()
    level = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    position = serializers.IntegerField(min_value=1, max_value=100000, default=1)


class MemberSerializer(serializers.ModelSerializer):
    queue_name = serializers.CharField(source="queue.full_name", read_only=True)
    agent_name = serializers.CharField(
        source="agent.full_name", read_only=True, default=None, allow_null=True
    )
    score = serializers.IntegerField(read_only=True, help_text="seconds waited plus the base score")
    position = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="1 is served next; null once the caller stopped waiting"
    )

    class Meta:
        model = Member
        fields = [
            "id",
            "uuid",
            "queue",
            "queue_name",
            "session_uuid",
            "cid_name",
            "cid_number",
            "joined_at",
            "base_score",
            "score",
            "position",
            "state",
            "agent",
            "agent_name",
            "bridged_at",
            "ended_at",
            "cancel_reason",
            "callback_number",
        ]
        read_only_fields = fields


class QueueEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = QueueEvent
        fields = ["id", "action", "queue", "agent", "fields", "created_at"]
        read_only_fields = fields


class AgentFilterSerializer(ListFilterSerializer):
    queue = RowIdField(required=False, help_text="agents with a tier in this queue")
    status = serializers.ChoiceField(choices=Agent.Status.choices, required=False)
    state = serializers.ChoiceField(choices=Agent.State.choices, required=False)


class TierFilterSerializer(ListFilterSerializer):
    queue = RowIdField(required=False)
    agent = RowIdField(required=False)


class MemberFilterSerializer(ListFilterSerializer):
    queue = RowIdField(required=False)


class EventFilterSerializer(ListFilterSerializer):
    action = serializers.ChoiceField(choices=QueueEvent.Action.choices, required=False)
    queue = RowIdField(required=False)
    agent = RowIdField(required=False)
