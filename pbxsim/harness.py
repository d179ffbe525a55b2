"""Starting and stopping the simulator as a subprocess, for any test that needs a PBX.

It runs as `python -m pbxsim`, `manage.py pbxsim` without Django's start-up: most end-to-end
tests start one.

    with running_pbxsim(dialplans=[PHONES_DIALPLAN], time_scale=20) as pbx:
        ... connect to (pbx.host, pbx.port) ...

Each run gets its own free port and its own directory for the log, the
MixMonitor output and the MessageSend log, so runs never see each other's files.
The recorded dialplan names its FastAGI server `agi://127.0.0.1:4573`; each run
gets a copy that names a free port instead (`agi_port`), so tests run beside a
PBX or a `make run` that uses 4573.
"""

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
# The recorded configuration stays beside the traces it was recorded with.
CONF_DIR = PROJECT_DIR / "tests" / "pbxsim" / "conf"
# The dialplan and manager users the reference traces were recorded with.
PHONES_DIALPLAN = CONF_DIR / "extensions.conf"
MANAGER_USERS = CONF_DIR / "manager.conf"
# The FastAGI address the recorded dialplan names (and Asterisk sent back in agi_request).
RECORDED_AGI_ADDRESS = "127.0.0.1:4573"
AMI_USERNAME = "platform"
AMI_SECRET = "platform-secret"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
_PORT_RETRIES = 3


class PbxsimError(RuntimeError):
    pass


@dataclass
class PbxsimProcess:
    host: str
    port: int
    process: subprocess.Popen
    workdir: Path
    log_file: Path
    monitor_dir: Path | None
    messages_file: Path | None
    agi_port: int

    @property
    def pid(self):
        return self.process.pid

    def is_running(self):
        return self.process.poll() is None

    def log_text(self):
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines=40):
        return "\n".join(self.log_text().splitlines()[-lines:])


def free_port(host="127.0.0.1"):
    # The port may be taken again before the simulator binds it; running_pbxsim retries on that.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _with_agi_port(dialplan, workdir, agi_port):
    """The recorded dialplan's copy that sends AGI() to `agi_port`; any other dialplan as it is."""
    if Path(dialplan).resolve() != PHONES_DIALPLAN:
        return dialplan
    copy = workdir / PHONES_DIALPLAN.name
    text = PHONES_DIALPLAN.read_text(encoding="utf-8")
    copy.write_text(text.replace(f"agi://{RECORDED_AGI_ADDRESS}/", f"agi://127.0.0.1:{agi_port}/"))
    return copy


def _environment():
    env = dict(os.environ)
    # The settings refuse to start without a SECRET_KEY unless DEBUG is on (dev key file).
    env.setdefault("DEBUG", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


_PR_SET_PDEATHSIG = 1


def _stop_with_parent():
    """Runs in the child before exec: a test run killed outright (a CI timeout) cleans nothing up,
    so have the kernel send the simulator SIGTERM when its parent dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _command(*args):
    return [sys.executable, "-m", "pbxsim", *args]


@functools.cache
def _supported_options():
    """The optional flags this build of pbxsim knows, from its --help (asked once per test session)."""
    result = subprocess.run(
        _command("--help"),
        cwd=PROJECT_DIR,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise PbxsimError(f"`python -m pbxsim --help` failed:\n{result.stdout}\n{result.stderr}")
    known = ("--monitor-dir", "--messages-file", "--message-technologies", "--originate-failure-order")
    return frozenset(option for option in known if option in result.stdout)


def supports(option):
    return option in _supported_options()


def _wait_listening(process, log_file, host, port, deadline):
    wanted = f"listening on {host}:{port}"
    while time.monotonic() < deadline:
        if wanted in log_file.read_text(encoding="utf-8", errors="replace"):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.02)
    raise PbxsimError(
        f"pbxsim did not log {wanted!r} within {START_TIMEOUT:.0f} s; log:\n"
        + log_file.read_text(encoding="utf-8", errors="replace")
    )


def _stop(process):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running_pbxsim(
    dialplans=(PHONES_DIALPLAN,), manager_users=MANAGER_USERS, time_scale=1, extra_args=(), host="127.0.0.1"
):
    """Run the simulator until the block ends; yields a PbxsimProcess.

    `extra_args` go to the command line as they are (check `supports(option)` first for
    options the fixed command line does not promise).

    Stopping it with SIGTERM is part of the contract: a simulator that needed
    SIGKILL is still stopped, but a test that cares checks `process.returncode`.
    """
    options = _supported_options()
    with tempfile.TemporaryDirectory(prefix="pbxsim-") as tmp:
        workdir = Path(tmp)
        monitor_dir = workdir / "monitor" if "--monitor-dir" in options else None
        messages_file = workdir / "messages.jsonl" if "--messages-file" in options else None
        extra = []
        if monitor_dir is not None:
            monitor_dir.mkdir()
            extra += ["--monitor-dir", str(monitor_dir)]
        if messages_file is not None:
            extra += ["--messages-file", str(messages_file)]
        agi_port = free_port(host)
        for dialplan in dialplans:
            extra += ["--dialplan", str(_with_agi_port(dialplan, workdir, agi_port))]
        extra += ["--manager-users", str(manager_users), "--time-scale", str(time_scale), *extra_args]

        for attempt in range(_PORT_RETRIES):
            port = free_port(host)
            log_file = workdir / f"pbxsim-{attempt}.log"
            with log_file.open("wb") as log:
                process = subprocess.Popen(
                    _command("--listen", f"{host}:{port}", *extra),
                    cwd=PROJECT_DIR,
                    env=_environment(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
                )
            try:
                listening = _wait_listening(process, log_file, host, port, time.monotonic() + START_TIMEOUT)
            except BaseException:
                _stop(process)
                raise
            if listening:
                break
            log_text = log_file.read_text(encoding="utf-8", errors="replace")
            # Another process may have taken the port between free_port() and the bind.
            if "in use" not in log_text:
                raise PbxsimError(
                    f"pbxsim exited with {process.returncode} before listening; log:\n{log_text}"
                )
        else:
            raise PbxsimError(f"pbxsim found no free port in {_PORT_RETRIES} attempts")

        sim = PbxsimProcess(
            host=host,
            port=port,
            process=process,
            workdir=workdir,
            log_file=log_file,
            monitor_dir=monitor_dir,
            messages_file=messages_file,
            agi_port=agi_port,
        )
        try:
            yield sim
        finally:
            _stop(process)
