"""The writes behind mod_callcenter's `callcenter_config` verbs (agent, tier and queue), for the
CLI, the API and the admin.

Every write saves the row (or passes changed_at to update()): the dispatcher in the pbx process
notices changes made elsewhere by the rows' changed_at. Bad values raise Django's ValidationError
(from the models' full_clean); a write refused because of what the dispatcher is doing raises
ConfigRefused.
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from accounts.models import Company, User
from queues.models import Agent, Member, Queue, Tier
from queues.services.agents import agent_status_set


class ConfigRefused(ValueError):
    """The write is refused in the state the agent or tier is in now; `code` names the reason."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


# The keys of `agent set` other than status, which goes through services/agents.py. An agent's state
# is the dispatcher's: no key sets it.
AGENT_SETTINGS = (
    "type",
    "contact",
    "route",
    "max_no_answer",
    "wrap_up_time",
    "reject_delay_time",
    "busy_delay_time",
    "no_answer_delay_time",
    "reserve_agents",
    "ready_time",
)
AGENT_SET_KEYS = ("status", *AGENT_SETTINGS)
# How the dispatcher reaches the agent: not changed under a call it rings or carries.
AGENT_REACH = ("type", "contact", "route")
TIER_SET_KEYS = ("state", "level", "position")
QUEUE_SETTINGS = (
    "strategy",
    "moh_sound",
    "record_template",
    "time_base_score",
    "tier_rules_apply",
    "tier_rule_wait_second",
    "tier_rule_wait_multiply_level",
    "tier_rule_no_agent_no_wait",
    "discard_abandoned_after",
    "abandoned_resume_allowed",
    "max_wait_time",
    "max_wait_time_with_no_agent",
    "max_wait_time_with_no_agent_time_reached",
    "ring_progressively_delay",
    "offer_timeout",
    "exit_keys",
    "callback_key",
    "announce_position_every",
    "service_level_seconds",
)

# The dispatcher holds these agents and tiers in a call: removing them would strand the call. Each
# refusal is decided on the row locked in the writing transaction, so a call that starts meanwhile
# waits for the write (or the write sees the call).
AGENT_BUSY_STATES = (Agent.State.RECEIVING, Agent.State.RESERVED, Agent.State.IN_A_QUEUE_CALL)
TIER_BUSY_STATES = (Tier.State.OFFERING, Tier.State.ACTIVE_INBOUND)
STATE_IS_THE_DISPATCHERS = (
    "An agent's state is the dispatcher's, changed by its calls: set the agent's status instead "
    "(Available, Available (On Demand), On Break, Logged Out)."
)

_TRUE = {"true", "yes", "on", "1", "t"}
_FALSE = {"false", "no", "off", "0", "f"}


def setting_key(key: str) -> str:
    """mod_callcenter spells keys with - or _ (max-no-answer, max_no_answer): both are taken."""
    return key.strip().lower().replace("-", "_")


def choice_value(values: list[str], text: str, what: str) -> str:
    """A choice written in any letter case ("available", "on break") as the model stores it."""
    for value in values:
        if value.lower() == " ".join(text.split()).lower():
            return value
    raise ValidationError(f"Unknown {what} {text!r}; one of: {', '.join(values)}.")


def field_value(model: type[models.Model], name: str, value):
    """A value for the model's field, converted from the text a command line gives."""
    field = model._meta.get_field(name)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if isinstance(field, models.BooleanField):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValidationError({name: f"{name} is true or false, not {value!r}."})
    if isinstance(field, models.DateTimeField):
        # mod_callcenter's ready_time is an epoch; 0 means "now" (no wait).
        if text.isascii() and text.isdigit():
            seconds = int(text)
            if seconds > 253402300799:
                raise ValidationError({name: f"{value!r} is beyond any calendar."})
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC) if seconds else None
        if not text:
            return None
        parsed = field.to_python(text)
        return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
    if isinstance(field, models.CharField) and field.choices:
        return choice_value([choice for choice, _label in field.choices], text, name)
    if isinstance(field, models.IntegerField):
        if not (text.isascii() and text.isdigit()) or len(text) > 12:
            raise ValidationError({name: f"{name} is a whole number of at least 0, not {value!r}."})
        return int(text)
    return value


