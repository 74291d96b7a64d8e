"""One interactive (``prompt``) connection to HAProxy's runtime API, windowed.

On connect: ``prompt``, which also tells a master CLI (``master> ``) from a worker's
stats socket (``> ``); on a master every command is routed to the current worker with
``@1``. Then ``show version`` picks the Dialect and ``show cli level`` the socket's level,
once per connection.

Commands are pipelined, but never more than ``Dialect.window`` bytes sent and not yet
answered: a command larger than the window goes alone.

Whoever is behind the socket is not trusted to be HAProxy: each exchange (the opening
questions, then each ``exchange``) has ONE deadline, set when it starts: ``timeout``
seconds, plus ``PER_COMMAND`` for each command beyond the first (HAProxy answers a push
in ~0.03 ms: 10,000 of them in one exchange take ~0.6 s), so a peer that trickles bytes
cannot hold a run longer; a reply is cut at each prompt in one pass over the bytes (never
rescanned) and may not grow past ``MAX_REPLY_BYTES``.
``listener`` says who listens (see ``peer``), for ``--update-certs``.
"""

from __future__ import annotations

import logging
import re
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence

from ocsptool.errors import HAProxyError
from ocsptool.haproxy.addresses import parse_address
from ocsptool.haproxy.dialect import Dialect, dialect_for
from ocsptool.haproxy.peer import Listener, key_refusal, listener_of

log = logging.getLogger("ocsptool.haproxy")

_WORKER_PROMPT = re.compile(rb"\n> ")
_MASTER_PROMPT = re.compile(rb"\nmaster[^\n>]{0,40}> ")
_PROMPT_MAX = 48  # longest prompt: how far back a new read may complete one
_CHUNK = 65536
_REFUSED_RETRY = 2.0  # seconds
_START = ("prompt", "show version", "show cli level")
_FIRST_PROMPT_MAX = 200  # bytes before the first prompt: more is not HAProxy
#: The largest reply taken (``show ssl cert`` of 100,000 certificates is ~10 MB): a peer
#: that sends more without a prompt is not HAProxy, and is not read further.
MAX_REPLY_BYTES = 16 * 1024 * 1024
#: What an exchange's deadline allows per command beyond the first (~30x what HAProxy
#: takes), so that a large batch is never cut short by the deadline meant for one reply.
PER_COMMAND = 0.001
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
        self._listener: Listener | None = None
        family, sockaddr = parse_address(address)
        self._path = sockaddr if isinstance(sockaddr, str) else None
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
        deadline = time.monotonic() + self.timeout
        self.sock.sendall("".join(f"{command}\n" for command in _START).encode())
        data = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            start = None
            while start is None:
                _wait(selector, deadline)
                data += self._receive()
                start = self._first_prompt(data)
            replies = _Replies(self._prompt, self.error)
            found = replies.feed(bytes(data[start:]))
            while len(found) < len(_START) - 1:
                _wait(selector, deadline)
                found += replies.feed(self._receive())
        if len(found) != len(_START) - 1 or replies.pending:
            text = one_line(bytes(replies.pending).decode("utf-8", "replace"))
            raise self.error(f"unexpected output from HAProxy: {text[:100]!r}")
        texts = [clean(reply) for reply in found]
        for reply in texts:
            log.debug("HAProxy %s -> %s", self.address, reply)
        return texts[0], texts[1]

    def _first_prompt(self, data: bytearray) -> int | None:
        """Where the replies start after ``prompt``'s; None until it is all in."""
        if data.startswith(b"\n> "):
            return 3
        if match := re.match(rb"master[^\n>]{0,40}> ", data):
            self.master = True
            self._prompt = _MASTER_PROMPT
            self._route = b"@1 "
            return match.end()
        prefix = b"\n> ".startswith(data[:3]) or b"master".startswith(data[:6])
        if len(data) > _FIRST_PROMPT_MAX or not prefix:
            text = one_line(data.decode("utf-8", "replace"))
            raise self.error(f"this is not HAProxy's runtime API (it answered {text[:80]!r})")
        return None

    def error(self, cause: OSError | str) -> HAProxyError:
        """A one-line HAProxyError naming the address and the cause."""
        if isinstance(cause, str):
            why = cause
        elif isinstance(cause, FileNotFoundError):
            why = "no such socket (is HAProxy running with this 'stats socket'?)"
        elif isinstance(cause, PermissionError):
            from ocsptool.haproxy.access import FALLBACK, denied  # whose it is, and the fix

            why = denied(self._path) if self._path is not None else FALLBACK
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

    @property
    def listener(self) -> Listener:
        """Who listens on the other end (asked once): see ``ocsptool.haproxy.peer``."""
        if self._listener is None:
            self._listener = listener_of(self.sock, self._path)
        return self._listener

    def key_refusal(self, bundle_path: str) -> str | None:
        """Why the private key in ``bundle_path`` must not be sent on this connection
        (its listener could not read that file itself), or None."""
        return key_refusal(self.address, self.listener, bundle_path)

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
        # surrogateescape: a file name that is not UTF-8 goes as the bytes it is.
        data = [self._route + command.encode("utf-8", "surrogateescape") for command in commands]
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
        deadline = time.monotonic() + self.timeout + PER_COMMAND * (len(commands) - 1)
        outgoing = bytearray()
        in_flight: deque[int] = deque()
        unanswered = 0
        next_command = 0
        replies = _Replies(self._prompt, self.error)
        answered: list[bytes] = []
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            registered = selectors.EVENT_READ
            while len(answered) < len(commands):
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
                mask = _wait(selector, deadline)
                if mask & selectors.EVENT_WRITE and outgoing:
                    del outgoing[: self._send(outgoing)]
                if mask & selectors.EVENT_READ:
                    for reply in replies.feed(self._receive()):
                        answered.append(reply)
                        if in_flight:
                            unanswered -= in_flight.popleft()
        if len(answered) != len(commands) or replies.pending:
            extra = answered[len(commands)] if len(answered) > len(commands) else replies.pending
            text = one_line(bytes(extra).decode("utf-8", "replace"))
            raise self.error(f"unexpected output from HAProxy: {text[:100]!r}")
        return [clean(reply) for reply in answered]

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


