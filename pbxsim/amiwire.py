"""A raw AMI client over asyncio streams: exactly the bytes the tests choose, nothing hidden.

The tests need frames as they are on the wire (the banner line, every event, the
moment the server closes), which a full client such as panoramisk abstracts away.
"""

import asyncio
import contextlib
import time

from pbxsim.harness import AMI_SECRET, AMI_USERNAME
from pbxsim.tracefile import Frame, parse_headers

# The direction of a frame received from the PBX, as in the traces.
RECEIVED = "<<<"
READ_LIMIT = 4 * 1024 * 1024


class ConnectionClosed(Exception):
    pass


def encode_action(headers):
    """(name, value) pairs to one AMI frame: CRLF line ends, an empty line at the end."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode() + b"\r\n"


class AmiConnection:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.banner = None
        self.backlog = []

    @classmethod
    async def open(cls, host, port, timeout=5.0):
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=READ_LIMIT), timeout
        )
        connection = cls(reader, writer)
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionClosed("closed before the banner")
        connection.banner = line.decode("utf-8", "replace").rstrip("\r\n")
        return connection

    async def send_raw(self, data):
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, headers):
        await self.send_raw(encode_action(headers))

    async def read_frame(self, timeout=5.0):
        """The next frame as a Frame stamped with the monotonic clock; ConnectionClosed on EOF."""
        lines = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            if not raw:
                raise ConnectionClosed("connection closed by the PBX")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if lines:
                    return Frame(RECEIVED, time.monotonic(), lines, parse_headers(lines))
                continue
            lines.append(line)

    async def wait_for(self, matches, timeout=5.0):
        """The first frame, earliest first, for which matches(frame) holds.

        Frames read meanwhile that do not match are kept, and later waits look at them
        first: events of different channels come in no fixed order, so a test may wait
        for them in any order.
        """
        for index, frame in enumerate(self.backlog):
            if matches(frame):
                return self.backlog.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.read_frame(max(0.0, deadline - time.monotonic()))
            if matches(frame):
                return frame
            self.backlog.append(frame)

    async def read_response(self, action_id, timeout=5.0):
        return await self.wait_for(
            lambda frame: frame.is_response and frame.get("ActionID") == action_id, timeout
        )

    async def action(self, headers, timeout=5.0):
        """Send an action (it must carry an ActionID) and return its response frame."""
        action_id = dict(headers)["ActionID"]
        await self.send(headers)
        return await self.read_response(action_id, timeout)

    async def login(self, username=AMI_USERNAME, secret=AMI_SECRET, events="on", timeout=5.0):
        response = await self.action(
            [
                ("Action", "Login"),
                ("Username", username),
                ("Secret", secret),
                ("Events", events),
                ("ActionID", "login"),
            ],
            timeout,
        )
        if response.get("Response") != "Success":
            raise AssertionError(f"Login refused: {response.lines}")
        return response

    async def wait_closed(self, timeout=5.0):
        """Read until the server closes; the frames that came before the close are returned."""
        frames = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                frames.append(await self.read_frame(max(0.0, deadline - time.monotonic())))
        except ConnectionClosed:
            return frames

    async def close(self):
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def open_logged_in(host, port, timeout=5.0):
    connection = await AmiConnection.open(host, port, timeout)
    await connection.login(timeout=timeout)
    return connection
