"""Queues: how fast the dispatcher picks the next offer, and how fast a new caller's agent is rung.

    make bench
    DEBUG=1 .venv/bin/python bench/queues_bench.py                       # SQLite (the embedded default)
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/queues_bench.py --profile

(a) The engine alone (queues/engine.py, in memory): 50 queues (their strategies cycle through the
nine), 500 agents (each at level 1 in its own queue and level 2 in the next one), every agent in
a call, and 100 to 1,000 callers waiting. One round frees one agent (the realistic event: a call
ended) and times `Board.next_offers`, the dispatcher's pass; the agent is then busy again. Goal:
p99 under 2 ms at 1,000 callers.

(b) End to end: pbxsim, the real PbxProcess (in a thread of this process) with the queues app, a
throw-away database. 49 queues of 10 agents who never answer: 490 callers keep them ringing, then
100 (later 1,000) more callers wait. The 50th queue has 10 free agents; a caller calls it in, is
timed from `member_join`'s return (its transaction committed, in the pbx process's database
thread) to the agent's Originate handed to the AMI transport (AmiClient.originate_queued, which
writes it at once), then hangs up, which frees the agent for a later round. Both ends are
bench-only wrappers of those functions, in this process; no production code is changed. Also
printed: the same from Member.joined_at (stamped at the start of member_join's transaction), and
where the time goes. Goal: p99 under 5 ms at 1,000 callers.

Prints figures; asserts nothing.
"""

import argparse
import cProfile
import functools
import io
import os
import pstats
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
from bench.common import ms as ms_  # noqa: E402
from bench.common import percentile  # noqa: E402

ms = functools.partial(ms_, digits=3)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from accounts.models import Company  # noqa: E402
from queues import pbx as queues_pbx  # noqa: E402
from queues.engine import AgentView, Board, MemberView, QueueView, TierView  # noqa: E402
from queues.models import Agent, Member, Offer, Queue, Tier  # noqa: E402
from queues.services import calls  # noqa: E402
from telephony.ami import AmiClient  # noqa: E402
from telephony.facade import PbxFacade  # noqa: E402
from telephony.models import DialRoute, PbxServer  # noqa: E402
from telephony.testing import pbx_process, running_contract_pbxsim, wait_for  # noqa: E402

MANAGER_USERS = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
STRATEGIES = (
    "longest-idle-agent",
    "agent-with-least-talk-time",
    "agent-with-fewest-calls",
    "random",
    "sequentially-by-agent-order",
    "top-down",
    "round-robin",
    "ring-all",
    "ring-progressively",
)
QUEUES, AGENTS_PER_QUEUE = 50, 10
PHONES = """
[bench-queue-phones]
; a caller who waits as long as it takes
exten => 5563001,1,Answer()
 same => n,Wait(100000)
 same => n,Hangup()
; an agent who rings and never answers
exten => 5563002,1,Ringing()
 same => n,Wait(100000)
"""
CALLER, AGENT = "5563001", "5563002"
WINDOW = 20


# -- (a) the engine alone ------------------------------------------------------------------------


def busy_board(callers: int, rng: random.Random) -> Board:
    board = Board(seed=1)
    agents = [
        AgentView(id=i, name=f"{1000 + i}@bench", status="Available", state="In a queue call")
        for i in range(QUEUES * AGENTS_PER_QUEUE)
    ]
    for agent in agents:
        agent.last_offered_call = 1e9 - rng.random() * 3600
        agent.talk_time, agent.calls_answered = rng.randrange(3600), rng.randrange(50)
        board.agents[agent.id] = agent
    for q in range(QUEUES):
        queue = QueueView(id=q, strategy=STRATEGIES[q % len(STRATEGIES)])
        own = agents[q * AGENTS_PER_QUEUE : (q + 1) * AGENTS_PER_QUEUE]
        backup = agents[((q + 1) % QUEUES) * AGENTS_PER_QUEUE :][:AGENTS_PER_QUEUE]
        queue.tiers = [TierView(a, 1, p, "Active Inbound") for p, a in enumerate(own, 1)]
        queue.tiers += [TierView(a, 2, p, "Active Inbound") for p, a in enumerate(backup, 1)]
        queue.tiers_sort()
        board.queues[q] = queue
    now = time.time()
    for m in range(callers):
        joined = now - rng.random() * 600
        board.queues[rng.randrange(QUEUES)].member_add(
            MemberView(id=m, joined_at=joined, score_from=joined, base_score=rng.choice((0, 0, 0, 60)))
        )
    return board


