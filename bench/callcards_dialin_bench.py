"""Call cards' dial-in: the card and PIN check under 100 concurrent dial-ins, and the end-of-call
billing transaction.

    make bench
    DEBUG=1 .venv/bin/python bench/callcards_dialin_bench.py                 # SQLite (the embedded default)
    DATABASE_URL=postgres://... DEBUG=1 .venv/bin/python bench/callcards_dialin_bench.py

(a) End to end: pbxsim (time scale 1), the real PbxProcess (in a thread of this process) with the
callcards and queues apps, a throw-away database with 100 cards on one queue without agents. 100
holders are rung at once (from 10 threads); each answers, keys its card id and PIN, waits in the
queue and hangs up 15 s after answering, which bills its call (0 minutes). Two rounds: every
holder keys 3 s after answering (the 100 checks land within the second it took to ring them
all: the worst case), then each keys 1 to 4.6 s after answering (100 callers on the line at once,
their checks spread over 4 s; a holder who keys nothing for 5 s hears "invalid" and keys again).
Timed: the card and PIN check as the `callcard` script awaits it (`ctx.read(dial_in_verify, ...)`:
the hop to a database thread and the reads), the opening of the card's call that follows
(`ctx.db(dial_in_open, ...)`: the lease fence, the card locked, the CardCall and the leg's
adoption written), and each service alone, inside its thread; the same for the billing at each
CallEnded. Both ends are bench-only wrappers, in this process; no production code is changed.
Goal: the check's p99 under 20 ms.

(b) The billing transaction alone (`card_call_bill`, the card locked, the legs read, the balance
and status written, the log row), on 1,000 calls that talked 1 s to 9 min: USED on first use,
EMPTY for those whose talk took the whole balance. p50 and p99.

Prints figures; asserts nothing.
"""

import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))
from bench.common import percentile  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Company  # noqa: E402
from callcards import pins  # noqa: E402
from callcards.lifecycle import Status  # noqa: E402
from callcards.models import Card, CardBatch, CardCall  # noqa: E402
from callcards.pbx import CallCards  # noqa: E402
from callcards.services import dialin  # noqa: E402
from queues.models import Queue  # noqa: E402
from queues.pbx import Queues  # noqa: E402
from telephony import platform  # noqa: E402
from telephony.facade import PbxFacade  # noqa: E402
from telephony.models import CallRecord, DialRoute, PbxServer  # noqa: E402
from telephony.services.servers import ami_source  # noqa: E402
from telephony.testing import pbx_process, running_contract_pbxsim, wait_for  # noqa: E402

# The contract's AMI user, eventfilter and all, as production runs it: the platform is sent only
# the events it reads (no DTMF, no AGIExec, no Newexten of the 100 holders keying their cards).
CONTRACT_MANAGER_CONF = PROJECT_DIR / "telephony" / "asterisk" / "manager.conf.sample"
HOLDERS = 100
BILLED = 1000
DID = "5559100"
BURST, SPREAD = 5580000, 5590000  # the holders' numbers: + 0..99


def figures(label, seconds):
    if not seconds:
        print(f"  {label}: no sample")
        return
    ms = [s * 1000 for s in seconds]
    print(
        f"  {label}: n={len(ms)} p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
        f"max {max(ms):.2f} ms"
    )


def card_id(n: int) -> str:
    payload = f"5{n:010d}"
    return payload + pins.luhn_digit(payload)


def pin(n: int) -> str:
    return f"{70000000 + n:08d}"


def make_cards(company, queue, count, *, minutes=10, status=Status.ACTIVE, offset=0):
    batch = CardBatch.objects.create(
        company=company, run="BNCH", batch=f"B{offset}", count=count, initial_minutes=minutes, queue=queue
    )
    now = timezone.now()
    return Card.objects.bulk_create(
        Card(
            company=company,
            batch=batch,
            card_id=card_id(offset + n),
            pin_sealed=pins.pin_seal(pin(offset + n)),
            pin_digest=pins.pin_digest(pin(offset + n)),
            pack=1,
            sequence=n + 1,
            status=status,
            balance_minutes=minutes,
            queue=queue,
            create_time=now,
        )
        for n in range(count)
    )


class Timings:
    """Bench-only wrappers: the check and the billing as the app awaits them, and inside the thread."""

    def __init__(self):
        self.awaited: dict[str, list[float]] = {"check": [], "open": [], "bill": []}
        self.service: dict[str, list[float]] = {"check": [], "open": [], "bill": []}

        def timed(function, name):
            def wrapped(**kwargs):
                start = time.perf_counter()
                try:
                    return function(**kwargs)
                finally:
                    self.service[name].append(time.perf_counter() - start)

            return wrapped

        dialin.dial_in_verify = timed(dialin.dial_in_verify, "check")
        dialin.dial_in_open = timed(dialin.dial_in_open, "open")
        dialin.card_call_bill = timed(dialin.card_call_bill, "bill")
        wrapped_names = {
            dialin.dial_in_verify: "check",
            dialin.dial_in_open: "open",
            dialin.card_call_bill: "bill",
        }

        def awaiting(method):
            async def awaited(ctx, function, **kwargs):
                name = wrapped_names.get(function)
                start = time.perf_counter()
                try:
                    return await method(ctx, function, **kwargs)
                finally:
                    if name:
                        self.awaited[name].append(time.perf_counter() - start)

            return awaited

        platform.AppContext.db = awaiting(platform.AppContext.db)
        platform.AppContext.read = awaiting(platform.AppContext.read)

    def clear(self):
        for values in (*self.awaited.values(), *self.service.values()):
            values.clear()

    def report(self):
        figures("card and PIN check, as the script awaits it", self.awaited["check"])
        figures("card and PIN check, the service in its thread", self.service["check"])
        figures("opening the card's call, as the script awaits it", self.awaited["open"])
        figures("opening the card's call, the service in its thread", self.service["open"])
        figures("billing at CallEnded, as the app awaits it", self.awaited["bill"])
        figures("billing at CallEnded, the service in its thread", self.service["bill"])


