"""`manage.py callcenter ...`: mod_callcenter's callcenter_config verbs on the database.

The command only writes rows; the dispatcher in the pbx process sees them change (changed_at).
Lists print mod_callcenter's `|`-separated table, a header line first, then +OK; `--json`
prints the same as JSON. A refusal is one `-ERR reason` line on stderr and exit status 1.
"""

import argparse
import inspect
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from queues import selectors
from queues.models import Agent, Member, Queue, Tier
from queues.services import config

USAGE = """\
agent add NAME [TYPE] [CONTACT]        agent del NAME         agent list [NAME]
agent set KEY NAME VALUE               (KEY: status|contact|type|route|max_no_answer|wrap_up_time|
                                        reject_delay_time|busy_delay_time|no_answer_delay_time|
                                        reserve_agents|ready_time; an agent's state is the
                                        dispatcher's: set its status)
tier add QUEUE AGENT [LEVEL] [POSITION]  tier set state|level|position QUEUE AGENT VALUE
                                        (state: Ready, No Answer or Standby, not during a call)
tier del QUEUE AGENT                   tier list [QUEUE]
queue load|unload|reload QUEUE         queue list [QUEUE]
queue list agents QUEUE [STATUS] [STATE]   queue list members|tiers QUEUE
queue count [agents QUEUE [STATUS] | members QUEUE | tiers QUEUE]
member list [QUEUE]
Names are name@company-slug: support@acme, 1000@acme."""


def epoch(when) -> int:
    return int(when.timestamp()) if when else 0


def agent_row(agent: Agent) -> dict:
    return {
        "name": agent.full_name,
        "type": agent.type,
        "contact": agent.contact,
        "status": agent.status,
        "state": agent.state,
        "max_no_answer": agent.max_no_answer,
        "wrap_up_time": agent.wrap_up_time,
        "reject_delay_time": agent.reject_delay_time,
        "busy_delay_time": agent.busy_delay_time,
        "no_answer_delay_time": agent.no_answer_delay_time,
        "reserve_agents": agent.reserve_agents,
        "last_bridge_start": epoch(agent.last_bridge_start),
        "last_bridge_end": epoch(agent.last_bridge_end),
        "last_offered_call": epoch(agent.last_offered_call),
        "last_status_change": epoch(agent.last_status_change),
        "no_answer_count": agent.no_answer_count,
        "calls_answered": agent.calls_answered,
        "talk_time": agent.talk_time,
        "ready_time": epoch(agent.ready_time),
    }


def tier_row(tier: Tier) -> dict:
    return {
        "queue": tier.queue.full_name,
        "agent": tier.agent.full_name,
        "state": tier.state,
        "level": tier.level,
        "position": tier.position,
    }


def queue_row(queue: Queue) -> dict:
    row = {"name": queue.full_name}
    row |= {name: getattr(queue, name) for name in config.QUEUE_SETTINGS}
    return row | {"loaded": queue.loaded, "server": queue.server.name}


def member_row(member: Member) -> dict:
    return {
        "queue": member.queue.full_name,
        "uuid": str(member.uuid),
        "session_uuid": member.session_uuid,
        "cid_number": member.cid_number,
        "cid_name": member.cid_name,
        "joined_epoch": epoch(member.joined_at),
        "base_score": member.base_score,
        "state": member.state,
        "serving_agent": member.agent.full_name if member.agent else "",
        "score": member.score,
        "position": member.position,
    }


