"""The facade learns an Originate's outcome from the pbx process's announcement, not by polling:
a NOTIFY at the fold's commit on PostgreSQL, a Redis publish where Redis is the broker; the record
stays the truth, re-read should an announcement be lost."""

import concurrent.futures

import pytest
from django.db import connection, transaction

from pbxsim.harness import free_port
from telephony import facade as facade_module
from telephony.facade import OutcomeWakeups, PbxFacade
from telephony.models import CallRecord
from telephony.services import calls, originate
from telephony.testing import pbx_process, running_redis, wait_for
from tests.factories import CompanyFactory
from tests.telephony.factories import PbxServerFactory

pytestmark = pytest.mark.django_db(transaction=True)

BOUND = 30  # seconds a test waits before calling a wake-up lost (never reached when it works)


@pytest.fixture(params=["postgresql", "redis"])
def transport(request, settings, monkeypatch):
    """Each announcement the run can have: LISTEN/NOTIFY on PostgreSQL, Redis pub/sub beside either."""
    if request.param == "postgresql":
        if connection.vendor != "postgresql":
            pytest.skip("LISTEN/NOTIFY needs PostgreSQL (DATABASE_URL)")
        yield request.param
        return
    with running_redis() as url:
        if url is None:
            pytest.skip("redis-server is not installed")
        settings.CELERY_BROKER_URL = url
        for module in (originate, facade_module):
            monkeypatch.setattr(module, "outcome_transport", lambda: "redis")
        yield request.param
        originate._redis = None  # the pbx side's client, of this test's server


def in_thread(pool, function, *args, **kwargs):
    """`function` in the pool's thread, as a Celery task runs it: its database session closed after."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return pool.submit(run)


def claimed(server, uniqueid):
    return originate.call_record_claim(
        server=server, uniqueid=uniqueid, company=CompanyFactory(), app="tests", sent=True
    )


def response(uniqueid, reason="4"):
    return {
        "Event": "OriginateResponse",
        "Uniqueid": uniqueid,
        "Channel": "Local/5551001@phones-00000001;1",
        "Reason": reason,
        "Response": "Success",
        "_received": 1_795_422_307.0,
    }


def test_the_fold_wakes_the_wait_on_its_record_when_it_commits(transport):
    server = PbxServerFactory()
    record, other = claimed(server, "wake-1"), claimed(server, "wake-2")
    wakeups = OutcomeWakeups()
    try:
        with wakeups.watching(record.pk) as woken, wakeups.watching(other.pk) as not_woken:
            assert wakeups.listening
            calls.call_events_fold(server_id=server.pk, events=[response("wake-1")])
            assert woken.wait(BOUND)
            assert not not_woken.is_set()  # announced by id: only the waits on that record
    finally:
        wakeups.stop()


def test_the_facade_learns_the_outcome_from_the_announcement(transport, sim, server, monkeypatch):
    """The fallback re-read is put out of reach: only the announcement can end the wait."""
    monkeypatch.setattr(facade_module, "OUTCOME_FALLBACK", 3600)
    facade = PbxFacade()
    call = {"server": server, "number": "5551001", "context": "platform-hold", "timeout": 600, "wait": True}
    try:
        with pbx_process([server]), concurrent.futures.ThreadPoolExecutor(1) as pool:
            wait_for(lambda: server.__class__.objects.get(pk=server.pk).state == "connected")
            for n in range(3):
                outcome = in_thread(pool, facade.originate, channel_id=f"t-heard-{n}", **call).result(BOUND)
                assert (outcome.outcome, outcome.uniqueid) == ("answered", f"t-heard-{n}")
            assert facade._wakeups.listening
    finally:
        facade.close()


@pytest.mark.parametrize("case", ["listening", "polling", "listener down"])
def test_an_outcome_never_announced_is_still_read_from_the_record(case, settings, monkeypatch):
    """A lost announcement (or none: the embedded defaults; or a listener that cannot connect)
    delays the outcome, never loses it."""
    announced = case == "listening"
    if announced:
        if connection.vendor != "postgresql":
            pytest.skip("needs PostgreSQL's LISTEN")
        monkeypatch.setattr(facade_module, "OUTCOME_FALLBACK", 0.05)
    else:
        # The slow re-read out of reach: only the poll can read the outcome in time.
        monkeypatch.setattr(facade_module, "OUTCOME_FALLBACK", 3600)
        transport = "redis" if case == "listener down" else "poll"
        monkeypatch.setattr(facade_module, "outcome_transport", lambda: transport)
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nobody there
    record = claimed(PbxServerFactory(), "unheard-1")
    facade = PbxFacade()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # Its deadline past the bound: only a re-read before it ends the wait in time.
            waiting = in_thread(pool, facade._outcome, record, 2 * BOUND)
            wait_for(lambda: facade._wakeups._waits, what="the wait to begin")
            if announced:
                wait_for(lambda: facade._wakeups.listening, what="the LISTEN")
            if case == "listener down":
                wait_for(lambda: facade._wakeups._signals.tried.is_set(), what="the listener's failure")
            with transaction.atomic():  # written behind the pbx process's back: nothing announced
                CallRecord.objects.filter(pk=record.pk).update(originate_reason=5, channel="PJSIP/x-1")
            outcome = waiting.result(BOUND)
        assert (outcome.uniqueid, outcome.outcome, outcome.channel) == ("unheard-1", "busy", "PJSIP/x-1")
        assert facade._wakeups.listening is announced
    finally:
        facade.close()
