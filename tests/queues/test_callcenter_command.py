"""`manage.py callcenter`: mod_callcenter's callcenter_config verbs, tables, --json and -ERR."""

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from queues.management.commands.callcenter import USAGE
from queues.models import Agent, Queue, Tier
from tests.factories import CompanyFactory
from tests.queues.factories import AgentFactory, MemberFactory, QueueFactory, TierFactory

pytestmark = pytest.mark.django_db

PROJECT_DIR = Path(__file__).resolve().parents[2]


def cc(*words):
    out = io.StringIO()
    call_command("callcenter", *words, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def cc_error(*words):
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("callcenter", *words, stdout=io.StringIO(), stderr=err)
    assert exit_.value.code == 1
    return err.getvalue()


@pytest.fixture
def acme():
    return CompanyFactory(slug="acme")


@pytest.fixture
def support(acme):
    return QueueFactory(company=acme, name="support")


def test_the_seed_session(acme, support):
    assert cc("agent", "add", "1000@acme", "Callback", "5551000") == "+OK 1000@acme\n"
    assert cc("agent", "set", "contact", "1000@acme", "PJSIP/1000") == "+OK\n"
    assert cc("agent", "set", "status", "1000@acme", "Available", "(On", "Demand)") == "+OK\n"
    assert cc("tier", "add", "support@acme", "1000@acme", "1", "2") == "+OK\n"
    assert cc("tier", "set", "state", "support@acme", "1000@acme", "no", "answer") == "+OK\n"
    agent = Agent.objects.get()
    assert (agent.contact, agent.status) == ("PJSIP/1000", "Available (On Demand)")
    assert Tier.objects.get().state == "No Answer"
    assert cc("tier", "list").splitlines() == [
        "queue|agent|state|level|position",
        "support@acme|1000@acme|No Answer|1|2",
        "+OK",
    ]
    assert cc("queue", "count", "tiers", "support@acme") == "1\n"
    assert cc("queue", "count", "agents", "support@acme", "available") == "0\n"
    assert cc("tier", "del", "support@acme", "1000@acme") == "+OK\n"
    assert cc("agent", "del", "1000@acme") == "+OK\n"
    assert not Agent.objects.exists()


def test_agent_list_is_a_table_and_json(acme):
    AgentFactory(company=acme, name="1000", contact="5551000", status="On Break", wrap_up_time=15)
    lines = cc("agent", "list").splitlines()
    header = lines[0].split("|")
    row = dict(zip(header, lines[1].split("|"), strict=True))
    assert (row["name"], row["status"], row["wrap_up_time"], row["contact"]) == (
        "1000@acme",
        "On Break",
        "15",
        "5551000",
    )
    assert lines[-1] == "+OK"
    [agent] = json.loads(cc("agent", "list", "1000@acme", "--json"))
    assert agent["name"] == "1000@acme" and agent["wrap_up_time"] == 15 and agent["reserve_agents"] is False


def test_queue_list_agents_by_status_and_state(support):
    TierFactory(queue=support, agent__name="1000", agent__status="Available")
    TierFactory(queue=support, agent__name="1001", agent__status="On Break")
    AgentFactory(company=support.company, name="1002", status="Available")
    rows = json.loads(cc("queue", "list", "agents", "support@acme", "available", "waiting", "--json"))
    assert [row["name"] for row in rows] == ["1000@acme"]


def test_member_list_in_score_order(support):
    now = timezone.now()
    MemberFactory(queue=support, cid_number="5550001", joined_at=now - dt.timedelta(seconds=60))
    MemberFactory(queue=support, cid_number="5550002", joined_at=now, base_score=600, cid_name="A|B\nC")
    MemberFactory(queue=support, cid_number="5550003", state="Answered")
    lines = cc("queue", "list", "members", "support@acme").splitlines()
    assert lines[0].startswith("queue|uuid|session_uuid|cid_number|cid_name")
    assert [line.split("|")[3] for line in lines[1:-1]] == ["5550002", "5550001"]
    assert lines[1].split("|")[4] == "A/B C"
    assert cc("queue", "count", "members", "support@acme") == "2\n"
    assert json.loads(cc("member", "list", "--json"))[0]["position"] == 1


def test_queue_unload_load_reload_and_list(support):
    assert cc("queue", "unload", "support@acme") == "+OK\n"
    assert Queue.objects.get().loaded is False
    [row] = json.loads(cc("queue", "list", "--json"))
    assert (
        row["name"] == "support@acme" and row["loaded"] is False and row["strategy"] == "longest-idle-agent"
    )
    cc("queue", "reload", "support@acme")
    cc("queue", "load", "support@acme")
    assert Queue.objects.get().loaded is True
    assert cc("queue", "count") == "1\n"


@pytest.mark.parametrize(
    "words, message",
    [
        (["agent", "add", "1000@nowhere"], "-ERR no company with slug 'nowhere'\n"),
        (["agent", "add", "1000"], "-ERR '1000' is not a name@company-slug such as support@acme\n"),
        (["agent", "add", "1001@acme"], "-ERR A callback agent needs a contact to be rung at.\n"),
        (["agent", "del", "9999@acme"], "-ERR no agent 9999@acme\n"),
        (["agent", "fly"], "-ERR unknown command 'agent fly'; see manage.py callcenter --help\n"),
        (["tier", "add"], "-ERR wrong arguments for tier add; see manage.py callcenter --help\n"),
        (["queue", "load", "sales@acme"], "-ERR no queue sales@acme\n"),
        (["agent", "set", "wrap_up_time", "1000@acme", "soon"], None),
    ],
)
def test_errors_are_one_line_on_stderr(support, words, message):
    AgentFactory(company=support.company, name="1000")
    err = cc_error(*words)
    assert err.startswith("-ERR ") and err.count("\n") == 1
    if message:
        assert err == message


def test_agent_del_in_a_call_is_refused(support):
    AgentFactory(company=support.company, name="1000", state="In a queue call")
    assert cc_error("agent", "del", "1000@acme") == (
        "-ERR Agent 1000@acme is In a queue call: delete it once the call is over.\n"
    )
    assert Agent.objects.exists()


def test_agent_state_is_not_set_by_hand_and_a_busy_agent_keeps_its_contact(support):
    AgentFactory(company=support.company, name="1000", state="Waiting", contact="5551000")
    err = cc_error("agent", "set", "state", "1000@acme", "In a queue call")
    assert err.startswith("-ERR An agent's state is the dispatcher's") and "set the agent's status" in err
    assert Agent.objects.get().state == "Waiting"
    Agent.objects.update(state="In a queue call")  # the dispatcher bridged it
    err = cc_error("agent", "set", "contact", "1000@acme", "5551999")
    assert err == "-ERR Agent 1000@acme is In a queue call: change its contact once the call is over.\n"
    assert cc("agent", "set", "wrap_up_time", "1000@acme", "20") == "+OK\n"
    assert Agent.objects.get().contact == "5551000"
    assert "an agent's state is the dispatcher's: set its status" in " ".join(USAGE.split())


def test_from_the_shell_an_error_exits_1(tmp_path):
    # Run as an operator would: manage.py's own exit status and streams (no database needed).
    result = subprocess.run(
        [sys.executable, "manage.py", "callcenter", "agent", "fly"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "1", "VAR_DIR": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == "-ERR unknown command 'agent fly'; see manage.py callcenter --help\n"
    assert result.stdout == ""
