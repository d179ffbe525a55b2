"""Who is offered which caller: mod_callcenter's distribution, in memory, without the database.

The dispatcher (queues/pbx.py) keeps a `Board` of the queues of one PBX server:
their tiers, agents and waiting members, copied from the database and kept up
to date as it writes each change there. `Board.next_offers(now)` says which
agents to ring for which members now, and when to look again. Times are epoch
seconds (floats).

- Members are served in score order: score = seconds since `score_from` +
  `base_score`, so the order is that of `score_from - base_score` and does not
  change as time passes.
- An agent is offerable when its tier is Ready or No Answer, its state is
  Waiting, its status Available or Available (On Demand), its wrap-up since
  the last bridge has passed and its ready time has come.
- Strategies order the offerable agents within a level (lowest level first).
- Tier rules: with tier_rules_apply a member reaches level N (above the
  queue's lowest) only after tier_rule_wait_second (times N with
  multiply-level) since joining, or at once when no agent was counted
  (logged in: Available or On Demand) at the lower levels and
  no-agent-no-wait is on.
"""

import bisect
import dataclasses
import random

AVAILABLE = "Available"
ON_DEMAND = "Available (On Demand)"
LOGGED_IN = (AVAILABLE, ON_DEMAND)
OFFERABLE_TIER_STATES = ("Ready", "No Answer")
WAITING = "Waiting"


@dataclasses.dataclass
class AgentView:
    id: int
    name: str
    status: str
    state: str
    wrap_up_time: int = 0
    calls_answered: int = 0
    talk_time: int = 0
    last_bridge_end: float | None = None
    last_offered_call: float | None = None
    ready_time: float | None = None
    reachable: bool = True  # a contact to ring, or (uuid-standby) a channel waiting

    def offerable(self, now: float) -> bool:
        return (
            self.reachable
            and self.state == WAITING
            and self.status in LOGGED_IN
            and (self.ready_time is None or self.ready_time <= now)
            and (self.last_bridge_end is None or self.last_bridge_end + self.wrap_up_time <= now)
        )

    def ready_at(self) -> float | None:
        """When a Waiting, logged-in agent held back by a delay or its wrap-up becomes offerable."""
        times = [
            t
            for t in (self.ready_time, self.last_bridge_end and self.last_bridge_end + self.wrap_up_time)
            if t
        ]
        return max(times) if times else None


@dataclasses.dataclass
class TierView:
    agent: AgentView
    level: int
    position: int
    state: str = "Ready"


@dataclasses.dataclass
class MemberView:
    id: int
    joined_at: float
    score_from: float
    base_score: int = 0
    # Agents ringing for this member now, and (top-down, ring-progressively) how far it got.
    ringing: set = dataclasses.field(default_factory=set)
    last_position: tuple | None = None
    rung: list = dataclasses.field(default_factory=list)
    last_ring_at: float | None = None

    @property
    def order(self) -> tuple:
        return (self.score_from - self.base_score, self.joined_at, self.id)

    def score(self, now: float) -> int:
        return int(now - self.score_from) + self.base_score


@dataclasses.dataclass
class QueueView:
    id: int
    strategy: str = "longest-idle-agent"
    tier_rules_apply: bool = False
    tier_rule_wait_second: int = 300
    tier_rule_wait_multiply_level: bool = True
    tier_rule_no_agent_no_wait: bool = False
    ring_progressively_delay: int = 10
    loaded: bool = True
    last_agent_id: int | None = None
    tiers: list = dataclasses.field(default_factory=list)  # TierView, sorted by (level, position)
    members: list = dataclasses.field(default_factory=list)  # MemberView, waiting, in score order

    def tiers_sort(self):
        self.tiers.sort(key=lambda t: (t.level, t.position, t.agent.id))

    def member_add(self, member: MemberView):
        keys = [m.order for m in self.members]
        self.members.insert(bisect.bisect(keys, member.order), member)

    def member_remove(self, member_id: int) -> MemberView | None:
        for i, member in enumerate(self.members):
            if member.id == member_id:
                return self.members.pop(i)
        return None

    def position_of(self, member_id: int) -> int | None:
        """1-based place in the queue among waiting members (for the position announcements)."""
        for i, member in enumerate(self.members, 1):
            if member.id == member_id:
                return i
        return None


@dataclasses.dataclass(frozen=True)
class Choice:
    queue: QueueView
    member: MemberView
    agents: tuple  # AgentView, to ring now (several for ring-all and ring-progressively)


RINGS_MANY = ("ring-all", "ring-progressively")


def earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _ordered(queue: QueueView, tiers: list, member: MemberView, rng: random.Random) -> list:
    """One level's offerable tiers in the order the strategy tries them."""
    strategy = queue.strategy
    if strategy == "longest-idle-agent":
        return sorted(tiers, key=lambda t: (t.agent.last_offered_call or 0.0, t.position))
    if strategy == "agent-with-least-talk-time":
        return sorted(tiers, key=lambda t: (t.agent.talk_time, t.position))
    if strategy == "agent-with-fewest-calls":
        return sorted(tiers, key=lambda t: (t.agent.calls_answered, t.position))
    if strategy == "random":
        shuffled = list(tiers)
        rng.shuffle(shuffled)
        return shuffled
    if strategy == "sequentially-by-agent-order":
        return sorted(tiers, key=lambda t: (t.position, t.agent.last_offered_call or 0.0))
    if strategy == "top-down":
        return _after(tiers, member.last_position)
    if strategy == "round-robin":
        last = next((t for t in queue.tiers if t.agent.id == queue.last_agent_id), None)
        return _after(tiers, (last.level, last.position, last.agent.id) if last else None)
    return tiers  # ring-all, ring-progressively: in position order


