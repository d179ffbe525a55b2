"""A tiny AMI server for the cases pbxsim cannot produce: a PBX that stops answering, a port that
refuses connections and then listens again, a frame written exactly as a test chooses.

    fake = FakeAmi(answer_ping=False)
    await fake.listen()
    ... connect to ("127.0.0.1", fake.port) ...
    fake.actions  # (connection number, {header: value}) of every action received, in order
"""

import asyncio
import contextlib

BANNER = b"Asterisk Call Manager/5.0.0\r\n"


def frame(*headers: tuple[str, str]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode() + b"\r\n"


class FakeAmi:
    def __init__(self, *, answer_login=True, answer_ping=True, fully_booted=False, port=0):
        self.answer_login = answer_login
        self.answer_ping = answer_ping
        self.fully_booted = fully_booted  # panoramisk replays its awaiting actions on FullyBooted
        self.port = port
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.actions: list[tuple[int, dict[str, str]]] = []
        self.received = asyncio.Condition()

    @property
    def connections(self) -> int:
        return len(self.writers)

    async def listen(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def refuse(self):
        """Stop listening (new connections are refused) and drop the open ones."""
        self.server.close()
        await self.server.wait_closed()
        self.drop()

    def drop(self):
        for writer in self.writers:
            writer.transport.abort()

    def send(self, data: bytes, connection: int = -1):
        self.writers[connection].write(data)

    def actions_named(self, name: str) -> list[tuple[int, dict[str, str]]]:
        return [(n, a) for n, a in self.actions if a.get("Action", "").lower() == name.lower()]

    async def wait_action(self, name: str, count: int = 1, timeout: float = 5.0):
        async with self.received:
            await asyncio.wait_for(
                self.received.wait_for(lambda: len(self.actions_named(name)) >= count), timeout
            )
        return self.actions_named(name)[count - 1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        number = len(self.writers)
        self.writers.append(writer)
        writer.write(BANNER)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while raw := await reader.readuntil(b"\r\n\r\n"):
                action = {}
                for line in raw.decode().split("\r\n"):
                    key, sep, value = line.partition(": ")
                    if sep:
                        action[key] = value
                async with self.received:
                    self.actions.append((number, action))
                    self.received.notify_all()
                self._answer(writer, action)
        writer.close()

    def _answer(self, writer, action):
        name, action_id = action.get("Action", "").lower(), action.get("ActionID", "")
        if name == "login" and self.answer_login:
            writer.write(
                frame(
                    ("Response", "Success"), ("ActionID", action_id), ("Message", "Authentication accepted")
                )
            )
            if self.fully_booted:
                writer.write(
                    frame(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted"))
                )
        elif name == "ping" and self.answer_ping:
            writer.write(frame(("Response", "Success"), ("ActionID", action_id), ("Ping", "Pong")))
