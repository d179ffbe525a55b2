"""queues/engine.py alone: who is offered which caller, with mod_callcenter's rules. No database."""

import pytest

from queues.engine import AgentView, Board, MemberView, QueueView, TierView

NOW = 1_000_000.0


def agent(agent_id, **fields):
    values = {"status": "Available", "state": "Waiting"} | fields
    return AgentView(id=agent_id, name=f"{1000 + agent_id}@acme", **values)


def member(member_id, joined_at=NOW - 60, **fields):
    score_from = fields.pop("score_from", joined_at)
    return MemberView(id=member_id, joined_at=joined_at, score_from=score_from, **fields)


def queue(queue_id=1, tiers=(), members=(), **fields):
    """A queue with `tiers` given as (agent, level, position[, tier state]) and waiting `members`."""
    view = QueueView(id=queue_id, **fields)
    view.tiers = [TierView(a, level, position, *state) for a, level, position, *state in tiers]
    view.tiers_sort()
    for m in members:
        view.member_add(m)
    return view


def board(*queues, seed=None):
    made = Board(seed=seed)
    for q in queues:
        made.queues[q.id] = q
        for tier in q.tiers:
            made.agents[tier.agent.id] = tier.agent
    return made


def offered(made, now=NOW):
    """{member id: (agent ids rung)} of one pass, and when to look again."""
    choices, wake = made.next_offers(now)
    return {c.member.id: tuple(a.id for a in c.agents) for c in choices}, wake


def order_of(strategy, agents, members=3, **fields):
    """The agents offered to `members` callers in one pass (the best-scored caller gets the first)."""
    q = queue(
        strategy=strategy,
        tiers=[(a, 1, position) for position, a in enumerate(agents, 1)],
        members=[member(i, joined_at=NOW - 100 + i) for i in range(1, members + 1)],
        **fields,
    )
    choices, _ = board(q).next_offers(NOW)
    return [c.agents[0].id for c in choices]


# -- the nine strategies -------------------------------------------------------------------------


def test_longest_idle_agent_offers_the_agent_offered_longest_ago_first():
    agents = [agent(1, last_offered_call=NOW - 10), agent(2, last_offered_call=NOW - 500), agent(3)]
    assert order_of("longest-idle-agent", agents) == [3, 2, 1]


def test_agent_with_least_talk_time_first():
    agents = [agent(1, talk_time=300), agent(2, talk_time=20), agent(3, talk_time=100)]
    assert order_of("agent-with-least-talk-time", agents) == [2, 3, 1]


def test_agent_with_fewest_calls_first():
    agents = [agent(1, calls_answered=7), agent(2, calls_answered=9), agent(3, calls_answered=2)]
    assert order_of("agent-with-fewest-calls", agents) == [3, 1, 2]


def test_equal_counters_fall_back_to_the_tier_position():
    agents = [agent(1, talk_time=5), agent(2, talk_time=5), agent(3, talk_time=5)]
    assert order_of("agent-with-least-talk-time", agents) == [1, 2, 3]


def test_random_is_the_seeds_order_and_not_always_the_positions():
    def picks(seed):
        agents = [agent(i) for i in range(1, 6)]
        q = queue(
            strategy="random",
            tiers=[(a, 1, position) for position, a in enumerate(agents, 1)],
            members=[member(i, joined_at=NOW - 100 + i) for i in range(1, 6)],
        )
        return [c.agents[0].id for c in board(q, seed=seed).next_offers(NOW)[0]]

    orders = [picks(seed) for seed in range(20)]
    assert orders == [picks(seed) for seed in range(20)]  # a seed repeats its draws
    assert all(sorted(order) == [1, 2, 3, 4, 5] for order in orders)
    assert len({tuple(order) for order in orders}) > 5  # and seeds differ


def test_sequentially_by_agent_order_follows_positions_whatever_the_idle_time():
    agents = [agent(1, last_offered_call=NOW - 1), agent(2, last_offered_call=NOW - 2), agent(3)]
    q = queue(
        strategy="sequentially-by-agent-order",
        tiers=[(agents[0], 1, 3), (agents[1], 1, 1), (agents[2], 1, 2)],
        members=[member(i, joined_at=NOW - 100 + i) for i in (1, 2, 3)],
    )
    assert [c.agents[0].id for c in board(q).next_offers(NOW)[0]] == [2, 3, 1]


def test_top_down_goes_on_after_the_position_this_caller_tried_last_and_wraps():
    agents = [agent(i) for i in (1, 2, 3)]
    tiers = [(a, 1, position) for position, a in enumerate(agents, 1)]
    fresh = member(1, joined_at=NOW - 90)
    tried_second = member(2, joined_at=NOW - 80, last_position=(1, 2, 2))
    tried_last = member(3, joined_at=NOW - 70, last_position=(1, 3, 3))

    assert offered(board(queue(strategy="top-down", tiers=tiers, members=[fresh])))[0] == {1: (1,)}
    assert offered(board(queue(strategy="top-down", tiers=tiers, members=[tried_second])))[0] == {2: (3,)}
    assert offered(board(queue(strategy="top-down", tiers=tiers, members=[tried_last])))[0] == {3: (1,)}