def _wait(selector: selectors.BaseSelector, deadline: float) -> int:
    """The events ready on the one socket, waiting at most until ``deadline``."""
    remaining = deadline - time.monotonic()
    ready = selector.select(remaining) if remaining > 0 else []
    if not ready:
        raise TimeoutError
    return ready[0][1]


class _Replies:
    """What a peer sends, cut into replies at each prompt as it arrives.

    Each byte is scanned once (plus the few bytes a prompt can straddle); what was cut is
    dropped; a reply still waiting for its prompt may not grow past ``MAX_REPLY_BYTES``.
    """

    def __init__(self, prompt: re.Pattern[bytes], error: Callable[[str], HAProxyError]) -> None:
        self._prompt = prompt
        self._error = error
        self.pending = bytearray()
        self._scanned = 0  # pending[:_scanned] holds no whole prompt

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; the replies it completed, in order."""
        pending = self.pending
        pending += data
        found: list[bytes] = []
        cut = 0
        for match in self._prompt.finditer(pending, max(0, self._scanned - _PROMPT_MAX)):
            found.append(bytes(pending[cut : match.start()]))
            cut = match.end()
        if cut:
            del pending[:cut]
        self._scanned = len(pending)
        if len(pending) > MAX_REPLY_BYTES:
            raise self._error(
                f"sent more than {MAX_REPLY_BYTES // (1024 * 1024)} MiB without a prompt: "
                "this is not HAProxy's runtime API"
            )
        return found


def clean(reply: bytes | bytearray) -> str:
    """The reply text without the ``+ `` prompts HAProxy prints while it reads a payload."""
    text = reply.decode("utf-8", "replace")
    while text.startswith("+ "):
        text = text[2:]
    return text.strip()


def one_line(reply: str) -> str:
    """A reply on one line (for messages)."""
    return " ".join(line.strip() for line in reply.splitlines() if line.strip())
