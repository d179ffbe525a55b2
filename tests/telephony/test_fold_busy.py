"""The fold under a busy database: its events are held and retried as long as the lock lasts,
never dropped (a Hangup dropped leaves a call open)."""

import asyncio
import logging
import threading
import time

import pytest
from django.db import connection, connections, transaction

from telephony import process
from telephony.models import CallRecord
from telephony.process import PbxProcess, ServerLink
from telephony.services import servers
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def newchannel(uniqueid):
    return {
        "Event": "Newchannel",
        "Uniqueid": uniqueid,
        "Linkedid": uniqueid,
        "Channel": f"PJSIP/100-{uniqueid}",
        "CallerIDNum": "100",
        "Exten": "200",
        "_received": time.time(),
    }


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's database-wide write lock")
def test_a_fold_outlasts_a_database_locked_past_its_retries(monkeypatch, caplog):
    # Each attempt gives up on the lock at once, so the lock outlasts many attempts quickly.
    monkeypatch.setitem(connections.settings["default"]["OPTIONS"], "timeout", 0.01)
    monkeypatch.setattr(process, "FOLD_RETRY_MAX_SECONDS", 0.2)
    server = PbxServerFactory()
    lease = servers.pbx_server_lease_take(server_id=server.pk, owner="owner").lease
    locked, release = threading.Event(), threading.Event()

    def writer_holding_the_lock():
        try:
            with transaction.atomic():  # BEGIN IMMEDIATE: the write lock, held until released
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=writer_holding_the_lock)
    holder.start()

    def busy_retries():
        return sum("database busy folding" in r.getMessage() for r in caplog.records)

    async def scenario():
        pbx = PbxProcess(apps=[])
        pbx.owner = "owner"
        link = ServerLink(server, pbx, lease)
        fold = asyncio.create_task(link._fold([newchannel("u-busy-1"), newchannel("u-busy-2")]))
        while busy_retries() <= 6 and not fold.done():  # past the five tries a fold once had
            await asyncio.sleep(0.05)
        release.set()
        await asyncio.wait_for(fold, 30)
        await asyncio.get_running_loop().run_in_executor(link.fold_thread, connections.close_all)
        link.fold_thread.shutdown()
        pbx.app_threads.shutdown()
        return link.dropped

    try:
        assert locked.wait(10)
        with caplog.at_level(logging.WARNING, logger="telephony.process"):
            dropped = asyncio.run(scenario())
    finally:
        release.set()
        holder.join()
    assert dropped == 0
    assert set(CallRecord.objects.values_list("uniqueid", flat=True)) == {"u-busy-1", "u-busy-2"}