def cell(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # One row a line, columns split at |: a caller's name must not add either.
    return " ".join(str(value).split()).replace("|", "/")


class Command(BaseCommand):
    help = "mod_callcenter's callcenter_config verbs (agent, tier, queue, member) on the database."

    def add_arguments(self, parser):
        parser.add_argument("words", nargs="+", metavar="VERB", help="e.g. agent list, see below")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON, not a table")

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = USAGE
        return parser

    def execute(self, *args, **options):
        # mod_callcenter's answer to a refusal, from manage.py and call_command alike.
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            self.stderr.write(f"-ERR {exc}")
            raise SystemExit(1) from None

    def handle(self, *args, words, as_json, **options):
        self.as_json = as_json
        area, verb, rest = words[0], words[1] if len(words) > 1 else "", words[2:]
        action = getattr(self, f"do_{area}_{verb}".replace("-", "_"), None)
        if action is None:
            raise CommandError(f"unknown command {' '.join(words[:2])!r}; see manage.py callcenter --help")
        try:
            inspect.signature(action).bind(*rest)
        except TypeError:
            raise CommandError(
                f"wrong arguments for {area} {verb}; see manage.py callcenter --help"
            ) from None
        try:
            action(*rest)
        except (selectors.NameNotFound, config.ConfigRefused) as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None

    # -- output --

    def ok(self, text: str = ""):
        if self.as_json:
            self.stdout.write(json_dumps({"ok": True, "result": text}))
        else:
            self.stdout.write(f"+OK {text}".rstrip())

    def table(self, rows: list[dict], columns: list[str]):
        if self.as_json:
            self.stdout.write(json_dumps(rows))
            return
        self.stdout.write("|".join(columns))
        for row in rows:
            self.stdout.write("|".join(cell(row[column]) for column in columns))
        self.stdout.write("+OK")

    def count(self, number: int):
        self.stdout.write(json_dumps({"count": number}) if self.as_json else str(number))

    # -- agent --

    def do_agent_add(self, name, type="callback", contact=""):
        agent_name, slug = selectors.split_full_name(name)
        company = selectors.company_by_slug(slug)
        agent = config.agent_add(company=company, name=agent_name, type=type, contact=contact)
        self.ok(agent.full_name)

    def do_agent_del(self, name):
        config.agent_del(agent=selectors.agent_by_full_name(name))
        self.ok()

    def do_agent_list(self, name=None):
        rows = [selectors.agent_by_full_name(name)] if name else selectors.agents(company=None)
        self.table([agent_row(agent) for agent in rows], AGENT_COLUMNS)

    def do_agent_set(self, key, name, *value):
        config.agent_set(agent=selectors.agent_by_full_name(name), key=key, value=" ".join(value))
        self.ok()

    # -- tier --

    def do_tier_add(self, queue, agent, level="1", position="1"):
        config.tier_add(
            queue=selectors.queue_by_full_name(queue),
            agent=selectors.agent_by_full_name(agent),
            level=level,
            position=position,
        )
        self.ok()

    def do_tier_set(self, key, queue, agent, *value):
        config.tier_set(tier=self.tier(queue, agent), key=key, value=" ".join(value))
        self.ok()

    def do_tier_del(self, queue, agent):
        config.tier_del(tier=self.tier(queue, agent))
        self.ok()

    def do_tier_list(self, queue=None):
        queue = selectors.queue_by_full_name(queue) if queue else None
        self.table([tier_row(tier) for tier in selectors.tiers(company=None, queue=queue)], TIER_COLUMNS)

    def tier(self, queue, agent) -> Tier:
        tier = selectors.tiers(
            company=None,
            queue=selectors.queue_by_full_name(queue),
            agent=selectors.agent_by_full_name(agent),
        ).first()
        if tier is None:
            raise CommandError(f"agent {agent} has no tier in {queue}")
        return tier

    # -- queue --

    def do_queue_load(self, name):
        config.queue_load(queue=selectors.queue_by_full_name(name))
        self.ok()

    def do_queue_unload(self, name):
        config.queue_unload(queue=selectors.queue_by_full_name(name))
        self.ok()

    def do_queue_reload(self, name):
        config.queue_reload(queue=selectors.queue_by_full_name(name))
        self.ok()

    def do_queue_list(self, what=None, *rest):
        if what in ("agents", "members", "tiers"):
            getattr(self, f"queue_list_{what}")(*rest)
            return
        if rest:
            raise CommandError("queue list takes one queue name, or agents|members|tiers QUEUE")
        rows = [selectors.queue_by_full_name(what)] if what else selectors.queues(company=None)
        self.table([queue_row(queue) for queue in rows], QUEUE_COLUMNS)

    def queue_list_agents(self, name, status="", state=""):
        rows = selectors.agents(
            company=None,
            queue=selectors.queue_by_full_name(name),
            status=status and config.choice_value(Agent.Status.values, status, "status"),
            state=state and config.choice_value(Agent.State.values, state, "state"),
        )
        self.table([agent_row(agent) for agent in rows], AGENT_COLUMNS)

    def queue_list_members(self, name):
        self.do_member_list(name)

    def queue_list_tiers(self, name):
        self.do_tier_list(name)

    def do_queue_count(self, what=None, name=None, status=""):
        if what is None:
            self.count(selectors.queues(company=None).count())
            return
        if what not in ("agents", "members", "tiers") or name is None or (status and what != "agents"):
            raise CommandError("queue count takes agents QUEUE [STATUS], members QUEUE or tiers QUEUE")
        queue = selectors.queue_by_full_name(name)
        if what == "agents":
            status = status and config.choice_value(Agent.Status.values, status, "status")
            self.count(selectors.queue_count_agents(queue=queue, status=status))
        elif what == "members":
            self.count(selectors.queue_count_members(queue=queue))
        else:
            self.count(selectors.queue_count_tiers(queue=queue))

    # -- member --

    def do_member_list(self, queue=None):
        queue = selectors.queue_by_full_name(queue) if queue else None
        rows = selectors.members_waiting(company=None, queue=queue)
        self.table([member_row(member) for member in rows], MEMBER_COLUMNS)


AGENT_COLUMNS = [
    "name",
    "type",
    "contact",
    "status",
    "state",
    "max_no_answer",
    "wrap_up_time",
    "reject_delay_time",
    "busy_delay_time",
    "no_answer_delay_time",
    "reserve_agents",
    "last_bridge_start",
    "last_bridge_end",
    "last_offered_call",
    "last_status_change",
    "no_answer_count",
    "calls_answered",
    "talk_time",
    "ready_time",
]
TIER_COLUMNS = ["queue", "agent", "state", "level", "position"]
QUEUE_COLUMNS = ["name", *config.QUEUE_SETTINGS, "loaded", "server"]
MEMBER_COLUMNS = [
    "queue",
    "uuid",
    "session_uuid",
    "cid_number",
    "cid_name",
    "joined_epoch",
    "base_score",
    "state",
    "serving_agent",
    "score",
    "position",
]


def json_dumps(value) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)
