"""Queues in the pbx process: the dispatcher.

A caller routed to [platform-queue] runs the FastAGI script `queue`, which makes it a Member and
returns; the caller then waits on music in [platform-queue-wait]. The dispatcher, one per PBX
server, keeps the server's queues in memory (queues/engine.py's Board, loaded and refreshed from
the database, where every change is written first) and, each time something changes, offers
agents to callers: the offer is claimed in the database (queues.services.calls.offer_claim), the
agent rung with the PBX handle's claimed Originate into [platform-queue-agent], and when the
agent is ready (UserEvent QueueAgentReady) caller and agent are joined with the Bridge action; a
caller another app sent with a talk limit (queues.services.handoff) is joined by the agent's own
channel instead, redirected to [platform-queue-limited] to run Bridge() L(), which Asterisk ends
at the limit by itself.
A caller who waits too long, or presses an exit key, is redirected to the context's `exit`; one
who presses the call back key hangs up and keeps its place: the agent is rung first, then the
caller, into [platform-queue-callback].

Everything runs in the app's lane (AGI scripts hand their part to it with ctx.submit), so the
in-memory board changes in one order. On every (re)connect the board is rebuilt from the
database and the PBX's live channels.
"""

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Awaitable, Callable

from django.utils import timezone

from queues.engine import RINGS_MANY, AgentView, Board, MemberView, TierView, earliest
from queues.models import Agent, Member, Offer
from queues.services import board as board_services
from queues.services import calls, handoff
from queues.services.board import AgentInfo, MemberInfo, OfferInfo, QueueInfo
from telephony.agi import AgiCall
from telephony.ami import AmiConnectionLost, AmiError, AmiNotConnected
from telephony.events import CallEnded, OriginateResult
from telephony.platform import AppContext, PbxApp, register
from telephony.services.originate import call_record_give_up

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.5
# How long a caller's key waits for the dispatcher's answer before the caller goes back to music.
AGI_TIMEOUT = 10.0
# How long an answered agent waits for its caller (a call back rings the caller meanwhile).
AGENT_WAIT_SECONDS = 60
ORIGINATE_RESULT_GRACE = 5.0
# A dispatch pass goes round again while it makes offers; a bound, should something keep asking.
MAX_ROUNDS = 50
CALLBACK_TRIES = 3
CALLBACK_RETRY_SECONDS = 60
# A caller who asked to be called back keeps its place this long at most (no channel holds it).
CALLBACK_MAX_WAIT = 4 * 3600
# Channels that ended lately while no member's: a join whose caller hung up before the lane took it
# in is let go at once.
RECENT_ENDS = 2000

DTMF = frozenset("0123456789*#")
# A sound as Playback names it (cc_outbound_announce); sounds joined with & play one after the other.
SOUND = re.compile(r"[A-Za-z0-9_/&-]{1,200}")
OUTCOME_RESULTS = {
    "busy": Offer.Result.BUSY,
    "no_answer": Offer.Result.NO_ANSWER,
    "congestion": Offer.Result.FAILED,
    "failed": Offer.Result.FAILED,
}
BUSY, CALL_REJECTED = 17, 21
# The OriginateResponse results whose Hangup cause may say more (21: the agent declined).
CAUSE_DECIDES = (Offer.Result.BUSY, Offer.Result.FAILED)
# Causes that say the agent's contact could not be reached at all (congestion, unallocated, ...).
FAILURES = {1, 3, 27, 34, 38, 41, 42}


def _caller_id(member: MemberInfo) -> str:
    name = "".join(c for c in member.cid_name if c.isalnum() or c in " .-_'")[:40]
    number = "".join(c for c in member.cid_number if c.isdigit() or c in "+*#")[:30]
    return f'"{name}" <{number}>' if number else ""