def _save(obj: models.Model, changes: dict) -> models.Model:
    """Apply the changes, check the whole row as the model does, save it (changed_at with it)."""
    for name, value in changes.items():
        setattr(obj, name, value)
    obj.full_clean()
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        # Two writers raced past full_clean's uniqueness check.
        raise ValidationError(f"{obj._meta.verbose_name} already exists: {exc}") from None
    return obj


def _check_user(*, company: Company, user: User | None):
    if user is not None and user.company_id != company.pk:
        raise ValidationError({"user": "The user belongs to another company."})


# -- agents ----------------------------------------------------------------------------------------


def agent_add(
    *,
    company: Company,
    name: str,
    type: str = Agent.Type.CALLBACK,
    contact: str = "",
    user: User | None = None,
    settings: dict | None = None,
) -> Agent:
    """A new agent of the company, Logged Out (mod_callcenter's `agent add`). A callback agent
    needs its contact now: it is how the dispatcher rings it."""
    _check_user(company=company, user=user)
    changes = {"type": field_value(Agent, "type", type), "contact": contact, "user": user}
    changes |= _agent_settings(settings or {})
    return _save(Agent(company=company, name=name), changes)


def agent_update(*, agent: Agent, changes: dict) -> Agent:
    """Change an agent's settings (not its status or state), checked as a whole. How the agent is
    reached (type, contact, route) stays while the dispatcher rings it or holds it in a call."""
    identity = {key: changes[key] for key in ("name", "user") if key in changes}
    settings = {key: value for key, value in changes.items() if key not in identity}
    if "user" in identity:
        _check_user(company=agent.company, user=identity["user"])
    settings = _agent_settings(settings)
    with transaction.atomic():
        locked = Agent.objects.select_for_update(of=("self",)).select_related("company").get(pk=agent.pk)
        reach = [key for key in AGENT_REACH if key in settings and settings[key] != getattr(locked, key)]
        if reach and locked.state in AGENT_BUSY_STATES:
            raise ConfigRefused(
                "agent_busy",
                f"Agent {locked.full_name} is {locked.state}: change its {', '.join(reach)} once the call "
                "is over.",
            )
        return _save(locked, {**settings, **identity})


def _agent_settings(settings: dict) -> dict:
    unknown = set(settings) - set(AGENT_SETTINGS)
    if unknown:
        raise ValidationError(f"Unknown agent setting(s): {', '.join(sorted(unknown))}.")
    return {name: field_value(Agent, name, value) for name, value in settings.items()}


def agent_set(*, agent: Agent, key: str, value) -> Agent:
    """mod_callcenter's `agent set KEY AGENT VALUE`: status through its own service (which emits the
    event), any other key as a setting. Not the state: it is the dispatcher's."""
    key = setting_key(key)
    if key == "status":
        status = choice_value(Agent.Status.values, str(value), "status")
        return agent_status_set(agent_id=agent.pk, status=status)
    if key == "state":
        raise ValidationError(STATE_IS_THE_DISPATCHERS)
    if key not in AGENT_SETTINGS:
        raise ValidationError(f"Unknown key {key!r}; one of: {', '.join(AGENT_SET_KEYS)}.")
    return agent_update(agent=agent, changes={key: value})


@transaction.atomic
def agent_del(*, agent: Agent) -> None:
    """Remove an agent and its tiers (mod_callcenter's `agent del`); refused while the dispatcher
    rings it or holds it in a call."""
    locked = Agent.objects.select_for_update().filter(pk=agent.pk).first()
    if locked is None:
        return
    if locked.state in AGENT_BUSY_STATES:
        raise ConfigRefused(
            "agent_busy", f"Agent {agent.full_name} is {locked.state}: delete it once the call is over."
        )
    locked.delete()


# -- tiers -----------------------------------------------------------------------------------------


def tier_add(*, queue: Queue, agent: Agent, level: int = 1, position: int = 1) -> Tier:
    """Put an agent in a queue at a level and position (mod_callcenter's `tier add`); both belong
    to one company, and an agent has one tier per queue."""
    return _save(
        Tier(queue=queue, agent=agent),
        {"level": field_value(Tier, "level", level), "position": field_value(Tier, "position", position)},
    )


