"""The apps' writes under the lease: an app's context writes only while its link holds the server,
and its lane waits while the lease is in doubt (the process was stalled past it)."""

import asyncio
import datetime as dt
import time

import pytest
from django.utils import timezone

from telephony import process
from telephony.ami import AmiClient, AmiEndpoint
from telephony.models import AppTimer, PbxServer
from telephony.platform import AppContext, Lane, PbxApp
from telephony.process import PbxProcess, ServerLink
from telephony.services import servers
from telephony.services.timers import app_timer_set
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db(transaction=True)


class TimerApp(PbxApp):
    name = "timer-app"

    def __init__(self):
        self.fired = []

    async def on_timer(self, ctx, key, payload):
        self.fired.append(key)


def take(server, owner):
    return servers.pbx_server_lease_take(server_id=server.pk, owner=owner).lease


def lapse(server):
    PbxServer.objects.filter(pk=server.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))


async def context_of(server, lease, app):
    process = PbxProcess(apps=[app])
    process.owner = lease.owner
    link = ServerLink(server, process, lease)
    lane = Lane("timer-app@test", gate=link.lease_gate)
    lane.start()
    ctx = AppContext(app, link, lane)
    link.contexts.append(ctx)
    return process, link, ctx


async def close(process, link, ctx):
    await ctx.lane.stop(5)
    link.fold_thread.shutdown()
    process.app_threads.shutdown()


def test_a_due_timer_of_an_owner_that_lost_the_lease_takes_nothing():
    """Frozen with a timer due, the old owner wakes after a standby took over: the timer's row is
    the new owner's, and the old one fires nothing."""
    server = PbxServerFactory()
    old = take(server, "old")
    due = app_timer_set(app="timer-app", server_id=server.pk, key="k", seconds=0, payload={})
    lapse(server)
    take(server, "new")
    app = TimerApp()

    async def scenario():
        process, link, ctx = await context_of(server, old, app)
        ctx._due("k", due)
        await ctx.lane.queue.join()
        await close(process, link, ctx)
        return link.fenced

    assert asyncio.run(scenario())
    assert app.fired == []
    assert AppTimer.objects.filter(server_id=server.pk, key="k").exists()


def test_an_apps_lane_waits_while_the_lease_is_in_doubt(settings):
    """Past a lease unrenewed, a due timer waits for a look to say the server is still ours."""
    server = PbxServerFactory()
    lease = take(server, "owner")
    due = app_timer_set(app="timer-app", server_id=server.pk, key="k", seconds=0, payload={})
    app = TimerApp()

    async def scenario():
        process, link, ctx = await context_of(server, lease, app)
        link.lease_renewed_at = time.monotonic() - settings.PBX_LEASE_SECONDS - 1  # a stall
        ctx._due("k", due)
        await asyncio.wait_for(process.wakeup.wait(), 5)  # the supervisor is asked to look
        fired_in_doubt = list(app.fired)
        link.lease_renewed(time.monotonic())
        await ctx.lane.queue.join()
        await close(process, link, ctx)
        return fired_in_doubt

    assert asyncio.run(scenario()) == []
    assert app.fired == ["k"]


def test_events_held_while_the_lease_is_in_doubt_pause_reading_at_the_high_water_mark(monkeypatch, settings):
    monkeypatch.setattr(process, "QUEUE_HIGH_WATER", 3)
    server = PbxServerFactory()
    lease = take(server, "owner")
    paused = []

    async def scenario():
        pbx = PbxProcess(apps=[])
        link = ServerLink(server, pbx, lease)
        link.client = AmiClient(
            AmiEndpoint(server.name, "127.0.0.1", 1, "u", "p"), on_event=None, on_state=None, backoff_max=1
        )
        link.client.pause_reading = lambda: paused.append(True)  # no socket here: what was asked
        link.lease_renewed_at = time.monotonic() - settings.PBX_LEASE_SECONDS - 1  # a stall
        for n in range(5):
            link._on_event(None, {"Event": "Newstate", "Uniqueid": f"u-{n}"})
        held = len(link.held)
        link.fold_thread.shutdown()
        pbx.app_threads.shutdown()
        return held, link.paused

    assert asyncio.run(scenario()) == (5, True)  # held, not dropped; the socket read no more
    assert paused == [True]