class Dispatcher:
    """One PBX server's queues: the board and what the engine's view of it does not carry."""

    def __init__(self, ctx: AppContext, on_wake: Callable[[AppContext], Awaitable]):
        self.ctx = ctx
        self.on_wake = on_wake
        self.tier_keys: dict[int, tuple] = {}
        # Lookups for every ended call (the app sees them all): a bridged caller's channel uniqueid
        # -> its offer, a uuid-standby agent's waiting channel -> the agent.
        self.bridged_callers: dict[str, OfferInfo] = {}
        self.standby_channels: dict[str, int] = {}
        self.board = Board()
        self.queues: dict[int, QueueInfo] = {}
        self.agents: dict[int, AgentInfo] = {}
        self.members: dict[int, MemberInfo] = {}
        self.by_session: dict[str, int] = {}
        self.offers: dict[str, OfferInfo] = {}
        self.callbacks: dict[str, str] = {}  # caller leg channel id -> offer channel id
        self.recent_ends: collections.OrderedDict = collections.OrderedDict()
        self.no_agent_since: dict[int, float] = {}
        self.announced: dict[int, float] = {}
        self.seen_at = None
        self.wake_handle: asyncio.TimerHandle | None = None
        self.wake_at: float | None = None
        # Between `started` and `disconnected`: offers are only made on a live AMI session.
        self.connected = False
        self.refreshing = False
        self.dispatching = self.again = False

    # -- the board from the database ------------------------------------------------------------

    def load(self, snap: board_services.Snapshot):
        self.board = Board()
        self.queues.clear()
        self.agents.clear()
        self.members.clear()
        self.by_session.clear()
        self.offers.clear()
        self.callbacks.clear()
        self.bridged_callers.clear()
        self.standby_channels.clear()
        self.apply(snap)
        now = time.time()
        for member in snap.members:
            self.member_put(board_services.member_view(member), board_services.member_info(member))
        for offer in snap.offers:
            self.offers[offer.channel_id] = OfferInfo(
                offer.pk,
                offer.channel_id,
                offer.member_id,
                offer.agent_id,
                offer.queue_id,
                answered=offer.result == Offer.Result.ANSWERED,
                member_session=calls.caller_leg(offer),
            )
            if offer.result == Offer.Result.ANSWERED:
                self.bridged_callers[calls.caller_leg(offer)] = self.offers[offer.channel_id]
        for queue_id in self.queues:
            self.no_agent_since.setdefault(queue_id, now)
        self.seen_at = snap.taken_at

    def apply(self, snap: board_services.Snapshot):
        """Rows read from the database replace the copies (the database has the last word)."""
        for queue in snap.queues:
            self.queues[queue.pk] = board_services.queue_info(queue)
            view = board_services.queue_view(queue)
            old = self.board.queues.get(queue.pk)
            if old is not None:
                view.tiers, view.members = old.tiers, old.members
            self.board.queues[queue.pk] = view
        for agent in snap.agents:
            self.agent_put(agent)
        for tier in snap.tiers:
            self.agent_put(tier.agent)
            view = self.board.queues.get(tier.queue_id)
            if view is None:
                continue
            view.tiers = [t for t in view.tiers if t.agent.id != tier.agent_id]
            view.tiers.append(
                TierView(self.board.agents[tier.agent_id], tier.level, tier.position, tier.state)
            )
            view.tiers_sort()
        if snap.queue_ids is not None:
            for gone in set(self.queues) - snap.queue_ids:
                self.queues.pop(gone, None)
                self.board.queues.pop(gone, None)
        if snap.tier_ids is not None:
            self.tier_ids_keep(snap)

    def tier_ids_keep(self, snap):
        """Drop the tiers deleted in the database (the snapshot lists every tier id of the server)."""
        present = {t.pk for t in snap.tiers}
        if present == snap.tier_ids:
            # A full load: what was loaded is all there is.
            keep = {(t.queue_id, t.agent_id) for t in snap.tiers}
            for view in self.board.queues.values():
                view.tiers = [t for t in view.tiers if (view.id, t.agent.id) in keep]
            self.tier_keys = {t.pk: (t.queue_id, t.agent_id) for t in snap.tiers}
            return
        for tier in snap.tiers:
            self.tier_keys[tier.pk] = (tier.queue_id, tier.agent_id)
        for gone in set(self.tier_keys) - snap.tier_ids:
            queue_id, agent_id = self.tier_keys.pop(gone)
            view = self.board.queues.get(queue_id)
            if view is not None:
                view.tiers = [t for t in view.tiers if t.agent.id != agent_id]

    def agent_put(self, agent: Agent):
        fresh = board_services.agent_view(agent)
        view = self.board.agents.get(agent.pk)
        if view is None:
            self.board.agents[agent.pk] = fresh
        else:
            view.__dict__.update(fresh.__dict__)  # tiers hold this object
        old = self.agents.get(agent.pk)
        if old is not None and old.standby_channel:
            self.standby_channels.pop(old.standby_channel, None)
        self.agents[agent.pk] = board_services.agent_info(agent)
        if agent.standby_channel:
            self.standby_channels[agent.standby_channel] = agent.pk

    def member_put(self, view: MemberView, info: MemberInfo):
        queue = self.board.queues.get(info.queue_id)
        if queue is None:
            return
        queue.member_remove(view.id)
        queue.member_add(view)
        self.members[info.id] = info
        if info.session_uuid and not info.callback_number:
            self.by_session[info.session_uuid] = info.id

    def member_drop(self, member_id: int) -> MemberInfo | None:
        info = self.members.pop(member_id, None)
        if info is None:
            return None
        self.by_session.pop(info.session_uuid, None)
        self.announced.pop(member_id, None)
        queue = self.board.queues.get(info.queue_id)
        if queue is not None:
            queue.member_remove(member_id)
        return info

    def agent_drop(self, agent_id: int):
        self.board.agents.pop(agent_id, None)
        info = self.agents.pop(agent_id, None)
        if info is not None:
            self.standby_channels.pop(info.standby_channel, None)
        for queue in self.board.queues.values():
            queue.tiers = [t for t in queue.tiers if t.agent.id != agent_id]

    def hold(self, member_id: int, seconds: float):
        """Take the member off the board for a while (its call back just failed); it comes back
        in its place."""
        info, view = self.members.get(member_id), self.member_view(member_id)
        if info is None or view is None:
            return
        self.board.queues[info.queue_id].member_remove(member_id)
        view.ringing.clear()

        async def release():
            if self.members.get(member_id) is info and info.queue_id in self.board.queues:
                self.board.queues[info.queue_id].member_add(view)
                await self.on_wake(self.ctx)

        asyncio.get_running_loop().call_later(seconds, self.ctx.lane.put, release, "queues call back again")

    def member_view(self, member_id: int) -> MemberView | None:
        info = self.members.get(member_id)
        queue = self.board.queues.get(info.queue_id) if info else None
        return next((m for m in queue.members if m.id == member_id), None) if queue else None

    # -- waking up --------------------------------------------------------------------------------

    def wake(self, when: float | None):
        """Run a dispatch pass at `when` (epoch seconds), unless one is due sooner."""
        if when is None:
            return
        if self.wake_at is not None and self.wake_at <= when and self.wake_handle is not None:
            return
        if self.wake_handle is not None:
            self.wake_handle.cancel()
        self.wake_at = when
        loop = asyncio.get_running_loop()
        self.wake_handle = loop.call_later(max(0.0, when - time.time()), self._woken)

    def _woken(self):
        self.wake_handle = self.wake_at = None
        self.ctx.lane.put(lambda: self.on_wake(self.ctx), "queues dispatch")


