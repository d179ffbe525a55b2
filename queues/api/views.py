"""The queues API: mod_callcenter's callcenter_config over HTTP, scoped to the user's company, and
an agent's own status (/me/). Views check the input, call one service, answer the row.

Every refusal is the API's `{"code": ..., "detail": ...}` (config.exceptions); another
company's object is a 404; a write the queue's state forbids (an agent in a call, a name taken,
settings that contradict each other) is a 409.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from config.openapi import NOT_FOUND, error
from queues import selectors
from queues.api import serializers as s
from queues.models import Agent, Member
from queues.services import config
from queues.services.agents import agent_status_set

CONFLICT = error(
    "`conflict`, `agent_busy` or `tier_busy`: the write contradicts the row's state; `detail` says how."
)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The write conflicts with the current state."


class service_errors:
    """A service's refusal as the API's 409, its reason kept."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if isinstance(exc, config.ConfigRefused):
            raise Conflict(str(exc), code=exc.code) from None
        if isinstance(exc, DjangoValidationError):
            raise Conflict(" ".join(exc.messages)) from None
        return False


def query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class QueuesApiMixin:
    @property
    def company(self):
        return self.request.user.company


# -- queues ----------------------------------------------------------------------------------------


class QueueList(QueuesApiMixin, generics.ListAPIView):
    """The company's queues with their settings."""

    serializer_class = s.QueueSerializer

    def get_queryset(self):
        return selectors.queues(company=self.company)


@extend_schema_view(put=extend_schema(responses={200: s.QueueSerializer, 409: CONFLICT}))
@extend_schema_view(patch=extend_schema(responses={200: s.QueueSerializer, 409: CONFLICT}))
class QueueDetail(QueuesApiMixin, generics.RetrieveUpdateAPIView):
    """A queue's settings; a change is taken up by the dispatcher at once."""

    serializer_class = s.QueueSerializer

    def get_queryset(self):
        return selectors.queues(company=self.company)

    def perform_update(self, serializer):
        with service_errors():
            serializer.instance = config.queue_update(
                queue=serializer.instance, changes=serializer.validated_data
            )


class QueueLoad(QueuesApiMixin, APIView):
    """mod_callcenter's `queue load`: the dispatcher serves the queue."""

    serializer_class = s.QueueSerializer
    loaded = True

    @extend_schema(request=None, responses={200: s.QueueSerializer})
    def post(self, request, pk):
        queue = get_object_or_404(selectors.queues(company=self.company), pk=pk)
        queue = config.queue_load(queue=queue) if self.loaded else config.queue_unload(queue=queue)
        return Response(s.QueueSerializer(queue).data)


class QueueUnload(QueueLoad):
    """mod_callcenter's `queue unload`: no new offers nor callers; the callers not being offered are
    sent on in the dialplan, calls already offered or bridged go on to their end."""

    loaded = False


# -- agents ----------------------------------------------------------------------------------------


