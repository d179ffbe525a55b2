"""Running the real pbx process against pbxsim inside a test or a benchmark.

`pbx_process(servers)` runs telephony.process.PbxProcess on its own event loop in a
thread; `TcpProxy` sits between it and the simulator so a test can make the PBX
disappear and come back.
"""

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from pathlib import Path

from django.db import connection

from pbxsim.harness import PHONES_DIALPLAN, free_port, running_pbxsim, supports
from telephony.platform import PbxApp
from telephony.process import PbxProcess

CONTRACT = Path(__file__).resolve().parent / "asterisk" / "extensions_platform.conf"


def contract_dialplans(tmp_path, agi_port):
    """The shipped contract, the test phones, and the address of this test's FastAGI server."""
    globals_file = tmp_path / "globals.conf"
    globals_file.write_text(f"[globals]\nPLATFORM_AGI=agi://127.0.0.1:{agi_port}\n")
    return [CONTRACT, PHONES_DIALPLAN, globals_file]


@contextlib.contextmanager
def running_contract_pbxsim(tmp_path, *, manager_users, extra_dialplans=(), time_scale=20, extra_args=()):
    """pbxsim running the contract, the test phones and `extra_dialplans`; its FastAGI address is a
    free port, kept as `sim.agi_port` for the PbxServer the pbx process serves it on. `extra_args`
    go to pbxsim's command line (e.g. `--originate-failure-order hangup-first`)."""
    agi_port = free_port()
    with running_pbxsim(
        dialplans=[*contract_dialplans(tmp_path, agi_port), *extra_dialplans],
        manager_users=manager_users,
        time_scale=time_scale,
        extra_args=extra_args,
    ) as sim:
        sim.agi_port = agi_port
        yield sim


@contextlib.contextmanager
def side_by_side(managers, *, at_once=None):
    """Enter context managers side by side, `at_once` at a time (one per core: ten pbxsims start
    in the time of five on two cores, and none waits for a core past its start timeout), and exit
    them all at once; yields their values in order. Each lives in a thread of its own until the
    block ends: pbxsim is stopped when the thread that started it ends (PR_SET_PDEATHSIG). One that
    fails to start is raised once the others are stopped."""
    managers = list(managers)
    starting = threading.Semaphore(at_once or os.cpu_count() or 1)
    supports("--monitor-dir")  # pbxsim's --help, asked once here, not by every thread at the same time
    done = threading.Event()
    entered = [concurrent.futures.Future() for _ in managers]

    def hold(manager, value: concurrent.futures.Future):
        try:
            with starting:
                context = manager.__enter__()
        except BaseException as exc:  # handed to the thread that waits for it
            value.set_exception(exc)
            return
        value.set_result(context)
        done.wait()
        manager.__exit__(None, None, None)

    threads = [
        threading.Thread(target=hold, args=pair, daemon=True, name="side-by-side")
        for pair in zip(managers, entered, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        concurrent.futures.wait(entered)
        yield [value.result() for value in entered]
    finally:
        done.set()
        for thread in threads:
            thread.join(60)


def database_url():
    """The URL of the database this process uses (the test database in a test), for a child process."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )


def wait_for(predicate, timeout=10.0, interval=0.02, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class PbxProcessThread:
    def __init__(self, servers, apps=None, fold_workers=0):
        self.servers = servers
        self.process = PbxProcess(apps=apps or [], fold_workers=fold_workers)
        self.loop = asyncio.new_event_loop()
        self.error = None
        self.thread = threading.Thread(target=self._run, name="pbx-process", daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.process.run(self.servers, install_signals=False))
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
        finally:
            self.loop.close()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.process.stopping.set)
            self.thread.join(15)
        if self.error:
            raise self.error

    def link(self, server):
        return self.process.links[server.pk]


@contextlib.contextmanager
def pbx_process(servers, apps=None, fold_workers=0):
    runner = PbxProcessThread(servers, apps, fold_workers).start()
    try:
        yield runner
    finally:
        runner.stop()


class TcpProxy:
    """127.0.0.1:<port> forwarded to a target; cut() drops every connection and refuses new ones."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.open = True
        self.writers: set[asyncio.StreamWriter] = set()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _client(self, reader, writer):
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def start(self):
        self.thread.start()
        self.ready.wait(5)
        return self

    def cut(self):
        def drop():
            self.open = False
            for writer in self.writers:
                writer.transport.abort()
            self.writers.clear()

        self.loop.call_soon_threadsafe(drop)

    def restore(self):
        self.loop.call_soon_threadsafe(setattr, self, "open", True)

    def close(self):
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class ListeningApp(PbxApp):
    """A test's ears and hands in the pbx process: keeps the raw events it asked for, serves
    the FastAGI scripts it is given (name -> async function of the AgiCall)."""

    def __init__(self, *, ami_events=(), user_events=(), scripts=None, name="tests"):
        self.name = name
        self.ami_events = frozenset(ami_events)
        self.user_events = frozenset(user_events)
        self.scripts = scripts or {}
        self.agi_scripts = dict.fromkeys(self.scripts, "serve")
        self.events: list[dict] = []

    async def on_ami_event(self, ctx, event):
        self.events.append(event)

    async def serve(self, ctx, call):
        await self.scripts[call.headers.get("agi_network_script", "").split("?")[0].strip("/")](call)


@contextlib.contextmanager
def running_redis():
    """A redis-server of the caller's own on a free port, saving nothing; yields its URL (None when
    no redis-server is installed)."""
    import shutil
    import subprocess

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)

    def answers():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, what="redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        server.wait(10)
