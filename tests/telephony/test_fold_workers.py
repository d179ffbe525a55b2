"""Folding spread over processes (`manage.py pbx --fold-workers N`), on pbxsim and the real database."""

import asyncio
import io
import os
import signal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from telephony.events import CallAnswered, CallBridged, CallEnded, CallStarted, OriginateResult
from telephony.folding import FoldWorker, event_groups
from telephony.models import CallRecord, PbxServer
from telephony.platform import PbxApp
from telephony.services.servers import Lease, LeaseLost
from telephony.testing import ListeningApp, pbx_process, wait_for
from tests.factories import CompanyFactory
from tests.telephony.test_process_servers import START_TIMEOUT, connected, pbx_commands

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = 16
# A leg's typed events, in this order; its OriginateResult (Asterisk's answer to the Originate,
# after the channel's first events) comes before its end.
ORDER = [CallStarted, CallAnswered, CallBridged, CallEnded]


def test_a_batch_is_grouped_keeping_a_call_a_dial_a_local_pair_and_a_bridge_together():
    batch = [
        {"Event": "Newchannel", "Uniqueid": "a1", "Linkedid": "a1", "Channel": "PJSIP/a-1"},
        {"Event": "Newchannel", "Uniqueid": "b1", "Linkedid": "b1", "Channel": "PJSIP/b-1"},
        {"Event": "Newchannel", "Uniqueid": "a2", "Linkedid": "a1", "Channel": "PJSIP/a-2"},
        {"Event": "Newchannel", "Uniqueid": "c1", "Linkedid": "c1", "Channel": "Local/1@x-0001;1"},
        # A ;2 half that only a later event ties to its call: its partner is found by name.
        {"Event": "Newchannel", "Uniqueid": "c2", "Linkedid": "z9", "Channel": "Local/1@x-0001;2"},
        {"Event": "DialBegin", "Uniqueid": "b1", "DestUniqueid": "b2", "Linkedid": "b1"},
        # Two calls meet in a bridge: the second leg keeps its own Linkedid in this event.
        {"Event": "BridgeEnter", "Uniqueid": "d1", "Linkedid": "d1", "BridgeUniqueid": "br"},
        {"Event": "BridgeEnter", "Uniqueid": "e1", "Linkedid": "e1", "BridgeUniqueid": "br"},
        {"Event": "Hangup", "Uniqueid": "a1", "Linkedid": "a1", "Channel": "PJSIP/a-1"},
        {"Event": "FullyBooted"},  # about no leg
    ]
    groups = event_groups(batch)
    headers = ("Uniqueid", "DestUniqueid")
    legs = [{e.get(h) for e in grouped for h in headers} - {None} for _, grouped in groups]
    assert legs == [{"a1", "a2"}, {"b1", "b2"}, {"c1", "c2"}, {"d1", "e1"}, set()]
    assert sorted(map(id, sum((grouped for _, grouped in groups), []))) == sorted(map(id, batch))
    for _, grouped in groups:  # each in the batch's order
        assert [batch.index(e) for e in grouped] == sorted(batch.index(e) for e in grouped)
    keys = [set(group_keys) for group_keys, _ in groups]
    assert {"ia1", "ia2"} <= keys[0] and "bbr" in keys[3] and "lLocal/1@x-0001" in keys[2]
    assert keys[4] == set()  # about no leg


class TypedEar(PbxApp):
    """Every call's typed events, each with whether the database had committed it when told."""

    name = "ear"
    all_calls = True

    def __init__(self):
        self.heard = []

    async def on_call_event(self, ctx, event):
        committed = await ctx.read(_committed, event=event)
        self.heard.append((event, committed))


def _committed(*, event):
    record = CallRecord.objects.get(pk=event.record.id)
    if isinstance(event, CallEnded):
        return record.ended_at is not None
    if isinstance(event, CallAnswered):
        return record.answered_at is not None
    if isinstance(event, CallBridged):
        return record.bridged_at is not None
    return record.started_at is not None or isinstance(event, OriginateResult)


def _run_calls(server, facade, company):
    for n in range(CALLS):
        # Answers at once, hears the message, dials a second party who answers after 1 s;
        # the first hangs up after 3 s: two legs a call, a Dial, Local pairs, a bridge.
        facade.originate(
            server=server,
            channel_id=f"t-fw-{n}",
            number="5551009",
            context="platform-click2call",
            company=company,
            app="tests",
            app_ref=f"case:{n}",
            variables={"C2C_MESSAGE": "beep", "C2C_TIMEOUT": "10", "C2C_DIAL_1": "Local/5551001@phones"},
        )


def _all_ended():
    records = CallRecord.objects.filter(uniqueid__startswith="t-fw-")
    return records.count() == CALLS and not records.filter(ended_at__isnull=True).exists()


def _legs_done(ear):
    ended = {e.record.uniqueid for e, _ in ear.heard if isinstance(e, CallEnded)}
    return len(ended) >= 2 * CALLS