def test_round_robin_goes_on_after_the_agent_the_queue_offered_last():
    agents = [agent(i) for i in (1, 2, 3)]
    tiers = [(a, 1, position) for position, a in enumerate(agents, 1)]
    # Per queue, not per caller: every caller goes on from agent 2.
    members = [member(1, last_position=(1, 3, 3)), member(2, joined_at=NOW - 30)]
    q = queue(strategy="round-robin", tiers=tiers, members=members, last_agent_id=2)
    assert offered(board(q))[0] == {1: (3,), 2: (1,)}
    q = queue(strategy="round-robin", tiers=tiers, members=[member(1)], last_agent_id=3)
    assert offered(board(q))[0] == {1: (1,)}


def test_ring_all_rings_every_offerable_agent_at_once():
    agents = [agent(1), agent(2, status="On Break"), agent(3), agent(4, state="Receiving")]
    q = queue(
        strategy="ring-all",
        tiers=[(agents[0], 1, 1), (agents[1], 1, 2), (agents[2], 2, 1), (agents[3], 1, 3)],
        members=[member(1), member(2, joined_at=NOW - 10)],
    )
    choices, _ = offered(board(q))
    assert choices == {1: (1, 3)}  # nobody is left for the next caller
    ringing = member(1, ringing={1, 3})
    q.members = [ringing]
    assert offered(board(q))[0] == {}  # not rung twice


def test_ring_progressively_adds_one_agent_every_delay():
    agents = [agent(i) for i in (1, 2, 3)]
    q = queue(
        strategy="ring-progressively",
        ring_progressively_delay=10,
        tiers=[(a, 1, position) for position, a in enumerate(agents, 1)],
        members=[member(1)],
    )
    made = board(q)
    assert offered(made) == ({1: (1,)}, None)

    # The dispatcher rang agent 1 (as queues/pbx.py notes it on the views).
    caller = q.members[0]
    caller.ringing, caller.last_ring_at, agents[0].state = {1}, NOW, "Receiving"
    assert offered(made, NOW + 9) == ({}, NOW + 10)
    assert offered(made, NOW + 10)[0] == {1: (2,)}

    caller.ringing, caller.last_ring_at, agents[1].state = {1, 2}, NOW + 10, "Receiving"
    assert offered(made, NOW + 15) == ({}, NOW + 20)
    assert offered(made, NOW + 20)[0] == {1: (3,)}


def test_ring_progressively_waiting_for_its_next_ring_does_not_hold_back_other_queues():
    shared, own = agent(1), agent(2, state="Receiving")
    slow = queue(
        1,
        strategy="ring-progressively",
        ring_progressively_delay=30,
        tiers=[(own, 1, 1), (shared, 1, 2)],
        members=[member(1, joined_at=NOW - 100, ringing={2}, last_ring_at=NOW - 5)],
    )
    other = queue(2, tiers=[(shared, 1, 1)], members=[member(2, joined_at=NOW - 10)])
    assert offered(board(slow, other)) == ({2: (1,)}, NOW + 25)


# -- levels, the offerable rule ------------------------------------------------------------------


def test_a_lower_tier_level_is_offered_first_whatever_the_strategy_says():
    senior = agent(1, last_offered_call=None)
    junior = agent(2, last_offered_call=NOW - 5)
    q = queue(tiers=[(senior, 2, 1), (junior, 1, 9)], members=[member(1), member(2, joined_at=NOW)])
    assert offered(board(q))[0] == {1: (2,), 2: (1,)}


@pytest.mark.parametrize(
    ("fields", "tier_state", "is_offered"),
    [
        ({}, "Ready", True),
        ({}, "No Answer", True),
        ({}, "Offering", False),
        ({}, "Active Inbound", False),
        ({}, "Standby", False),
        ({"status": "Available (On Demand)"}, "Ready", True),
        ({"status": "On Break"}, "Ready", False),
        ({"status": "Logged Out"}, "Ready", False),
        ({"state": "Idle"}, "Ready", False),
        ({"state": "Receiving"}, "Ready", False),
        ({"state": "Reserved"}, "Ready", False),
        ({"state": "In a queue call"}, "Ready", False),
        ({"last_bridge_end": NOW - 5, "wrap_up_time": 10}, "Ready", False),
        ({"last_bridge_end": NOW - 10, "wrap_up_time": 10}, "Ready", True),
        ({"ready_time": NOW + 1}, "Ready", False),
        ({"ready_time": NOW}, "Ready", True),
        ({"reachable": False}, "Ready", False),
    ],
)
def test_who_is_offerable(fields, tier_state, is_offered):
    q = queue(tiers=[(agent(1, **fields), 1, 1, tier_state)], members=[member(1)])
    assert offered(board(q))[0] == ({1: (1,)} if is_offered else {})


# -- tier rules ----------------------------------------------------------------------------------