def engine_bench(rounds: int):
    print(
        f"(a) Board.next_offers when one agent becomes free: {QUEUES} queues (the nine strategies), "
        f"{QUEUES * AGENTS_PER_QUEUE} agents in 2 queues each, {rounds} rounds"
    )
    for callers in (100, 250, 500, 1000):
        rng = random.Random(callers)
        board = busy_board(callers, rng)
        agents = list(board.agents.values())
        tiers = {a.id: [t for q in board.queues.values() for t in q.tiers if t.agent is a] for a in agents}
        times, cpu, offers = [], [], 0
        for _ in range(rounds):
            agent = rng.choice(agents)
            agent.state, agent.last_bridge_end = "Waiting", time.time() - 60
            for tier in tiers[agent.id]:
                tier.state = "Ready"
            start, start_cpu = time.perf_counter(), time.thread_time()
            choices, _ = board.next_offers(time.time())
            times.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - start_cpu)
            offers += len(choices)
            agent.state = "In a queue call"
            for tier in tiers[agent.id]:
                tier.state = "Active Inbound"
        print(
            f"  {callers:5d} callers waiting: p50 {ms(statistics.median(times))}, "
            f"p99 {ms(percentile(times, 0.99))}, max {ms(max(times))} "
            f"({offers} offers chosen; goal p99 < 2 ms); CPU time p50 {ms(statistics.median(cpu))}, "
            f"p99 {ms(percentile(cpu, 0.99))}"
        )


# -- (b) end to end ------------------------------------------------------------------------------