def test_two_fold_workers_record_every_call_once_with_its_typed_events_in_order_after_commit(server, facade):
    company = CompanyFactory()
    ear = TypedEar()
    with pbx_process([server], apps=[ear], fold_workers=2) as pbx:
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        link = pbx.link(server)
        assert len(link.fold_workers) == 2
        assert len({w.pid for w in link.fold_workers} | {os.getpid()}) == 3  # processes of their own
        _run_calls(server, facade, company)
        wait_for(_all_ended, timeout=30, what="every originated leg to end")
        wait_for(lambda: _legs_done(ear), timeout=30, what="every leg's CallEnded")
        folded = [w.events_folded for w in link.fold_workers]
    # Both workers had a share of the calls.
    assert all(folded), folded
    # Every call recorded once: its originated leg and the leg its Dial made, nothing twice.
    originated = CallRecord.objects.filter(uniqueid__startswith="t-fw-")
    assert originated.count() == CALLS
    dialed = CallRecord.objects.filter(parent__in=originated)
    assert dialed.count() == CALLS
    assert CallRecord.objects.count() == 2 * CALLS
    assert not CallRecord.objects.filter(ended_at__isnull=True).exists()
    assert set(dialed.values_list("app", "company")) == {("tests", company.pk)}  # inherited across legs
    assert all(committed for _, committed in ear.heard), [e for e, c in ear.heard if not c]
    # The legs that met in a bridge: on a loaded machine a caller may hang up (3 s after the answer)
    # before the dialed party's answer, and its call tells no bridge.
    bridged = set(originated.filter(bridged_at__isnull=False).values_list("uniqueid", flat=True))
    bridged |= set(dialed.filter(bridged_at__isnull=False).values_list("uniqueid", flat=True))
    assert bridged
    by_leg = {}
    for event, _ in ear.heard:
        by_leg.setdefault(event.record.uniqueid, []).append(type(event))
    assert len(by_leg) == 2 * CALLS
    for uid, kinds in by_leg.items():
        ranks = [ORDER.index(kind) for kind in kinds if kind in ORDER]
        assert ranks == sorted(ranks), (uid, kinds)
        if OriginateResult in kinds:
            assert kinds.index(OriginateResult) < kinds.index(CallEnded), (uid, kinds)
        assert kinds.count(CallStarted) == 1 and kinds.count(CallEnded) == 1, (uid, kinds)
        # The two legs of each call, told by whichever share.
        assert (CallBridged in kinds) == (uid in bridged), (uid, kinds)


def test_a_fold_worker_killed_is_started_again_and_no_call_is_lost(server, facade, caplog):
    company = CompanyFactory()
    ear = TypedEar()
    with pbx_process([server], apps=[ear], fold_workers=2) as pbx:
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        worker = pbx.link(server).fold_workers[0]
        dead = worker.pid
        os.kill(dead, signal.SIGKILL)
        _run_calls(server, facade, company)
        wait_for(_all_ended, timeout=30, what="every originated leg to end")
        wait_for(lambda: worker.pid not in (None, dead), what="the fold worker to be started again")
        wait_for(lambda: _legs_done(ear), timeout=30, what="every leg's CallEnded")
    assert worker.deaths == 1
    assert f"pid {dead}) died; started again" in caplog.text
    assert CallRecord.objects.count() == 2 * CALLS
    assert not CallRecord.objects.filter(ended_at__isnull=True).exists()


def test_a_fold_worker_writes_nothing_once_the_lease_is_lost(server):
    PbxServer.objects.filter(pk=server.pk).update(lease_owner="another", lease_epoch=7)
    worker = FoldWorker("fenced")
    events = [{"Event": "Newchannel", "Uniqueid": "t-late", "Linkedid": "t-late", "_received": 1.7e9}]

    async def fold():
        await worker.start()
        return await worker.fold(server_id=server.pk, events=events, lease=Lease(server.pk, "me", 6))

    try:
        with pytest.raises(LeaseLost, match="now held by another"):
            asyncio.run(fold())
    finally:
        worker.close()
    assert not CallRecord.objects.exists()


def test_the_command_refuses_a_negative_number_of_fold_workers():
    with pytest.raises(CommandError, match="--fold-workers"):
        call_command("pbx", "--fold-workers", "-1", stdout=io.StringIO())


def test_without_the_flag_the_fold_stays_in_the_process(server, facade):
    listener = ListeningApp()
    with pbx_process([server], apps=[listener]) as pbx:
        wait_for(lambda: PbxServer.objects.get(pk=server.pk).state == "connected", what="the AMI login")
        assert pbx.link(server).fold_workers == []


def _fold_workers_of(pid) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    # multiprocessing's resource tracker is a child too: the workers are its spawned pool processes.
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _gone(pid) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_the_command_folds_in_its_workers_which_end_when_it_is_killed(server, facade, tmp_path):
    with pbx_commands(tmp_path, ["--fold-workers", "2"]) as (pbx,):
        connected(server)
        workers = wait_for(
            lambda: len(_fold_workers_of(pbx.pid)) == 2 and _fold_workers_of(pbx.pid),
            timeout=START_TIMEOUT,
            what="two fold workers",
        )
        for n in range(4):
            facade.originate(
                server=server, channel_id=f"t-cmd-{n}", number="5551001", context="platform-hold"
            )
        ended = CallRecord.objects.filter(uniqueid__startswith="t-cmd-", ended_at__isnull=False)
        wait_for(
            lambda: ended.count() == 4,
            timeout=30,
            what="the calls to be folded",
        )
        pbx.process.kill()  # kill -9: no clean stop closes the workers
        pbx.process.wait(10)
        wait_for(lambda: all(map(_gone, workers)), what="the orphaned fold workers to end")