def _after(tiers: list, mark: tuple | None) -> list:
    """Tiers in (level, position) order starting after `mark`, wrapping around."""
    if mark is None:
        return tiers
    later = [t for t in tiers if (t.level, t.position, t.agent.id) > mark]
    return later + [t for t in tiers if (t.level, t.position, t.agent.id) <= mark]


class Board:
    """The queues of one PBX server, their tiers and waiting members, for choosing offers."""

    def __init__(self, seed: int | None = None):
        self.queues: dict[int, QueueView] = {}
        self.agents: dict[int, AgentView] = {}
        self.rng = random.Random(seed)

    def survey(self, queue: QueueView, now: float) -> tuple[dict, dict, float | None]:
        """The queue's offerable tiers by level, whether each level counts a logged-in agent, and when
        a Waiting agent held back by a delay or its wrap-up becomes offerable."""
        by_level: dict[int, list] = {}
        counted: dict[int, bool] = {}
        wake = None
        for tier in queue.tiers:
            agent = tier.agent
            counted[tier.level] = counted.get(tier.level, False) or agent.status in LOGGED_IN
            if tier.state not in OFFERABLE_TIER_STATES:
                continue
            if agent.offerable(now):
                by_level.setdefault(tier.level, []).append(tier)
            elif agent.state == WAITING and agent.status in LOGGED_IN:
                ready = agent.ready_at()
                if ready is not None and ready > now:
                    wake = ready if wake is None else min(wake, ready)
        return by_level, counted, wake

    def choose(
        self, queue: QueueView, member: MemberView, now: float, taken: set, survey: tuple | None = None
    ) -> tuple[tuple, float | None]:
        """The agents to ring for this member now, and when a tier rule, a delay or a wrap-up could
        change that (None: nothing time-bound). `taken` holds agents chosen already in this pass."""
        by_level, counted, wake = survey or self.survey(queue, now)
        if member.ringing and queue.strategy != "ring-progressively":
            return (), None  # being offered; the outcome will say what next
        if not by_level:
            return (), wake

        def later(when):
            nonlocal wake
            wake = when if wake is None else min(wake, when)

        lowest = queue.tiers[0].level
        waited = now - member.joined_at
        agent_below = False
        chosen: list = []
        for level in sorted(counted):
            if queue.tier_rules_apply and level > lowest:
                need = queue.tier_rule_wait_second * (level if queue.tier_rule_wait_multiply_level else 1)
                if waited < need and not (queue.tier_rule_no_agent_no_wait and not agent_below):
                    later(member.joined_at + need)
                    break
            agent_below = agent_below or counted[level]
            tiers = [
                t
                for t in by_level.get(level, ())
                if t.agent.id not in taken and t.agent.id not in member.ringing
            ]
            if not tiers:
                continue
            ordered = _ordered(queue, tiers, member, self.rng)
            if queue.strategy not in RINGS_MANY:
                return (ordered[0].agent,), wake
            chosen.extend(t.agent for t in ordered)
        if not chosen:
            return (), wake
        if queue.strategy == "ring-all":
            return tuple(chosen), wake
        # ring-progressively: one agent at first, one more every ring_progressively_delay seconds.
        if member.ringing:
            due = (member.last_ring_at or now) + queue.ring_progressively_delay
            if due > now:
                later(due)
                return (), wake
        return (chosen[0],), wake

    def next_offers(self, now: float, queue_ids=None) -> tuple[list[Choice], float | None]:
        """Every offer to make now, members in score order across the queues (an agent in several
        queues takes the best-scored caller), and when to look again at the latest."""
        queues = (
            [self.queues[q] for q in queue_ids if q in self.queues] if queue_ids else self.queues.values()
        )
        wake = None
        surveys: dict[int, tuple] = {}
        active = []
        for queue in queues:
            if not (queue.loaded and queue.tiers and queue.members):
                continue
            survey = surveys[queue.id] = self.survey(queue, now)
            wake = earliest(wake, survey[2])
            # Only the callers of queues with an agent to offer are sorted and looked at (and those
            # ringing progressively, whose next agent is a matter of time).
            if survey[0] or (
                queue.strategy == "ring-progressively" and any(m.ringing for m in queue.members)
            ):
                active.append(queue)
        waiting = [(m.order, queue, m) for queue in active for m in queue.members]
        if len(active) > 1:
            waiting.sort(key=lambda item: item[0])
        taken: set = set()
        choices: list[Choice] = []
        for _, queue, member in waiting:
            agents, when = self.choose(queue, member, now, taken, surveys[queue.id])
            wake = earliest(wake, when)
            if agents:
                taken.update(a.id for a in agents)
                choices.append(Choice(queue, member, agents))
        return choices, wake