class Stamps:
    """Bench-only wrappers, in this process, of the functions that bound the measured path."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_uuid: dict[str, dict] = {}
        self.sent = threading.Event()
        self.watch: set[str] = set()  # the queue names measured
        self._wrap(calls, "member_join", self._join)
        self._wrap(queues_pbx.Dispatcher, "member_put", self._registered)
        self._wrap(Board, "next_offers", self._next_offers)
        self._wrap(calls, "offer_claim", self._claim)
        self._wrap(AmiClient, "originate_queued", self._originate)
        self.current: dict | None = None

    @staticmethod
    def _wrap(owner, name, make):
        setattr(owner, name, make(getattr(owner, name)))

    def _join(self, member_join):
        def wrapped(**kwargs):
            joined = member_join(**kwargs)
            done = time.perf_counter()
            if kwargs["queue_name"] in self.watch:
                stamps = {
                    "join_returned": done,
                    "joined_at": done - (time.time() - joined.member.joined_at.timestamp()),
                }
                with self.lock:
                    self.by_uuid[str(joined.member.uuid)] = stamps
                    self.current = stamps
            return joined

        return wrapped

    def _registered(self, member_put):
        def wrapped(dispatcher, view, info):
            with self.lock:
                stamps = self.by_uuid.get(info.uuid)
            if stamps is not None:
                stamps["registered"] = time.perf_counter()
            return member_put(dispatcher, view, info)

        return wrapped

    def _next_offers(self, next_offers):
        def wrapped(board, now, queue_ids=None):
            start = time.perf_counter()
            result = next_offers(board, now, queue_ids)
            stamps = self.current
            if stamps is not None and "registered" in stamps and "pass" not in stamps:
                stamps["pass"] = (start, time.perf_counter())
            return result

        return wrapped

    def _claim(self, offer_claim):
        def wrapped(**kwargs):
            start = time.perf_counter()
            offer = offer_claim(**kwargs)
            stamps = self.current
            if stamps is not None and "pass" in stamps and "claim" not in stamps:
                stamps["claim"] = (start, time.perf_counter())
            return offer

        return wrapped

    def _originate(self, originate_queued):
        async def wrapped(client, action, **kwargs):
            written = time.perf_counter()
            variables = dict(v.split("=", 1) for v in action.get("Variable", ()))
            with self.lock:
                stamps = self.by_uuid.get(variables.get("cc_member_uuid", ""))
            if stamps is not None and "written" not in stamps:
                stamps["written"] = written
                self.sent.set()
            return await originate_queued(client, action, **kwargs)

        return wrapped


def setup_company(server):
    company = Company.objects.create(name="Bench", slug="bench")
    queues = []
    for q in range(QUEUES):
        queue = Queue.objects.create(company=company, name=f"q{q}", server=server, offer_timeout=3600)
        queues.append(queue)
        for p in range(1, AGENTS_PER_QUEUE + 1):
            agent = Agent.objects.create(
                company=company,
                name=f"{1000 + q * AGENTS_PER_QUEUE + p}",
                contact=AGENT,
                status=Agent.Status.AVAILABLE,
                state=Agent.State.WAITING,
                wrap_up_time=0,
            )
            Tier.objects.create(queue=queue, agent=agent, level=1, position=p)
    return company, queues


class Callers:
    def __init__(self, server):
        self.server = server
        self.facade = PbxFacade()
        self.count = 0

    def call(self, queue) -> str:
        self.count += 1
        channel_id = f"bench-in-{self.count}"
        self.facade.originate(
            server=self.server,
            channel_id=channel_id,
            channel=f"Local/{CALLER}@bench-queue-phones",
            context="platform-queue",
            exten="5000",
            variables={"PLATFORM_QUEUE": queue.full_name},
            caller_id=f'"Caller {self.count}" <55500{self.count:05d}>',
            app="bench-caller",
            timeout=30,
        )
        return channel_id

    def hangup(self, channel_id):
        self.facade.hangup(server=self.server, channel=channel_id)


def fill(callers: Callers, dispatcher, queues, total: int):
    """Callers into the 49 background queues, round robin, until `total` are in the dispatcher's
    board; at most WINDOW of them joining at once (a burst longer than the FastAGI script's timeout
    would be refused)."""
    already = len(dispatcher.members)
    for n in range(total - already):
        callers.call(queues[1 + (already + n) % (QUEUES - 1)])
        wait_for(
            lambda n=n: len(dispatcher.members) >= already + n + 1 - WINDOW,
            timeout=60,
            interval=0.01,
            what="the callers joining",
        )
    wait_for(lambda: len(dispatcher.members) >= total, timeout=60, interval=0.05, what=f"{total} callers")


def measure(callers: Callers, dispatcher, stamps: Stamps, queue, rounds: int):
    results = []
    for _ in range(rounds):
        stamps.sent.clear()
        with stamps.lock:
            stamps.current = None
        channel_id = callers.call(queue)
        if not stamps.sent.wait(20):
            member = Member.objects.filter(session_uuid=channel_id).first()
            print(f"    no Originate in 20 s for {channel_id} (member {member and member.state}): left out")
            callers.hangup(channel_id)
            continue
        results.append(stamps.current)
        callers.hangup(channel_id)
        # The member leaves and its agent's leg is hung up: wait until the agent is free again.
        wait_for(
            lambda: (
                not any(o.queue_id == queue.pk for o in list(dispatcher.offers.values()))
                and not any(m.queue_id == queue.pk for m in list(dispatcher.members.values()))
            ),
            timeout=20,
            interval=0.005,
            what="the measured caller's end",
        )
        time.sleep(0.02)
    return results


def report(label, results):
    def span(key_from, key_to):
        return [r[key_to] - r[key_from] for r in results]

    total = span("join_returned", "written")
    from_row = span("joined_at", "written")
    print(
        f"  {label}: member_join returned -> Originate written: p50 {ms(statistics.median(total))}, "
        f"p99 {ms(percentile(total, 0.99))}, max {ms(max(total))} (goal p99 < 5 ms)"
    )
    print(
        f"    from Member.joined_at (start of its transaction): p50 {ms(statistics.median(from_row))}, "
        f"p99 {ms(percentile(from_row, 0.99))}"
    )
    parts = {
        "join returned -> registered in the lane (AGI Set/Get round trips, the lane's queue)": [
            r["registered"] - r["join_returned"] for r in results
        ],
        "registered -> the pass starts": [r["pass"][0] - r["registered"] for r in results],
        "Board.next_offers": [r["pass"][1] - r["pass"][0] for r in results],
        "pass -> offer_claim starts (a database thread hop)": [r["claim"][0] - r["pass"][1] for r in results],
        "offer_claim (one transaction)": [r["claim"][1] - r["claim"][0] for r in results],
        "claimed -> Originate written (route, claim and mark the record: 3 hops)": [
            r["written"] - r["claim"][1] for r in results
        ],
    }
    for name, values in parts.items():
        print(f"      {name}: p50 {ms(statistics.median(values))}, p99 {ms(percentile(values, 0.99))}")


def end_to_end(rounds: int, profile: bool):
    print(
        f"(b) member registered -> agent Originate written, through the pbx process on pbxsim "
        f"({connection.vendor}): {QUEUES} queues, {QUEUES * AGENTS_PER_QUEUE} agents, {rounds} rounds"
    )
    stamps = Stamps()
    with tempfile.TemporaryDirectory() as tmp:
        phones = Path(tmp) / "extensions_bench_queues.conf"
        phones.write_text(PHONES)
        with running_contract_pbxsim(
            Path(tmp), manager_users=MANAGER_USERS, extra_dialplans=[phones], time_scale=1
        ) as sim:
            server = PbxServer.objects.create(
                name="bench",
                ami_port=sim.port,
                ami_username="platform",
                ami_secret="platform-secret",
                agi_bind_port=sim.agi_port,
            )
            DialRoute.objects.create(
                server=server, name="default", template="Local/{number}@bench-queue-phones"
            )
            _, queues = setup_company(server)
            measured = queues[0]
            stamps.watch.add(measured.full_name)
            app = queues_pbx.Queues()
            callers = Callers(server)
            try:
                with pbx_process([server], apps=[app]) as runner:
                    wait_for(
                        lambda: PbxServer.objects.get(pk=server.pk).state == "connected",
                        timeout=30,
                        what="the AMI login",
                    )
                    wait_for(lambda: app.dispatchers, timeout=30, what="the queues app")
                    dispatcher = next(iter(app.dispatchers.values()))
                    busy = (QUEUES - 1) * AGENTS_PER_QUEUE
                    start = time.perf_counter()
                    fill(callers, dispatcher, queues, busy)
                    wait_for(
                        lambda: Offer.objects.filter(result=Offer.Result.RINGING).count() == busy,
                        timeout=120,
                        what="every background agent ringing",
                    )
                    print(f"  {busy} background agents ringing after {time.perf_counter() - start:.1f} s")
                    for waiting in (100, 1000):
                        fill(callers, dispatcher, queues, busy + waiting)
                        time.sleep(2)  # the joins' tails
                        count = Member.objects.filter(state=Member.State.WAITING).count()
                        profiler = cProfile.Profile() if profile and waiting == 1000 else None
                        if profiler:
                            runner.loop.call_soon_threadsafe(profiler.enable)
                        results = measure(callers, dispatcher, stamps, measured, rounds)
                        if profiler:
                            runner.loop.call_soon_threadsafe(profiler.disable)
                            time.sleep(0.1)
                        report(f"{count} callers waiting (and {busy} ringing an agent)", results)
                        if profiler:
                            out = io.StringIO()
                            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
                            print(
                                "    cProfile of the pbx process's loop thread over those rounds (own time):"
                            )
                            print("\n".join("      " + line for line in out.getvalue().splitlines()[4:]))
            finally:
                callers.facade.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2000, help="engine rounds per caller count")
    parser.add_argument("--e2e-rounds", type=int, default=100, help="measured callers per caller count")
    parser.add_argument("--profile", action="store_true", help="cProfile the pbx loop at 1,000 callers")
    args = parser.parse_args()

    engine_bench(args.rounds)

    sqlite = connection.vendor == "sqlite"
    connection.settings_dict["TEST"]["NAME"] = (
        str(Path(tempfile.mkdtemp()) / "bench.sqlite3") if sqlite else f"bench_queues_{os.getpid()}"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        end_to_end(args.e2e_rounds, args.profile)
    finally:
        connection.close()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