def end_to_end():
    print(f"(a) {HOLDERS} concurrent dial-ins through the pbx process on pbxsim ({connection.vendor})")
    lines = ["[bench-card-phones]"]
    for n in range(HOLDERS):
        for base, wait in ((BURST, 3), (SPREAD, round(1 + (n % 5) * 0.9, 1))):
            lines += [
                f"exten => {base + n},1,Answer()",
                f" same => n,Wait({wait})",
                f" same => n,SendDTMF({card_id(n)}#{pin(n)}#,60,60)",
                f" same => n,Wait({round(15 - wait, 1)})",
                " same => n,Hangup()",
            ]
    timings = Timings()
    with tempfile.TemporaryDirectory() as tmp:
        phones = Path(tmp) / "extensions_bench_cards.conf"
        phones.write_text("\n".join(lines) + "\n")
        manager_users = Path(tmp) / "manager.conf"
        manager_users.write_text(
            CONTRACT_MANAGER_CONF.read_text().replace("change-me-to-a-long-random-secret", "platform-secret")
        )
        with running_contract_pbxsim(
            Path(tmp), manager_users=manager_users, extra_dialplans=[phones], time_scale=1
        ) as sim:
            server = PbxServer.objects.create(
                name="bench",
                ami_port=sim.port,
                ami_username="platform",
                ami_secret="platform-secret",
                agi_bind_port=sim.agi_port,
            )
            route = "Local/{number}@bench-card-phones"
            DialRoute.objects.create(server=server, name="default", template=route)
            company = Company.objects.create(name="Bench", slug="bench")
            queue = Queue.objects.create(company=company, name="cards", server=server, max_wait_time=600)
            make_cards(company, queue, HOLDERS)
            with pbx_process([server], apps=[CallCards(), Queues()]):
                wait_for(
                    lambda: PbxServer.objects.get(pk=server.pk).state == "connected",
                    timeout=30,
                    what="the AMI login",
                )

                def ring(base, numbers):
                    facade = PbxFacade()
                    try:
                        for n in numbers:
                            facade.originate(
                                server=server,
                                channel_id=f"bench-card-{base + n}",
                                channel=f"Local/{base + n}@bench-card-phones",
                                context="platform-agi",
                                exten=DID,
                                variables={"PLATFORM_SCRIPT": "callcard"},
                                caller_id=f"<{base + n}>",
                                app="bench",
                                timeout=30,
                            )
                    finally:
                        facade.close()

                for base, label in (
                    (BURST, "the PINs keyed within the same second"),
                    (SPREAD, "the PINs keyed over 4 s"),
                ):
                    timings.clear()
                    start = time.perf_counter()
                    threads = [
                        threading.Thread(target=ring, args=(base, range(t, HOLDERS, 10))) for t in range(10)
                    ]
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()
                    print(f"  {HOLDERS} holders rung in {time.perf_counter() - start:.2f} s, {label}:")
                    wait_for(
                        lambda base=base: (
                            CardCall.objects.filter(
                                state=CardCall.State.BILLED, phone_number__startswith=str(base)[:3]
                            ).count()
                            == HOLDERS
                        ),
                        timeout=120,
                        interval=0.2,
                        what="every call billed",
                    )
                    timings.report()
    return server, company, queue


def billing(server, company, queue):
    print(f"(b) the billing transaction alone ({connection.vendor}): {BILLED} calls of 1 s to 9 min")
    cards = make_cards(company, queue, BILLED, minutes=5, offset=HOLDERS)
    now = timezone.now()
    calls = []
    for n, card in enumerate(cards):
        talk = 1 + (n * 37) % 540  # 1 s to 9 min: those over 5 min are capped and empty the card
        uniqueid = f"bill-{n}"
        CallRecord.objects.create(
            source=ami_source(server.pk),
            uniqueid=uniqueid,
            server=server,
            bridged_at=now - dt.timedelta(seconds=talk),
            ended_at=now,
        )
        calls.append(
            CardCall.objects.create(
                company=company,
                card=card,
                uniqueid=uniqueid,
                server=server,
                balance_minutes_start=card.balance_minutes,
                call_time=now - dt.timedelta(seconds=talk + 30),
                state=CardCall.State.TALKING,
                agent_time=now - dt.timedelta(seconds=talk),
            )
        )
    seconds = []
    for call in calls:
        start = time.perf_counter()
        dialin.card_call_bill(card_call_id=call.pk)
        seconds.append(time.perf_counter() - start)
    figures("card_call_bill", seconds)
    again = []
    for call in calls[:200]:
        start = time.perf_counter()
        dialin.card_call_bill(card_call_id=call.pk)
        again.append(time.perf_counter() - start)
    figures("card_call_bill again (already billed: nothing changes)", again)
    ids = [c.pk for c in cards]
    by_status = {s: Card.objects.filter(pk__in=ids, status=s).count() for s in Status.values}
    print("  cards after: " + ", ".join(f"{s} {n}" for s, n in by_status.items() if n))


def main():
    sqlite = connection.vendor == "sqlite"
    connection.settings_dict["TEST"]["NAME"] = (
        str(Path(tempfile.mkdtemp()) / "bench.sqlite3") if sqlite else f"bench_callcards_{os.getpid()}"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        server, company, queue = end_to_end()
        billing(server, company, queue)
    finally:
        connection.close()
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