def tier_update(*, tier: Tier, changes: dict) -> Tier:
    """Change a tier's level, position or state, checked as a whole. Offering and Active Inbound are
    the dispatcher's: never set by hand, and a tier in either keeps its state until the call is over."""
    unknown = set(changes) - set(TIER_SET_KEYS)
    if unknown:
        raise ValidationError(f"Unknown tier key(s): {', '.join(sorted(unknown))}.")
    values = {name: field_value(Tier, name, value) for name, value in changes.items()}
    if values.get("state") in TIER_BUSY_STATES:
        raise ValidationError(f"{values['state']} is the dispatcher's: set Ready, No Answer or Standby.")
    with transaction.atomic():
        locked = Tier.objects.select_for_update(of=("self",)).select_related("queue", "agent").get(pk=tier.pk)
        if "state" in values and values["state"] != locked.state and locked.state in TIER_BUSY_STATES:
            raise ConfigRefused(
                "tier_busy", f"The tier is {locked.state}: set its state once the call is over."
            )
        return _save(locked, values)


def tier_set(*, tier: Tier, key: str, value) -> Tier:
    """mod_callcenter's `tier set KEY QUEUE AGENT VALUE` (key: state, level or position)."""
    key = setting_key(key)
    if key not in TIER_SET_KEYS:
        raise ValidationError(f"Unknown key {key!r}; one of: {', '.join(TIER_SET_KEYS)}.")
    return tier_update(tier=tier, changes={key: value})


@transaction.atomic
def tier_del(*, tier: Tier) -> None:
    """Take an agent out of a queue (mod_callcenter's `tier del`); refused while that tier rings
    the agent or carries its call."""
    locked = Tier.objects.select_for_update().filter(pk=tier.pk).first()
    if locked is None:
        return
    if locked.state in TIER_BUSY_STATES:
        raise ConfigRefused("tier_busy", f"The tier is {locked.state}: delete it once the call is over.")
    locked.delete()


# -- queues ----------------------------------------------------------------------------------------


def queue_update(*, queue: Queue, changes: dict) -> Queue:
    """Change a queue's settings, checked as a whole; the dispatcher takes them up."""
    unknown = set(changes) - set(QUEUE_SETTINGS)
    if unknown:
        raise ValidationError(f"Unknown queue setting(s): {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        locked = Queue.objects.select_for_update(of=("self",)).select_related("company").get(pk=queue.pk)
        return _save(locked, {name: field_value(Queue, name, value) for name, value in changes.items()})


def _queue_loaded_set(*, queue: Queue, loaded: bool) -> Queue:
    Queue.objects.filter(pk=queue.pk).update(loaded=loaded, changed_at=timezone.now())
    queue.refresh_from_db(fields=["loaded", "changed_at"])
    return queue


def queue_load(*, queue: Queue) -> Queue:
    """The dispatcher serves the queue again (mod_callcenter's `queue load`)."""
    return _queue_loaded_set(queue=queue, loaded=True)


def queue_unload(*, queue: Queue) -> Queue:
    """The dispatcher stops serving the queue (mod_callcenter's `queue unload`): no new offers, no new
    callers; the callers it was not offering are sent on in the dialplan; calls already offered or
    bridged go on to their end."""
    return _queue_loaded_set(queue=queue, loaded=False)


def queue_reload(*, queue: Queue) -> Queue:
    """Marks the queue changed, so the dispatcher reads it again (mod_callcenter's `queue reload`)."""
    Queue.objects.filter(pk=queue.pk).update(changed_at=timezone.now())
    queue.refresh_from_db(fields=["changed_at"])
    return queue


@transaction.atomic
def queue_del(*, queue: Queue) -> None:
    """Delete a queue, refused while callers wait in it or its calls go on: unload it first, and
    its callers are sent on in the dialplan. Decided on the locked queue row: a caller joining
    meanwhile (member_join locks it too) either waits and finds no queue, or is seen here."""
    locked = (
        Queue.objects.select_for_update(of=("self",)).select_related("company").filter(pk=queue.pk).first()
    )
    if locked is None:
        return
    if (
        locked.members.filter(state__in=Member.WAITING_STATES).exists()
        or locked.offers.filter(ended_at__isnull=True).exists()
    ):
        raise ConfigRefused(
            "queue_busy", f"{locked.full_name} has callers waiting or calls going on; unload it first"
        )
    locked.delete()
