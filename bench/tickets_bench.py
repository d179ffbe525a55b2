"""Ticket lines: ticket numbers from 100 concurrent calls; a confirmed call's first Dial on pbxsim.

    make bench
    DEBUG=1 .venv/bin/python bench/tickets_bench.py [--calls 100] [--rounds 3] [--e2e-calls 100]

Each call is a thread on its own database connection that opens a transaction, takes a number with
tickets.services.numbers.ticket_number_allocate and writes its TicketHop, as the hop's AGI does; all
start together (a barrier), at most --connections (40) holding a connection at a time (PostgreSQL's
default max_connections is 100, shared). Checked after each round: the numbers are contiguous from
the line's next ticket and none is repeated. Prints allocations per second (calls / wall time of the
round, each call's connection opened in it; best and median of the rounds) and how long a hop's transaction
took, waiting for the line's lock included (p50, p99), once on SQLite and once on PostgreSQL when
one is reachable (DATABASE_URL, else the CI's local cluster), each in a throw-away database of its
own, in a child process (Django's database is chosen at start).

Then, on the same database, pbxsim with the contract, the real pbx process with the tickets app (a
thread of the child) and 100 callers, 10 at a time, who confirm with 1: the time from the digit
(DTMFEnd) to the first technician's Dial (DialBegin), as an AMI session of the bench's own receives
them. In between: Read returns, the ticket-hop FastAGI round trip (the hop and its ticket number in
one transaction), MixMonitor. pbxsim's waits are scaled (--time-scale), the AGI path is not.
Asserts nothing about time.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_DIR))

from bench.common import postgres_url  # noqa: E402


def child(args) -> None:
    if args.database == "sqlite":
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The pbxsim callers' recordings (MixMonitor at the first hop) go to a folder thrown away after.
    recordings = tempfile.mkdtemp(prefix="tickets-bench-recordings-")
    os.environ["TICKETS_RECORDING_DIR"] = recordings
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Company
    from bench.click2call_services import bench_database_name
    from telephony.models import PbxServer
    from tickets.models import TicketCall, TicketHop, TicketLine
    from tickets.services.numbers import ticket_number_allocate

    bench_database_name(connection, Path(tempfile.mkdtemp()))
    connection.settings_dict["TEST"]["NAME"] = connection.settings_dict["TEST"]["NAME"].replace(
        "click2call", "tickets"
    )
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        company = Company.objects.create(name="Tickets bench", slug="tickets-bench")
        server = PbxServer.objects.create(
            name="bench", ami_host="127.0.0.1", ami_username="b", ami_secret="b"
        )
        line = TicketLine.objects.create(
            company=company, server=server, name="Gas", number="720", next_ticket=1000
        )
        label = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
        rates = []
        for round_number in range(args.rounds):
            first = TicketLine.objects.get(pk=line.pk).next_ticket
            now = timezone.now()
            calls = TicketCall.objects.bulk_create(
                TicketCall(
                    line=line, server=server, uniqueid=f"{round_number}.{i}", called="720", started_at=now
                )
                for i in range(args.calls)
            )
            barrier = threading.Barrier(args.calls + 1)
            # PostgreSQL's default max_connections (100) is shared with what else runs on the cluster:
            # at most --connections calls hold one at a time, each opening its own after the start.
            slots = threading.BoundedSemaphore(args.connections)
            tickets, errors, latencies = [], [], []

            def hop(call, barrier=barrier, slots=slots, tickets=tickets, errors=errors, latencies=latencies):
                barrier.wait(timeout=60)
                slots.acquire()
                try:
                    connection.ensure_connection()
                    began = time.perf_counter()
                    with transaction.atomic():
                        ticket = ticket_number_allocate(line_id=line.pk)
                        TicketHop.objects.create(
                            call=call,
                            line=line,
                            ticket=ticket,
                            sequence=1,
                            technician_name="Tech",
                            called="731",
                            started_at=timezone.now(),
                        )
                    latencies.append(time.perf_counter() - began)
                    tickets.append(ticket)
                except Exception as exc:  # counted and shown: a failed allocation is the finding
                    errors.append(exc)
                finally:
                    connection.close()
                    slots.release()

            threads = [threading.Thread(target=hop, args=(call,)) for call in calls]
            for thread in threads:
                thread.start()
            # The threads are started and waiting: the clock starts when they are let go.
            barrier.wait(timeout=60)
            started = time.perf_counter()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            expected = list(range(first, first + args.calls))
            stored = sorted(TicketHop.objects.filter(call__in=calls).values_list("ticket", flat=True))
            contiguous = sorted(tickets) == expected == stored
            repeated = len(tickets) - len(set(tickets))
            rates.append(len(tickets) / elapsed)
            waits = sorted(latencies)
            failure = f" ({errors[0]!r})" if errors else ""
            p50, p99 = (waits[int(q * (len(waits) - 1))] * 1000 if waits else 0 for q in (0.5, 0.99))
            print(
                f"{label} round {round_number + 1}: {args.calls} concurrent calls ({args.connections} "
                f"connections at most), tickets "
                f"{min(tickets, default=0)}-{max(tickets, default=0)}: contiguous {contiguous}, repeated "
                f"{repeated}, failed {len(errors)}{failure}; {elapsed * 1000:.0f} ms, "
                f"{rates[-1]:,.0f} allocations/s; a hop's transaction (queued on the line's lock "
                f"included) p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
        print(
            f"{label}: {args.calls} concurrent calls, best {max(rates):,.0f} allocations/s, "
            f"median {statistics.median(rates):,.0f} over {args.rounds} rounds"
        )
        if args.e2e_calls:
            confirm_to_dial(args, label, company)
    finally:
        connection.close()
        name = connection.settings_dict["NAME"]
        if connection.vendor == "postgresql":
            # The pbx process's database threads leave their sessions open on the bench's own database.
            with connection._nodb_cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [name],
                )
        connection.creation.destroy_test_db(name, verbosity=0)
        shutil.rmtree(recordings, ignore_errors=True)


# The bench's callers and technician, and its DIDs routed to the contract as a real Asterisk would.
PHONES = """
[bench-ticket-dids]
exten => _5557XXX,1,Set(PLATFORM_SCRIPT=ticket)
 same => n,Goto(platform-agi,${EXTEN},1)

