"""One interactive (``prompt``) connection to HAProxy's runtime API, windowed.

On connect: ``prompt``, which also tells a master CLI (``master> ``) from a worker's
stats socket (``> ``); on a master every command is routed to the current worker with
``@1``. Then ``show version`` picks the Dialect and ``show cli level`` the socket's level,
once per connection.

Commands are pipelined, but never more than ``Dialect.window`` bytes sent and not yet
answered: a command larger than the window goes alone. Every wait has the timeout.
"""

from __future__ import annotations

import logging
import re
import selectors
import socket
import time
from collections import deque
from collections.abc import Sequence

from ocsptool.errors import HAProxyError
from ocsptool.haproxy.addresses import parse_address
from ocsptool.haproxy.dialect import Dialect, dialect_for

log = logging.getLogger("ocsptool.haproxy")

_WORKER_PROMPT = re.compile(rb"\n> ")
_MASTER_PROMPT = re.compile(rb"\nmaster[^\n>]{0,40}> ")
_PROMPT_MAX = 48  # longest prompt: how far back a new read may complete one
_CHUNK = 65536
_REFUSED_RETRY = 2.0  # seconds
_START = ("prompt", "show version", "show cli level")
LEVELS = ("user", "operator", "admin")


class Connection:
    """One connection in interactive mode; ``dialect``, ``level``, ``master`` once known."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self.broken: HAProxyError | None = None
        self.master = False
        self._prompt = _WORKER_PROMPT
        self._route = b""
        self.dialect: Dialect = dialect_for("")  # until ``show version`` answers
        self.level: str | None = None
        family, sockaddr = parse_address(address)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._connect(family, sockaddr)
            self.sock.setblocking(False)
            version, level = self._start()
            self.dialect = dialect_for(version)
            self.level = level if level in LEVELS else None
        except OSError as e:
            self.close()
            raise self.error(e) from None
        except HAProxyError:
            self.close()
            raise
        log.debug(
            "HAProxy %s: version %s, level %s%s",
            address,
            self.dialect.version,
            self.level or "unknown",
            ", master CLI (commands go to @1)" if self.master else "",
        )

    def _connect(self, family: int, sockaddr: str | tuple[str, int]) -> None:
        """Connect; a refusal is retried briefly: a master CLI re-creates its socket on
        ``reload`` (it re-executes itself), so right after one it refuses for a moment."""
        deadline = time.monotonic() + min(self.timeout, _REFUSED_RETRY)
        while True:
            self.sock.settimeout(self.timeout)
            try:
                self.sock.connect(sockaddr)
                return
            except ConnectionRefusedError:
                if time.monotonic() >= deadline:
                    raise
            self.sock.close()
            time.sleep(0.05)
            self.sock = socket.socket(family, socket.SOCK_STREAM)

    def _start(self) -> tuple[str, str]:
        """``prompt``, ``show version`` and ``show cli level`` in one write; their replies.

        A worker answers ``prompt`` with ``\\n> ``, a master CLI with ``master> ``: from
        then on, commands to a master go to its current worker (``@1``). On a master the
        two questions are the master's own: the same binary, and the level it forwards.
        """
        for command in _START:
            log.debug("HAProxy %s <- %s", self.address, command)
        self.sock.sendall("".join(f"{command}\n" for command in _START).encode())
        data = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            start = None
            while start is None:
                if not selector.select(self.timeout):
                    raise TimeoutError
                data += self._receive()
                start = self._first_prompt(data)
            replies: list[str] = []
            position = start
            while True:
                for match in self._prompt.finditer(data, position):
                    replies.append(clean(data[position : match.start()]))
                    position = match.end()
                if len(replies) >= len(_START) - 1:
                    break
                if not selector.select(self.timeout):
                    raise TimeoutError
                data += self._receive()
        if len(replies) != len(_START) - 1 or data[position:]:
            text = one_line(data[position:].decode("utf-8", "replace"))
            raise self.error(f"unexpected output from HAProxy: {text[:100]!r}")
        for reply in replies:
            log.debug("HAProxy %s -> %s", self.address, reply)
        return replies[0], replies[1]

    def _first_prompt(self, data: bytearray) -> int | None:
        """Where the replies start after ``prompt``'s; None until it is all in."""
        if data.startswith(b"\n> "):
            return 3
        if match := re.match(rb"master[^\n>]{0,40}> ", data):
            self.master = True
            self._prompt = _MASTER_PROMPT
            self._route = b"@1 "
            return match.end()
        if len(data) > 200 or not (b"\n> ".startswith(data[:3]) or b"master".startswith(data[:6])):
            text = one_line(data.decode("utf-8", "replace"))
            raise self.error(f"this is not HAProxy's runtime API (it answered {text[:80]!r})")
        return None

    def error(self, cause: OSError | str) -> HAProxyError:
        """A one-line HAProxyError naming the address and the cause."""
        if isinstance(cause, str):
            why = cause
        elif isinstance(cause, FileNotFoundError):
            why = "no such socket (is HAProxy running with this 'stats socket'?)"
        elif isinstance(cause, PermissionError) and isinstance(
            path := parse_address(self.address)[1], str
        ):
            from ocsptool.haproxy.access import denied  # whose it is, and the fix

            why = denied(path)
        elif isinstance(cause, PermissionError):
            why = "permission denied (run as a user that may use the socket)"
        elif isinstance(cause, ConnectionRefusedError):
            why = "connection refused (nothing is listening)"
        elif isinstance(cause, TimeoutError):
            why = f"timed out after {self.timeout:g}s waiting for HAProxy"
        elif isinstance(cause, ConnectionResetError | BrokenPipeError):
            why = "HAProxy closed the connection unexpectedly"
        else:
            why = cause.strerror or str(cause)
        return HAProxyError(f"HAProxy socket {self.address}: {why}")

    def close(self) -> None:
        self.sock.close()

    def command(self, command: str) -> str:
        """Send one command (with its newline or payload) and return its reply."""
        return self.exchange([command])[0]

    def exchange(self, commands: Sequence[str], *, quiet: bool = False) -> list[str]:
        """Send ``commands`` in order within the window; their replies, in order.

        ``quiet``: no debug line per command (read-backs: the caller logs what differs).
        Raises HAProxyError (and marks the connection broken) on timeout or close.
        """
        if self.broken is not None:
            raise self.broken
        if not commands:
            return []
        data = [self._route + command.encode() for command in commands]
        loud = not quiet and log.isEnabledFor(logging.DEBUG)
        if loud:
            for command in commands:  # the first line only: a payload may hold a key
                log.debug("HAProxy %s <- %s", self.address, command.split("\n", 1)[0][:100])
        try:
            replies = self._exchange(data)
        except OSError as e:
            self.broken = self.error(e)
            raise self.broken from None
        except HAProxyError as e:
            self.broken = e
            raise
        for reply in replies if loud else ():
            log.debug("HAProxy %s -> %s", self.address, one_line(reply)[:100] or "(empty)")
        return replies

    def _exchange(self, commands: list[bytes]) -> list[str]:
        window = self.dialect.window
        outgoing = bytearray()
        in_flight: deque[int] = deque()
        unanswered = 0
        next_command = 0
        incoming = bytearray()
        scanned = 0  # incoming[:scanned] holds no prompt start we have not counted
        reply_start = 0
        replies: list[str] = []
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            registered = selectors.EVENT_READ
            while len(replies) < len(commands):
                while next_command < len(commands) and (
                    not in_flight or unanswered + len(commands[next_command]) <= window
                ):
                    size = len(commands[next_command])
                    outgoing += commands[next_command]
                    in_flight.append(size)
                    unanswered += size
                    next_command += 1
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if outgoing else 0)
                if events != registered:
                    selector.modify(self.sock, events)
                    registered = events
                ready = selector.select(self.timeout)
                if not ready:
                    raise TimeoutError
                mask = ready[0][1]
                if mask & selectors.EVENT_WRITE and outgoing:
                    del outgoing[: self._send(outgoing)]
                if mask & selectors.EVENT_READ:
                    incoming += self._receive()
                    for match in self._prompt.finditer(incoming, scanned):
                        replies.append(clean(incoming[reply_start : match.start()]))
                        reply_start = scanned = match.end()
                        unanswered -= in_flight.popleft()
                        if not in_flight and next_command == len(commands):
                            break
                    scanned = max(scanned, len(incoming) - _PROMPT_MAX)
        if len(replies) != len(commands) or incoming[reply_start:]:
            text = one_line(incoming[reply_start:].decode("utf-8", "replace"))
            raise self.error(f"unexpected output from HAProxy: {text[:100]!r}")
        return replies

    def _send(self, data: bytearray) -> int:
        try:
            return self.sock.send(data[:_CHUNK])
        except BlockingIOError:
            return 0

    def _receive(self) -> bytes:
        try:
            chunk = self.sock.recv(_CHUNK)
        except BlockingIOError:
            return b""
        if not chunk:
            raise self.error("HAProxy closed the connection unexpectedly")
        return chunk


def clean(reply: bytes | bytearray) -> str:
    """The reply text without the ``+ `` prompts HAProxy prints while it reads a payload."""
    text = reply.decode("utf-8", "replace")
    while text.startswith("+ "):
        text = text[2:]
    return text.strip()


def one_line(reply: str) -> str:
    """A reply on one line (for messages)."""
    return " ".join(line.strip() for line in reply.splitlines() if line.strip())