def tiered(joined_ago, *, level_one=None, **rules):
    """Agent 2 at level 2 free; level 1 holds `level_one` (None: no level-1 tier at all but agent 3,
    logged out, keeps level 1 the queue's lowest)."""
    low = level_one or agent(3, status="Logged Out")
    q = queue(
        tier_rules_apply=True,
        tier_rule_wait_second=10,
        tiers=[(low, 1, 1), (agent(2), 2, 1)],
        members=[member(1, joined_at=NOW - joined_ago)],
        **rules,
    )
    return board(q)


def test_a_higher_level_is_reached_after_the_wait_times_the_level():
    busy = agent(1, state="In a queue call")
    assert offered(tiered(19, level_one=busy)) == ({}, NOW + 1)
    assert offered(tiered(20, level_one=busy))[0] == {1: (2,)}


def test_without_multiply_level_the_wait_is_the_same_for_every_level():
    busy = agent(1, state="In a queue call")
    assert offered(tiered(9, level_one=busy, tier_rule_wait_multiply_level=False)) == ({}, NOW + 1)
    assert offered(tiered(10, level_one=busy, tier_rule_wait_multiply_level=False))[0] == {1: (2,)}


def test_without_tier_rules_every_level_is_reached_at_once():
    busy = agent(1, state="In a queue call")
    made = tiered(0, level_one=busy)
    made.queues[1].tier_rules_apply = False
    assert offered(made)[0] == {1: (2,)}


@pytest.mark.parametrize(
    ("level_one_status", "at_once"),
    [("Logged Out", True), ("On Break", True), ("Available", False), ("Available (On Demand)", False)],
)
def test_no_agent_no_wait_skips_the_wait_only_when_nobody_is_logged_in_below(level_one_status, at_once):
    # A logged-in agent counts even when busy: the caller waits for it rather than skip ahead.
    below = agent(1, status=level_one_status, state="In a queue call")
    made = tiered(0, level_one=below, tier_rule_no_agent_no_wait=True)
    assert offered(made) == (({1: (2,)}, None) if at_once else ({}, NOW + 20))


def test_no_agent_no_wait_off_waits_even_with_nobody_below():
    assert offered(tiered(0)) == ({}, NOW + 20)


# -- score order, agents in several queues ------------------------------------------------------


def test_callers_are_served_by_score_and_a_base_score_moves_a_caller_ahead():
    early, late = member(1, joined_at=NOW - 100), member(2, joined_at=NOW - 10)
    boosted = member(3, joined_at=NOW - 5, base_score=120)
    q = queue(tiers=[(agent(1), 1, 1)], members=[early, late, boosted])
    assert [m.id for m in q.members] == [3, 1, 2]
    assert (boosted.score(NOW), early.score(NOW), late.score(NOW)) == (125, 100, 10)
    assert offered(board(q))[0] == {3: (1,)}


def test_time_base_score_system_counts_from_the_answer():
    # Answered 200 s before joining (score_from): ahead of one who joined earlier.
    answered_long_ago = member(1, joined_at=NOW - 10, score_from=NOW - 210)
    q = queue(tiers=[(agent(1), 1, 1)], members=[member(2, joined_at=NOW - 50), answered_long_ago])
    assert offered(board(q))[0] == {1: (1,)}


def test_an_agent_in_two_queues_takes_the_best_scored_caller_of_either():
    shared = agent(1)
    sales = queue(1, tiers=[(shared, 1, 1)], members=[member(1, joined_at=NOW - 30)])
    support = queue(2, tiers=[(shared, 1, 1)], members=[member(2, joined_at=NOW - 40)])
    assert offered(board(sales, support))[0] == {2: (1,)}
    support.members[0].base_score = -20
    assert offered(board(sales, support))[0] == {1: (1,)}


def test_an_agent_is_offered_one_caller_per_pass_and_a_ringing_caller_waits_its_outcome():
    first, second = agent(1), agent(2)
    q = queue(tiers=[(first, 1, 1), (second, 1, 2)], members=[member(1, ringing={9}), member(2), member(3)])
    assert offered(board(q))[0] == {2: (1,), 3: (2,)}


# -- when to look again --------------------------------------------------------------------------


def test_wake_at_the_end_of_an_agents_delay():
    q = queue(tiers=[(agent(1, ready_time=NOW + 45), 1, 1)], members=[member(1)])
    assert offered(board(q)) == ({}, NOW + 45)


def test_wake_at_the_end_of_an_agents_wrap_up():
    late = agent(1, last_bridge_end=NOW - 3, wrap_up_time=10, ready_time=NOW - 100)
    q = queue(tiers=[(late, 1, 1)], members=[member(1)])
    assert offered(board(q)) == ({}, NOW + 7)


def test_no_wake_for_agents_that_nothing_time_bound_holds_back():
    q = queue(
        tiers=[(agent(1, status="On Break", ready_time=NOW + 5), 1, 1), (agent(2, state="Receiving"), 1, 2)],
        members=[member(1)],
    )
    assert offered(board(q)) == ({}, None)


def test_wake_is_the_earliest_of_the_queues():
    one = queue(1, tiers=[(agent(1, ready_time=NOW + 50), 1, 1)], members=[member(1)])
    two = queue(2, tiers=[(agent(2, ready_time=NOW + 20), 1, 1)], members=[member(2)])
    assert offered(board(one, two)) == ({}, NOW + 20)