[bench-ticket-phones]
; a caller who keys 1 once the announcement and the beep are over, then waits
exten => 5573901,1,Answer()
 same => n,Wait(2.5)
 same => n,SendDTMF(1,250)
 same => n,Wait(1000)
 same => n,Hangup()
; a technician who rings and never answers
exten => 5573902,1,Ringing()
 same => n,Wait(100000)
"""
DID, CALLER, TECHNICIAN = "5557000", "5573901", "5573902"


class DialStamps:
    """When each caller channel's confirm digit and its first Dial reached an AMI session of the
    bench's own (DTMFEnd 1 received, then DialBegin), by the receiving clock: one TCP stream, in order."""

    def __init__(self, port: int):
        import asyncio

        from telephony.ami import AmiClient, AmiEndpoint

        self.confirmed, self.dialed = {}, {}
        self.loop = asyncio.new_event_loop()
        endpoint = AmiEndpoint("bench-watch", "127.0.0.1", port, "platform", "platform-secret")
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)

            async def start():
                self.client = AmiClient(endpoint, on_event=self.on_event)
                self.client.start()
                await self.client.connected.wait()
                ready.set()

            self.loop.create_task(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(30):
            raise RuntimeError("the bench's AMI session did not log in")

    def on_event(self, client, event):
        now = time.perf_counter()
        name, channel = event.get("Event"), event.get("Channel", "")
        if name == "DTMFEnd" and event.get("Digit") == "1" and event.get("Direction") == "Received":
            self.confirmed.setdefault(channel, now)
        elif name == "DialBegin" and channel in self.confirmed:
            self.dialed.setdefault(channel, now)

    def close(self):
        import asyncio

        async def closed():
            self.client.close()
            await asyncio.sleep(0.1)  # the cancelled watchdog's turn to end

        asyncio.run_coroutine_threadsafe(closed(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def confirm_to_dial(args, label, company) -> None:
    """pbxsim, the real pbx process with the tickets app (a thread of this process), callers who
    confirm with 1: from the digit to the first technician's Dial, which is the ticket-hop AGI round
    trip (the hop and its ticket number written in one transaction), MixMonitor and the Dial."""
    from telephony.facade import PbxFacade
    from telephony.models import DialRoute, PbxServer
    from telephony.testing import pbx_process, running_contract_pbxsim, wait_for
    from tickets.models import Technician, TicketCall, TicketLine
    from tickets.pbx import Tickets

    with tempfile.TemporaryDirectory() as tmp:
        phones = Path(tmp) / "extensions_bench_tickets.conf"
        phones.write_text(PHONES)
        manager_users = PROJECT_DIR / "tests" / "telephony" / "manager.conf"
        with running_contract_pbxsim(
            Path(tmp), manager_users=manager_users, extra_dialplans=[phones], time_scale=args.time_scale
        ) as sim:
            server = PbxServer.objects.create(
                name="bench-sim",
                ami_port=sim.port,
                ami_username="platform",
                ami_secret="platform-secret",
                agi_bind_port=sim.agi_port,
            )
            DialRoute.objects.create(
                server=server, name="default", template="Local/{number}@bench-ticket-phones"
            )
            line = TicketLine.objects.create(
                company=company, server=server, name="Bench", number=DID, ring_seconds=5, wrap=False
            )
            Technician.objects.create(line=line, name="Tech", internal=TECHNICIAN)
            stamps = DialStamps(sim.port)
            facade = PbxFacade()
            try:
                with pbx_process([server], apps=[Tickets()]):
                    wait_for(
                        lambda: PbxServer.objects.get(pk=server.pk).state == "connected",
                        timeout=30,
                        what="the AMI login",
                    )
                    started = 0
                    while started < args.e2e_calls:
                        wave = min(args.parallel, args.e2e_calls - started)
                        for n in range(started, started + wave):
                            facade.originate(
                                server=server,
                                channel_id=f"bench-caller-{n}",
                                channel=f"Local/{CALLER}@bench-ticket-phones",
                                context="bench-ticket-dids",
                                exten=DID,
                                caller_id=f'"Caller" <{CALLER}>',
                                app="bench",
                                timeout=30,
                            )
                        started += wave
                        wait_for(
                            lambda started=started: (
                                TicketCall.objects.filter(state__in=TicketCall.ENDED).count() >= started
                            ),
                            timeout=120,
                            what="the wave's calls ended",
                        )
            finally:
                facade.close()
                stamps.close()
    spans = sorted(stamps.dialed[c] - stamps.confirmed[c] for c in stamps.dialed)
    hops = TicketCall.objects.filter(line=line, hops__sequence=1).count()
    if not spans:
        print(f"{label} on pbxsim: no confirm digit followed by a Dial was seen ({hops} first hops)")
        return
    p50, p99 = (spans[min(len(spans) - 1, int(q * len(spans)))] * 1000 for q in (0.5, 0.99))
    print(
        f"{label} on pbxsim: confirm digit -> first technician's Dial, {len(spans)} calls "
        f"({args.parallel} at once, time scale {args.time_scale}): p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {spans[-1] * 1000:.1f} ms"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=40, help="database connections open at once")
    parser.add_argument("--e2e-calls", type=int, default=100, help="callers on pbxsim; 0: none")
    parser.add_argument("--parallel", type=int, default=10, help="callers on pbxsim at once")
    parser.add_argument("--time-scale", type=int, default=10, help="pbxsim's")
    parser.add_argument("--database", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.database:
        child(args)
        return
    common = [
        f"--calls={args.calls}",
        f"--rounds={args.rounds}",
        f"--connections={args.connections}",
        f"--e2e-calls={args.e2e_calls}",
        f"--parallel={args.parallel}",
        f"--time-scale={args.time_scale}",
    ]
    runs = [("sqlite", dict(os.environ))]
    url = postgres_url()
    if url:
        runs.append(("postgres", dict(os.environ, DATABASE_URL=url)))
    else:
        print("PostgreSQL not reachable: SQLite only")
    # The machine's load inflates the wall-clock figures: say what it was.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for database, env in runs:
        subprocess.run([sys.executable, __file__, f"--database={database}", *common], env=env, check=True)


if __name__ == "__main__":
    main()