def company_user(company, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    user = User.objects.filter(company=company, pk=user_id).first()
    if user is None:
        raise exceptions.NotFound("No such user in your company.")
    return user


def agent_changes(company, data: dict) -> dict:
    changes = dict(data)
    if "user_id" in changes:
        changes["user"] = company_user(company, changes.pop("user_id"))
    return changes


@extend_schema_view(post=extend_schema(responses={201: s.AgentSerializer, 404: NOT_FOUND, 409: CONFLICT}))
class AgentList(QueuesApiMixin, generics.ListCreateAPIView):
    """The company's agents (of a queue, by status and state); a POST adds one, Logged Out."""

    serializer_class = s.AgentSerializer

    def get_queryset(self):
        rows = selectors.agents(company=self.company)
        if self.request.method != "GET":
            return rows
        filters = query(s.AgentFilterSerializer, self.request)
        if "queue" in filters:
            rows = rows.filter(tiers__queue_id=filters["queue"])
        if "status" in filters:
            rows = rows.filter(status=filters["status"])
        if "state" in filters:
            rows = rows.filter(state=filters["state"])
        return rows

    @extend_schema(parameters=[s.AgentFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def perform_create(self, serializer):
        changes = agent_changes(self.company, serializer.validated_data)
        name, user = changes.pop("name"), changes.pop("user", None)
        kind, contact = changes.pop("type", Agent.Type.CALLBACK), changes.pop("contact")
        with service_errors():
            serializer.instance = config.agent_add(
                company=self.company, name=name, type=kind, contact=contact, user=user, settings=changes
            )


@extend_schema_view(
    put=extend_schema(responses={200: s.AgentSerializer, 409: CONFLICT}),
    patch=extend_schema(responses={200: s.AgentSerializer, 409: CONFLICT}),
    delete=extend_schema(responses={204: None, 409: CONFLICT}),
)
class AgentDetail(QueuesApiMixin, generics.RetrieveUpdateDestroyAPIView):
    """An agent: its settings (PUT, PATCH; type, contact and route not while in a call), removed with
    its tiers (DELETE) unless in a call."""

    serializer_class = s.AgentSerializer

    def get_queryset(self):
        return selectors.agents(company=self.company)

    def perform_update(self, serializer):
        changes = agent_changes(self.company, serializer.validated_data)
        with service_errors():
            serializer.instance = config.agent_update(agent=serializer.instance, changes=changes)

    def perform_destroy(self, instance):
        with service_errors():
            config.agent_del(agent=instance)


class AgentStatus(QueuesApiMixin, APIView):
    """Set an agent's status (Logged Out, Available, Available (On Demand), On Break). Its state is
    the dispatcher's and read-only: Available again takes an On Demand agent from Idle to Waiting."""

    serializer_class = s.AgentSerializer

    @extend_schema(request=s.AgentStatusSerializer, responses={200: s.AgentSerializer})
    def post(self, request, pk):
        agent = get_object_or_404(selectors.agents(company=self.company), pk=pk)
        body = s.AgentStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        agent = agent_status_set(agent_id=agent.pk, status=body.validated_data["status"])
        return Response(s.AgentSerializer(agent).data)


NOT_AN_AGENT = error("`not_an_agent`: your user answers no queue calls (no agent is linked to it).")


class Me(QueuesApiMixin, APIView):
    """The agent the signed-in user is: its status, state and counters; a POST sets its status."""

    serializer_class = s.AgentSerializer

    def agent(self) -> Agent:
        agent = selectors.agent_for_user(user=self.request.user)
        if agent is None:
            raise exceptions.NotFound("No agent is linked to your user.", code="not_an_agent")
        return agent

    @extend_schema(responses={200: s.AgentSerializer, 404: NOT_AN_AGENT})
    def get(self, request):
        return Response(s.AgentSerializer(self.agent()).data)

    @extend_schema(request=s.AgentStatusSerializer, responses={200: s.AgentSerializer, 404: NOT_AN_AGENT})
    def post(self, request):
        agent = self.agent()
        body = s.AgentStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        agent = agent_status_set(agent_id=agent.pk, status=body.validated_data["status"])
        return Response(s.AgentSerializer(agent).data)


# -- tiers -----------------------------------------------------------------------------------------


@extend_schema_view(
    post=extend_schema(
        request=s.TierCreateSerializer,
        responses={
            201: s.TierSerializer,
            404: error("No such queue or agent in your company."),
            409: CONFLICT,
        },
    )
)
class TierList(QueuesApiMixin, generics.ListCreateAPIView):
    """The company's tiers (of a queue, of an agent); a POST puts an agent in a queue."""

    serializer_class = s.TierSerializer

    def get_queryset(self):
        rows = selectors.tiers(company=self.company)
        if self.request.method != "GET":
            return rows
        filters = query(s.TierFilterSerializer, self.request)
        if "queue" in filters:
            rows = rows.filter(queue_id=filters["queue"])
        if "agent" in filters:
            rows = rows.filter(agent_id=filters["agent"])
        return rows

    @extend_schema(parameters=[s.TierFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def create(self, request, *args, **kwargs):
        body = s.TierCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        queue = selectors.queues(company=self.company).filter(pk=data["queue"]).first()
        agent = selectors.agents(company=self.company).filter(pk=data["agent"]).first()
        if queue is None or agent is None:
            raise exceptions.NotFound("No such queue or agent in your company.")
        with service_errors():
            tier = config.tier_add(queue=queue, agent=agent, level=data["level"], position=data["position"])
        return Response(s.TierSerializer(tier).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    put=extend_schema(responses={200: s.TierSerializer, 409: CONFLICT}),
    patch=extend_schema(responses={200: s.TierSerializer, 409: CONFLICT}),
    delete=extend_schema(responses={204: None, 409: CONFLICT}),
)
class TierDetail(QueuesApiMixin, generics.RetrieveUpdateDestroyAPIView):
    """A tier: level, position and state; removed (DELETE) unless it rings the agent or carries its call."""

    serializer_class = s.TierSerializer

    def get_queryset(self):
        return selectors.tiers(company=self.company)

    def perform_update(self, serializer):
        with service_errors():
            serializer.instance = config.tier_update(
                tier=serializer.instance, changes=serializer.validated_data
            )

    def perform_destroy(self, instance):
        with service_errors():
            config.tier_del(tier=instance)


# -- members and events ----------------------------------------------------------------------------


class MemberList(QueuesApiMixin, generics.ListAPIView):
    """The callers waiting (Waiting or Trying), the next served first."""

    serializer_class = s.MemberSerializer

    @extend_schema(parameters=[s.MemberFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query(s.MemberFilterSerializer, self.request)
        queue = None
        if "queue" in filters:
            queue = selectors.queues(company=self.company).filter(pk=filters["queue"]).first()
            if queue is None:
                return []
        return selectors.members_waiting(company=self.company, queue=queue)


class MemberDetail(QueuesApiMixin, generics.RetrieveAPIView):
    """A caller, waiting or gone."""

    serializer_class = s.MemberSerializer

    def get_queryset(self):
        return selectors.members(company=self.company)

    def get_object(self):
        member: Member = super().get_object()
        member.score = selectors.member_score(member, timezone.now())
        member.position = None
        if member.waiting:
            waiting = selectors.members_waiting(company=self.company, queue=member.queue)
            member.position = next((m.position for m in waiting if m.pk == member.pk), None)
        return member


class EventList(QueuesApiMixin, generics.ListAPIView):
    """mod_callcenter's events as kept (and pushed to the webhook), newest first."""

    serializer_class = s.QueueEventSerializer

    @extend_schema(parameters=[s.EventFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = query(s.EventFilterSerializer, self.request)
        rows = selectors.events(company=self.company, action=filters.get("action", ""))
        if "queue" in filters:
            rows = rows.filter(queue_id=filters["queue"])
        if "agent" in filters:
            rows = rows.filter(agent_id=filters["agent"])
        return rows