class Queues(PbxApp):
    name = "queues"
    all_calls = True  # a caller's own call may belong to another flow (a card call sent to a queue)
    user_events = frozenset({"QueueAgentReady", "QueueCallbackReady", "QueueLimitedBridgeEnded"})
    # The raw Hangup of an agent's leg: its cause, which the CallEnded lacks when the
    # OriginateResponse came first (the record ended on it).
    ami_events = frozenset({"Hangup"})
    agi_scripts = {"queue": "join", "queue-key": "key", "queue-standby": "standby"}

    def __init__(self):
        self.dispatchers: dict[int, Dispatcher] = {}

    def of(self, ctx: AppContext) -> Dispatcher:
        found = self.dispatchers.get(id(ctx))
        if found is None or found.ctx is not ctx:
            found = self.dispatchers[id(ctx)] = Dispatcher(ctx, self.dispatch)
        return found

    # -- lifecycle ------------------------------------------------------------------------------

    async def started(self, ctx: AppContext):
        d = self.of(ctx)
        channels = await ctx.pbx.live_channels()
        live = {c.get("Uniqueid", "") for c in channels}
        names = {c.get("Channel", "") for c in channels}
        rebuild = calls.board_rebuild
        for channel_id in await ctx.db(
            rebuild, server_id=ctx.server.pk, live_uniqueids=live, live_channels=names
        ):
            await self._hangup_uniqueid(ctx, channel_id)
        d.load(await ctx.read(board_services.board_load, server_id=ctx.server.pk))
        if not d.refreshing:  # periodic work lasts until the server is given up, across reconnects
            ctx.every(REFRESH_SECONDS, self.refresh)
            d.refreshing = True
        d.connected = True
        await self.dispatch(ctx)

    async def disconnected(self, ctx: AppContext):
        self.of(ctx).connected = False

    async def stopping(self, ctx: AppContext):
        d = self.dispatchers.pop(id(ctx), None)
        if d:
            d.connected = False
            if d.wake_handle:
                d.wake_handle.cancel()

    async def refresh(self, ctx: AppContext):
        d = self.of(ctx)
        if d.seen_at is None:
            return
        snap = await ctx.read(board_services.board_changes, server_id=ctx.server.pk, since=d.seen_at)
        d.seen_at = snap.taken_at
        if snap.queues or snap.agents or snap.tiers or len(snap.tier_ids) != len(d.tier_keys):
            d.apply(snap)
            await self.dispatch(ctx)

    # -- the dispatch pass ----------------------------------------------------------------------

    async def dispatch(self, ctx: AppContext):
        """Offer what can be offered now, send out callers whose wait is over, announce positions."""
        d = self.of(ctx)
        if not d.connected:
            return  # `started` rebuilds and dispatches on the next connect
        if d.dispatching:  # called back from within a pass (an offer failed at once): one more round
            d.again = True
            return
        d.dispatching = True
        try:
            for _ in range(MAX_ROUNDS):
                d.again = False
                now = time.time()
                choices, wake = d.board.next_offers(now)
                made = False
                for choice in choices:
                    for agent in choice.agents:
                        made = await self.offer(ctx, d, choice.queue.id, choice.member, agent) or made
                wake = earliest(wake, await self.deadlines(ctx, d, now))
                # Another round only when this one changed something (a claim that failed corrected
                # the board instead): never spinning on a pair the database refuses.
                if not made and not d.again:
                    break
        finally:
            d.dispatching = False
        d.wake(wake)

    async def deadlines(self, ctx: AppContext, d: Dispatcher, now: float) -> float | None:
        """Callers out of the queue when their wait is over; position announcements. Returns when to
        look again."""
        wake = None
        for queue_id, queue in list(d.board.queues.items()):
            info = d.queues.get(queue_id)
            if info is None:
                continue
            logged_in = any(t.agent.status in ("Available", "Available (On Demand)") for t in queue.tiers)
            if logged_in:
                d.no_agent_since.pop(queue_id, None)
            else:
                d.no_agent_since.setdefault(queue_id, now)
            for position, member in enumerate(list(queue.members), 1):
                minfo = d.members.get(member.id)
                if minfo is None:
                    continue
                reason, due = None, None
                # An unloaded queue makes no new offer and sends its callers on, but an offer made
                # (ringing, answered, calling the caller back) goes on to its end: bridged, or the
                # caller waits again and is sent on then.
                unloaded = not info.loaded and not member.ringing
                if unloaded:
                    reason = Member.CancelReason.TIMEOUT
                if info.max_wait_time:
                    due = minfo.waiting_since + info.max_wait_time
                    if due <= now:
                        reason = Member.CancelReason.TIMEOUT
                if reason is None and info.max_wait_time_with_no_agent and not logged_in:
                    no_agent = d.no_agent_since[queue_id] + info.max_wait_time_with_no_agent
                    reached = minfo.waiting_since + info.max_wait_time_with_no_agent_time_reached
                    when = max(no_agent, reached)
                    if when <= now:
                        reason = Member.CancelReason.NO_AGENT_TIMEOUT
                    due = earliest(due, when)
                if minfo.callback_number:  # no channel waits: only an unloaded queue or a very long wait
                    due = member.joined_at + CALLBACK_MAX_WAIT
                    reason = Member.CancelReason.TIMEOUT if unloaded or due <= now else None
                if reason is not None:
                    await self.member_out(ctx, d, minfo, reason)
                    continue
                wake = earliest(wake, due)
                every = info.announce_position_every
                if every and not member.ringing and not minfo.callback_number:
                    last = d.announced.setdefault(member.id, now)
                    if last + every <= now:
                        d.announced[member.id] = now
                        await self.announce(ctx, minfo, position)
                        last = now
                    wake = earliest(wake, last + every)
        return wake

    # -- offering ------------------------------------------------------------------------------

    async def offer(
        self, ctx: AppContext, d: Dispatcher, queue_id: int, member: MemberView, agent: AgentView
    ):
        minfo, ainfo, qinfo = d.members.get(member.id), d.agents.get(agent.id), d.queues.get(queue_id)
        if minfo is None or ainfo is None or qinfo is None:
            return
        strategy = d.board.queues[queue_id].strategy
        if not agent.offerable(time.time()) or (member.ringing and strategy not in RINGS_MANY):
            return False  # changed since the choice was made, by an offer that failed at once
        offer = await ctx.db(calls.offer_claim, member_id=member.id, agent_id=agent.id)
        if offer is None:  # the database says no: correct the board from it
            why = await ctx.read(calls.claim_refused, member_id=member.id, agent_id=agent.id)
            if not why.member_waiting:
                d.member_drop(member.id)
            if why.agent is None:
                d.agent_drop(agent.id)
            else:
                d.agent_put(why.agent)
                if why.agent_ringing:  # Waiting by hand while an offer rings: it is receiving
                    agent.state = Agent.State.RECEIVING
            return False
        now = time.time()
        agent.state = Agent.State.RESERVED if offer.agent.reserve_agents else Agent.State.RECEIVING
        agent.last_offered_call = now
        queue = d.board.queues[queue_id]
        queue.last_agent_id = agent.id
        for tier in queue.tiers:
            if tier.agent.id == agent.id:
                tier.state = "Offering"
                member.last_position = (tier.level, tier.position, agent.id)
        member.ringing.add(agent.id)
        member.last_ring_at = now
        info = OfferInfo(offer.pk, offer.channel_id, member.id, agent.id, queue_id)
        d.offers[offer.channel_id] = info
        if ainfo.type == Agent.Type.UUID_STANDBY:
            info.agent_channel = ainfo.standby_channel
            await self.agent_ready(ctx, d, info)
            return True
        variables = {
            "CC_OFFER": offer.channel_id,
            "CC_QUEUE": qinfo.full_name,
            "CC_MOH": qinfo.moh_sound,
            "CC_AGENT_WAIT": str(AGENT_WAIT_SECONDS),
            "cc_member_uuid": minfo.uuid,
            "cc_side": "agent",
        }
        if minfo.outbound_announce:
            variables["CC_OUTBOUND_ANNOUNCE"] = minfo.outbound_announce
        dial = {"channel": ainfo.contact} if "/" in ainfo.contact else {"number": ainfo.contact}
        try:
            await ctx.pbx.originate(
                channel_id=offer.channel_id,
                route=ainfo.route,
                context="platform-queue-agent",
                variables=variables,
                caller_id=_caller_id(minfo),
                timeout=qinfo.offer_timeout,
                company=qinfo.company,
                app=self.name,
                app_ref=offer.channel_id,
                **dial,
            )
        except AmiNotConnected as exc:
            # Nobody was rung: not the agent's fault. The claim is given up; the next connect
            # offers afresh.
            d.connected = False
            reason = str(exc)
            await ctx.db(call_record_give_up, server=ctx.server, uniqueid=offer.channel_id, reason=reason)
            info.canceled = True
            await self.offer_over(ctx, d, info, Offer.Result.CANCELED, "pbx not connected")
            return True
        except AmiConnectionLost:
            # Sent, and the connection lost before the answer: the agent may be ringing. The offer
            # stays open; the rebuild on the next connect settles it from the PBX's live channels.
            d.connected = False
            return True
        except (ValueError, AmiError, TimeoutError) as exc:
            log.warning("queues: offering %s to %s failed: %s", minfo.uuid, ainfo.full_name, exc)
            reason = str(exc)  # a contact Asterisk cannot dial: the claim made with the offer ends
            await ctx.db(call_record_give_up, server=ctx.server, uniqueid=offer.channel_id, reason=reason)
            await self.offer_over(ctx, d, info, Offer.Result.FAILED, reason[:40])
            return True
        if offer.agent.reserve_agents:
            await ctx.db(calls.offer_sent, offer_id=offer.pk)
            agent.state = Agent.State.RECEIVING
        return True

    async def offer_over(self, ctx: AppContext, d: Dispatcher, info: OfferInfo, result: str, cause: str = ""):
        """An offer ended without a bridge: the agent's delays, the member waits again."""
        d.offers.pop(info.channel_id, None)
        if info.canceled:
            result = Offer.Result.CANCELED
        ended = await ctx.db(calls.offer_failed, offer_id=info.id, result=result, cause=cause)
        agent = d.board.agents.get(info.agent_id)
        member = d.member_view(info.member_id)
        if member is not None:
            member.ringing.discard(info.agent_id)
        if ended is None:  # ended already (the caller left: cancelled, at no cost to the agent)
            fresh = await ctx.read(board_services.agent_reload, agent_id=info.agent_id)
            if fresh is not None:
                d.agent_put(fresh)
            queue = d.board.queues.get(info.queue_id)
            for tier in queue.tiers if queue else ():
                if tier.agent.id == info.agent_id and tier.state == "Offering":
                    tier.state = "Ready"
        elif agent is not None:
            agent.state = Agent.State.WAITING
            agent.status = ended.agent_status
            agent.ready_time = (
                ended.agent_ready_time.timestamp() if ended.agent_ready_time else agent.ready_time
            )
            queue = d.board.queues.get(info.queue_id)
            for tier in queue.tiers if queue else ():
                if tier.agent.id == info.agent_id:
                    tier.state = ended.tier_state
        for key, offer_channel in list(d.callbacks.items()):
            if offer_channel == info.channel_id:
                d.callbacks.pop(key)
                await self._hangup_uniqueid(ctx, key)
        await self.dispatch(ctx)

    async def agent_ready(self, ctx: AppContext, d: Dispatcher, info: OfferInfo):
        """The agent answered (and heard the announcement): bridge the caller, once."""
        minfo = d.members.get(info.member_id)
        if minfo is not None and minfo.callback_number:
            if any(d.offers.get(o) and d.offers[o].member_id == minfo.id for o in d.callbacks.values()):
                info.canceled = True  # another agent of this caller is ready and its call back rings
                await self._hangup_channel(ctx, info.agent_channel)
                return
            await self.callback_dial(ctx, d, info, minfo)
            for other in list(d.offers.values()):  # the caller is being rung for this agent
                if other.member_id == minfo.id and other is not info and not other.answered:
                    other.canceled = True
                    await self._hangup_uniqueid(ctx, other.channel_id)
            return
        answered = await ctx.db(calls.offer_answered, offer_id=info.id)
        if answered is None:  # served by another agent, or gone: let this agent go
            info.canceled = True
            if d.agents[info.agent_id].type == Agent.Type.UUID_STANDBY:  # it keeps waiting on its channel
                await self.offer_over(ctx, d, info, Offer.Result.CANCELED)
            else:
                await self._hangup_channel(ctx, info.agent_channel)
            return
        await self.bridge(
            ctx, d, info, answered.member.channel, answered.member.session_uuid, answered.cancel
        )

    async def bridge(
        self,
        ctx: AppContext,
        d: Dispatcher,
        info: OfferInfo,
        caller_channel: str,
        caller_uniqueid: str,
        cancel: list,
    ):
        info.answered = True
        info.member_session = caller_uniqueid
        d.bridged_callers[caller_uniqueid] = info
        minfo = d.member_drop(info.member_id)
        agent = d.board.agents.get(info.agent_id)
        if agent is not None:
            agent.state = Agent.State.IN_A_QUEUE_CALL
        queue = d.board.queues.get(info.queue_id)
        for tier in queue.tiers if queue else ():
            if tier.agent.id == info.agent_id:
                tier.state = "Active Inbound"
        ainfo = d.agents.get(info.agent_id)
        now = str(int(time.time()))
        qinfo = d.queues.get(info.queue_id)
        limited = bool(minfo and minfo.talk_limit)
        caller_ready = False  # the caller's variables are set: what fails next is on the agent's channel
        try:
            for name, value in (
                ("cc_agent", ainfo.full_name if ainfo else ""),
                ("cc_queue_answered_epoch", now),
            ):
                await ctx.pbx.set_variable(channel=caller_channel, name=name, value=value)
            if qinfo and qinfo.record_template:  # from the first word of the call
                await self.record(ctx, qinfo, caller_channel, info)
            caller_ready = True
            if limited:
                await self.bridge_limited(ctx, d, info, minfo, caller_uniqueid)
            else:
                await ctx.pbx.bridge(channel1=caller_channel, channel2=info.agent_channel)
        except AmiConnectionLost as exc:
            # Bridged or not, the rebuild on the next connect tells from the live channels.
            log.warning("queues: bridge for offer %s: %s", info.channel_id, exc)
            d.connected = False
            return
        except AmiError as exc:  # the caller (or the agent) was gone a moment ago
            log.info("queues: bridge for offer %s failed: %s", info.channel_id, exc)
            caller_gone = "Channel1" in str(exc) or "Channel2" not in str(exc)
            if limited and caller_ready:  # the agent's channel was gone
                caller_gone = False
            if not caller_gone:  # it waits again: not "after the call" for its dialplan
                with contextlib.suppress(AmiError, AmiConnectionLost):
                    await ctx.pbx.set_variable(channel=caller_channel, name="cc_agent", value="")
                    if qinfo and qinfo.record_template:
                        await ctx.pbx.action({"Action": "StopMixMonitor", "Channel": caller_channel})
            await self.unbridged(ctx, d, info, minfo, caller_gone)
            return
        for channel_id in cancel:
            other = d.offers.get(channel_id)
            if other is not None:
                other.canceled = True
            await self._hangup_uniqueid(ctx, channel_id)
        await self.dispatch(ctx)

    async def bridge_limited(
        self, ctx: AppContext, d: Dispatcher, info: OfferInfo, minfo: MemberInfo, caller_uniqueid: str
    ):
        """A caller sent with a talk limit: the agent's channel, redirected to
        [platform-queue-limited], joins it with Bridge() L(), which Asterisk ends at the limit by
        itself (the caller hears the warning and the timeout file). It reports the end with
        UserEvent QueueLimitedBridgeEnded."""
        ainfo = d.agents.get(info.agent_id)
        standby = ainfo is not None and ainfo.type == Agent.Type.UUID_STANDBY
        limit = handoff.bridge_limit(talk_limit=minfo.talk_limit or 0, talk_warning=minfo.talk_warning)
        for name, value in (
            ("CC_OFFER", info.channel_id),
            ("CC_BRIDGE_TO", caller_uniqueid),
            ("CC_BRIDGE_LIMIT", limit),
            ("CC_LIMIT_WARNING_FILE", minfo.limit_warning_file),
            ("CC_LIMIT_TIMEOUT_FILE", minfo.limit_timeout_file),
            ("CC_STANDBY", "yes" if standby else ""),
        ):
            await ctx.pbx.set_variable(channel=info.agent_channel, name=name, value=value)
        await ctx.pbx.redirect(channel=info.agent_channel, context="platform-queue-limited", exten="s")

    async def unbridged(
        self, ctx: AppContext, d: Dispatcher, info: OfferInfo, minfo: MemberInfo | None, caller_gone: bool
    ):
        """The Bridge failed: whoever is still there is let go (the agent) or waits again (the caller)."""
        d.offers.pop(info.channel_id, None)
        d.bridged_callers.pop(info.member_session, None)
        await ctx.db(calls.offer_unbridged, offer_id=info.id, caller_gone=caller_gone, cause="bridge failed")
        if caller_gone:
            await self._hangup_channel(ctx, info.agent_channel)
        fresh = await ctx.read(board_services.agent_reload, agent_id=info.agent_id)
        if fresh is not None:
            d.agent_put(fresh)
        queue = d.board.queues.get(info.queue_id)
        for tier in queue.tiers if queue else ():
            if tier.agent.id == info.agent_id:
                tier.state = "Ready"
        if not caller_gone and minfo is not None:
            member = await ctx.read(board_services.member_reload, member_id=info.member_id)
            if member is not None:
                d.member_put(board_services.member_view(member), minfo)
        await self.dispatch(ctx)

    async def record(self, ctx: AppContext, qinfo: QueueInfo, caller_channel: str, info: OfferInfo):
        stamp = timezone.now()
        name = qinfo.record_template.format(
            queue=qinfo.full_name.replace("@", "_"),
            member=info.channel_id,
            date=stamp.strftime("%Y%m%d"),
            time=stamp.strftime("%H%M%S"),
        )
        await ctx.pbx.set_variable(channel=caller_channel, name="cc_record_filename", value=name)
        await ctx.pbx.action({"Action": "MixMonitor", "Channel": caller_channel, "File": name})

    async def callback_dial(self, ctx: AppContext, d: Dispatcher, info: OfferInfo, minfo: MemberInfo):
        """A call back: the agent is ready; now ring the caller, into [platform-queue-callback]."""
        qinfo = d.queues[info.queue_id]
        leg = f"{info.channel_id}-cb"
        d.callbacks[leg] = info.channel_id
        try:
            await ctx.pbx.originate(
                channel_id=leg,
                number=minfo.callback_number,
                context="platform-queue-callback",
                variables={
                    "CC_OFFER": info.channel_id,
                    "CC_MOH": qinfo.moh_sound,
                    "cc_member_uuid": minfo.uuid,
                },
                timeout=qinfo.offer_timeout * 2,
                company=qinfo.company,
                app=self.name,
                app_ref=leg,
            )
        except (ValueError, AmiError, AmiConnectionLost, TimeoutError) as exc:
            log.warning("queues: calling %s back failed: %s", minfo.uuid, exc)
            d.callbacks.pop(leg, None)
            info.canceled = True
            await self._hangup_channel(ctx, info.agent_channel)

    async def member_out(self, ctx: AppContext, d: Dispatcher, minfo: MemberInfo, reason: str):
        """The caller leaves the queue without an agent and goes on in the dialplan after it: sent
        on first, so that a PBX out of reach leaves it waiting (and sent on after the reconnect)
        rather than recorded as gone while it still hears the music."""
        if reason != Member.CancelReason.BREAK_OUT and minfo.channel:
            try:
                await ctx.pbx.set_variable(channel=minfo.channel, name="cc_cancel_reason", value=reason)
                await ctx.pbx.set_variable(
                    channel=minfo.channel, name="cc_queue_canceled_epoch", value=str(int(time.time()))
                )
                if reason != Member.CancelReason.EXIT_WITH_KEY:  # the key's own AGI sends it on
                    await ctx.pbx.redirect(channel=minfo.channel, context="platform-queue-wait", exten="exit")
            except AmiConnectionLost as exc:
                log.warning("queues: %s not sent on yet: %s", minfo.channel, exc)
                d.connected = False
                return
            except AmiError as exc:
                log.info("queues: %s left before being sent on: %s", minfo.channel, exc)
        canceled = await ctx.db(calls.member_leave, member_id=minfo.id, reason=reason)
        d.member_drop(minfo.id)
        for channel_id in canceled or ():
            if channel_id in d.offers:
                d.offers[channel_id].canceled = True
            await self._hangup_uniqueid(ctx, channel_id)

    async def announce(self, ctx: AppContext, minfo: MemberInfo, position: int):
        try:
            await ctx.pbx.set_variable(channel=minfo.channel, name="CC_POSITION", value=str(position))
            await ctx.pbx.redirect(channel=minfo.channel, context="platform-queue-wait", exten="announce")
        except (AmiError, AmiConnectionLost) as exc:
            log.info("queues: no announcement for %s: %s", minfo.channel, exc)

    async def _hangup_channel(self, ctx: AppContext, channel: str):
        if not channel:
            return
        with contextlib.suppress(AmiError, AmiConnectionLost):  # gone already (or the rebuild will)
            await ctx.pbx.hangup(channel=channel)

    async def _hangup_uniqueid(self, ctx: AppContext, uniqueid: str):
        # Asterisk's Hangup action takes a channel name or a Uniqueid.
        await self._hangup_channel(ctx, uniqueid)

    # -- events ---------------------------------------------------------------------------------

    async def on_ami_event(self, ctx: AppContext, event: dict):
        d = self.of(ctx)
        if event.get("Event") == "Hangup":
            offer = d.offers.get(event.get("Uniqueid", "").strip())
            cause = event.get("Cause", "").strip()
            if offer is not None and not offer.answered and cause.isdigit():
                await self.offer_cause(ctx, d, offer, int(cause))
            return
        offer = d.offers.get(event.get("Offer", "").strip())
        if offer is None:
            return
        if event.get("UserEvent") == "QueueLimitedBridgeEnded":
            # Bridge() L() returned on the agent's channel: at the limit, or a party hung up.
            if offer.answered:
                # The cause Asterisk gives both legs at the limit (16); FAILURE: the caller was gone.
                ok = event.get("Result", "").strip() == "SUCCESS"
                await self.bridge_over(ctx, d, offer, "Normal Clearing" if ok else "bridge failed")
        elif event.get("UserEvent") == "QueueAgentReady":
            offer.agent_channel = event.get("Channel", "")
            await self.agent_ready(ctx, d, offer)
        elif event.get("UserEvent") == "QueueCallbackReady":
            minfo = d.members.get(offer.member_id)
            answered = await ctx.db(calls.offer_answered, offer_id=offer.id)
            if answered is None or minfo is None:
                await self._hangup_channel(ctx, event.get("Channel", ""))
                offer.canceled = True
                await self._hangup_channel(ctx, offer.agent_channel)
                return
            leg = f"{offer.channel_id}-cb"
            d.callbacks.pop(leg, None)
            await self.bridge(ctx, d, offer, event.get("Channel", ""), leg, answered.cancel)

    async def on_call_event(self, ctx: AppContext, event):
        d = self.of(ctx)
        uniqueid = event.record.uniqueid
        if isinstance(event, OriginateResult):
            offer = d.offers.get(event.record.app_ref) if event.record.app == self.name else None
            if offer is not None and event.outcome != "answered" and uniqueid == offer.channel_id:
                result = OUTCOME_RESULTS.get(event.outcome, Offer.Result.FAILED)
                cause = event.record.hangup_cause or offer.end_cause
                if cause is None and result in CAUSE_DECIDES:
                    # Sent before the Hangup (Asterisk 22 does): its cause says whether the agent
                    # declined; it follows at once, and should it not, the result stands.
                    offer.pending_result = (result, event.outcome)
                    asyncio.get_running_loop().call_later(
                        ORIGINATE_RESULT_GRACE,
                        ctx.lane.put,
                        lambda: self.offer_unended(ctx, offer),
                        "offer unended",
                    )
                    return
                await self.offer_over(ctx, d, offer, _decided(result, cause), event.outcome)
            elif uniqueid in d.callbacks and event.outcome != "answered":
                await self.callback_failed(ctx, d, uniqueid)
            return
        if not isinstance(event, CallEnded):
            return
        cause = event.record.hangup_cause_text or str(event.record.hangup_cause or "")
        member_id = d.by_session.get(uniqueid)
        if member_id is not None:  # a caller hung up while waiting
            minfo = d.members.get(member_id)
            if minfo is not None:
                await self.member_out(ctx, d, minfo, Member.CancelReason.BREAK_OUT)
            await self.dispatch(ctx)
            return
        offer = d.offers.get(uniqueid)
        if offer is not None:
            if offer.answered:
                await self.bridge_over(ctx, d, offer, cause)
            elif event.record.answered_at is None and offer.pending_result is not None:
                # Ended by the OriginateResponse itself: the raw Hangup brings the cause (or the grace ends).
                await self.offer_cause(ctx, d, offer, event.record.hangup_cause)
            elif event.record.answered_at is None:
                # Never answered: the OriginateResponse says why, and Asterisk sends it before or
                # after this Hangup (both happen), so the offer ends on it whichever came first,
                # with the same result and text; should it never come, unanswered all the same.
                offer.end_cause = event.record.hangup_cause
                asyncio.get_running_loop().call_later(
                    ORIGINATE_RESULT_GRACE, ctx.lane.put, lambda: self.offer_lost(ctx, offer), "offer lost"
                )
            else:  # ended before the bridge: hung up during the announcement, or a cause says why
                await self.offer_over(ctx, d, offer, _result_of(event.record), cause)
            return
        if uniqueid in d.callbacks:
            await self.callback_failed(ctx, d, uniqueid)
            return
        offer = d.bridged_callers.get(uniqueid)  # the caller's side of a bridge
        if offer is not None and d.offers.get(offer.channel_id) is offer:
            await self.bridge_over(ctx, d, offer, cause)
            return
        agent_id = d.standby_channels.get(event.record.channel)
        if agent_id is not None:  # a uuid-standby agent hung up its waiting channel
            name = d.agents[agent_id].full_name
            fresh = await ctx.db(
                board_services.standby_set, server_id=ctx.server.pk, agent_name=name, channel=""
            )
            if fresh is not None:
                d.agent_put(fresh)
            return
        d.recent_ends[uniqueid] = None
        while len(d.recent_ends) > RECENT_ENDS:
            d.recent_ends.popitem(last=False)

    async def offer_lost(self, ctx: AppContext, offer: OfferInfo):
        d = self.of(ctx)
        if d.offers.get(offer.channel_id) is offer and not offer.answered:
            await self.offer_over(ctx, d, offer, Offer.Result.NO_ANSWER, "no originate response")

    async def offer_cause(self, ctx: AppContext, d: Dispatcher, offer: OfferInfo, cause: int | None):
        """The Hangup cause of an unanswered agent's leg: it decides the result the OriginateResponse
        left pending (busy or failed, or rejected: the agent declined)."""
        if cause is None:
            return
        offer.end_cause = cause
        if offer.pending_result is not None and d.offers.get(offer.channel_id) is offer:
            result, text = offer.pending_result
            await self.offer_over(ctx, d, offer, _decided(result, cause), text)

    async def offer_unended(self, ctx: AppContext, offer: OfferInfo):
        d = self.of(ctx)
        if d.offers.get(offer.channel_id) is offer and not offer.answered and offer.pending_result:
            result, text = offer.pending_result
            await self.offer_over(ctx, d, offer, result, text)

    async def bridge_over(self, ctx: AppContext, d: Dispatcher, offer: OfferInfo, cause: str):
        d.offers.pop(offer.channel_id, None)
        d.bridged_callers.pop(offer.member_session, None)
        ended = await ctx.db(calls.bridge_ended, offer_id=offer.id, cause=cause)
        agent = d.board.agents.get(offer.agent_id)
        if agent is not None and ended is not None:
            fresh = await ctx.read(board_services.agent_reload, agent_id=offer.agent_id)
            if fresh is not None:
                d.agent_put(fresh)
        queue = d.board.queues.get(offer.queue_id)
        for tier in queue.tiers if queue else ():
            if tier.agent.id == offer.agent_id:
                tier.state = "Ready"
        await self.dispatch(ctx)

    async def callback_failed(self, ctx: AppContext, d: Dispatcher, leg: str):
        """The caller did not answer its call back: the agent is let go; the caller keeps its place
        and is tried again CALLBACK_RETRY_SECONDS later, CALLBACK_TRIES times in all."""
        offer_channel = d.callbacks.pop(leg, None)
        offer = d.offers.get(offer_channel) if offer_channel else None
        if offer is None:
            return
        offer.canceled = True
        await self._hangup_channel(ctx, offer.agent_channel)
        minfo = d.members.get(offer.member_id)
        if minfo is None:
            return
        minfo.callback_failures += 1
        if minfo.callback_failures >= CALLBACK_TRIES:
            await self.member_out(ctx, d, minfo, Member.CancelReason.TIMEOUT)
            return
        d.hold(minfo.id, CALLBACK_RETRY_SECONDS)

    # -- FastAGI ---------------------------------------------------------------------------------

    async def join(self, ctx: AppContext, call: AgiCall):
        """[platform-queue]: the caller joins the queue named by PLATFORM_QUEUE."""
        queue_name = (await call.get_variable("PLATFORM_QUEUE") or "").strip()
        base = (await call.get_variable("cc_base_score") or "0").strip()
        answered = (await call.get_variable("CC_ANSWERED_EPOCH") or "").strip()
        exit_keys = "".join(c for c in (await call.get_variable("cc_exit_keys") or "") if c in DTMF)[:12]
        announce = (await call.get_variable("cc_outbound_announce") or "").strip()
        source_app = (await call.get_variable("CC_SOURCE_APP") or "")[:40]
        source_ref = (await call.get_variable("CC_SOURCE_REF") or "")[:120]
        limit = {}
        if source_app:  # a talk limit comes with a caller another app sent (queues.services.handoff)
            limit = handoff.limit_fields(
                talk_limit=await call.get_variable(handoff.TALK_LIMIT) or "",
                talk_warning=await call.get_variable(handoff.TALK_WARNING) or "",
                warning_file=await call.get_variable(handoff.WARNING_FILE) or "",
                timeout_file=await call.get_variable(handoff.TIMEOUT_FILE) or "",
            )
        try:
            joined = await ctx.db(
                calls.member_join,
                server_id=ctx.server.pk,
                queue_name=queue_name,
                uniqueid=call.uniqueid,
                channel=call.channel,
                cid_name=call.headers.get("agi_calleridname", "").replace("unknown", ""),
                cid_number=call.headers.get("agi_callerid", "").replace("unknown", ""),
                base_score=int(base) if base.lstrip("-").isdigit() and len(base) < 10 else 0,
                answered_at=_from_epoch(answered),
                source_app=source_app,
                source_ref=source_ref,
                **limit,
            )
        except calls.JoinRefused as exc:
            log.warning("queues: %s on %s", exc, call.channel)
            await call.set_variable("PLATFORM_AGI_RESULT", "unavailable")
            return
        member, queue = joined.member, joined.queue
        info = board_services.member_info(member)
        view = board_services.member_view(member)
        if joined.resumed:
            info.waiting_since = time.time()
        if SOUND.fullmatch(announce):
            info.outbound_announce = announce

        async def register_member():
            d = self.of(ctx)
            if info.session_uuid in d.recent_ends:  # hung up before we got here
                await self.member_out(ctx, d, info, Member.CancelReason.BREAK_OUT)
                return
            info.exit_keys = exit_keys or d.queues[info.queue_id].exit_keys
            d.member_put(view, info)
            await self.dispatch(ctx)

        # Not awaited: the dispatcher takes the member in its turn while the caller is told its
        # variables and goes on to the music (the member is in the database already, so a restart
        # meanwhile finds it too). An agent is ready seconds later at the soonest, by then the
        # caller waits in [platform-queue-wait].
        ctx.submit(register_member, "queue join")
        moh = (await call.get_variable("cc_moh_override") or "").strip() or queue.moh_sound
        await call.set_variable("CC_MOH", moh)
        await call.set_variable("cc_member_uuid", str(member.uuid))
        await call.set_variable("cc_queue_joined_epoch", str(int(member.joined_at.timestamp())))

    async def key(self, ctx: AppContext, call: AgiCall):
        """[platform-queue-wait]: the caller pressed a key: an exit key, the call back key, or none."""
        digit = call.headers.get("agi_extension", "")[:1]

        async def decide() -> str:
            d = self.of(ctx)
            member_id = d.by_session.get(call.uniqueid)
            minfo = d.members.get(member_id) if member_id else None
            if minfo is None:
                return "wait"
            qinfo = d.queues[minfo.queue_id]
            if digit and digit in minfo.exit_keys:
                await self.member_out(ctx, d, minfo, Member.CancelReason.EXIT_WITH_KEY)
                return "exit"
            # A caller another app sent keeps its line: that app's call (a card's billed talk) ends
            # when the caller hangs up, so no call back is offered; the key is heard as any other.
            wants_callback = (
                digit and digit == qinfo.callback_key and minfo.cid_number and not minfo.source_app
            )
            if wants_callback and await ctx.db(
                calls.member_callback_set, member_id=minfo.id, number=minfo.cid_number
            ):
                d.by_session.pop(minfo.session_uuid, None)
                minfo.callback_number, minfo.channel = minfo.cid_number, ""
                for offer in list(d.offers.values()):
                    if offer.member_id == minfo.id and not offer.answered:
                        offer.canceled = True
                        await self._hangup_uniqueid(ctx, offer.channel_id)
                return "callback"
            return "wait"

        try:
            choice = await asyncio.wait_for(ctx.submit(decide, "queue key"), AGI_TIMEOUT)
        except TimeoutError:  # the lane is far behind: the caller keeps waiting, its key unheard
            choice = "wait"
        await call.set_variable("CC_NEXT", choice)

    async def standby(self, ctx: AppContext, call: AgiCall):
        """[platform-queue-standby]: a uuid-standby agent (CC_AGENT) waits on this channel for callers."""
        name = (await call.get_variable("CC_AGENT") or "").strip()
        agent = await ctx.db(
            board_services.standby_set, server_id=ctx.server.pk, agent_name=name, channel=call.channel
        )
        if agent is None:
            await call.set_variable("PLATFORM_AGI_RESULT", "unavailable")
            return

        async def register_agent():
            d = self.of(ctx)
            d.agent_put(agent)
            await self.dispatch(ctx)

        ctx.submit(register_agent, "queue standby")


def _decided(result: str, cause: int | None) -> str:
    """An unanswered offer's result from its OriginateResponse, corrected by its Hangup's cause: an
    agent who declined (21, Call Rejected) is rejected, whether Asterisk reported it busy or failed."""
    if result in CAUSE_DECIDES and cause == CALL_REJECTED:
        return Offer.Result.REJECTED
    return result


def _result_of(record) -> str:
    """What an agent's leg that ended unbridged says of the offer: busy, rejected, or no answer
    (also when it hung up after answering, before the caller was put through)."""
    if record.answered_at is None:
        if record.hangup_cause == BUSY:
            return Offer.Result.BUSY
        if record.hangup_cause == CALL_REJECTED:
            return Offer.Result.REJECTED
        if record.hangup_cause in FAILURES:
            return Offer.Result.FAILED
    return Offer.Result.NO_ANSWER


def _from_epoch(text: str) -> dt.datetime | None:
    if not text.isdigit() or len(text) > 11:
        return None
    return dt.datetime.fromtimestamp(int(text), tz=dt.UTC)


register(Queues())
