"""An SMS gateway for the tests: a real HTTP server on 127.0.0.1, port 0 (the third party is the one
thing faked; the provider's HTTP client runs for real against it)."""

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

ACCEPTED = (200, b'{"message_id": "gw-1", "status": "queued"}')


@dataclass
class Received:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def raw_query(self) -> str:
        return urlsplit(self.path).query

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    @property
    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("ascii"), keep_blank_values=True)


@dataclass
class Gateway:
    """What the gateway received, and what it answers next: (code, body) pairs, then ACCEPTED.
    A `slow` answer is held until the test ends (or `release` is set): past any client's timeout."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    slow: int = 0  # how many of the next requests are held
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"


class _Handler(BaseHTTPRequestHandler):
    def _answer(self):
        gateway: Gateway = self.server.gateway
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        gateway.received.append(Received(self.command, self.path, dict(self.headers), body))
        held = gateway.slow > 0
        gateway.slow -= held
        gateway.arrived.set()
        if held:
            gateway.release.wait(30)
        code, answer = gateway.answers.pop(0) if gateway.answers else ACCEPTED
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if answer.startswith(b"{") else "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a held answer written to a client that timed out and left: expected


@contextmanager
def gateway_running(settings):
    """A gateway for one test (its module's `gateway` fixture)."""
    # It runs on this machine: a private target the operator has to allow (the webhooks' switch).
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    server = _Server(("127.0.0.1", 0), _Handler)
    server.gateway = Gateway(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.gateway
    finally:
        server.gateway.release.set()
        server.shutdown()
        server.server_close()
