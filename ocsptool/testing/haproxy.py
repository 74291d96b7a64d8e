"""A real HAProxy process for tests, ``ocsptool demo`` and the benchmarks.

``HAProxy(crt)`` writes a config into a short temporary directory, starts the real
``haproxy`` binary in the foreground (``-db``) with an admin stats socket and a TLS
frontend on a free loopback port, and waits until the socket answers::

    with HAProxy(cert_dir) as proxy:
        push_staples(proxy.socket, items)
        assert tls_staple(proxy.port, "site.test") == der

``tls_staple`` does a real TLS 1.2 handshake asking for a staple (``status_request``)
and returns the stapled OCSP response exactly as HAProxy sent it, as DER bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

from ocsptool.testing.processes import stop_process

_START_TIMEOUT = 10.0
_CANDIDATES = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")


def haproxy_binary() -> str | None:
    """The haproxy executable: ``$OCSPTOOL_HAPROXY``, then ``PATH``, then the usual sbin dirs."""
    configured = os.environ.get("OCSPTOOL_HAPROXY")
    if configured:  # a relative path is from the current directory (CI: ../shared/...)
        return os.path.abspath(configured) if os.access(configured, os.X_OK) else None
    found = shutil.which("haproxy")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class HAProxy:
    """A real HAProxy serving ``crt`` (a PEM file, a directory, or a crt-list).

    ``crt_list=True`` binds with ``crt-list <crt>`` instead of ``crt <crt>`` (a crt-list
    line may say ``[ocsp-update on]``). ``tcp_socket=True`` adds a second admin socket on
    ``ipv4@127.0.0.1:<port>``, available as ``tcp_address``. ``levels=("user", ...)`` adds
    one stats socket per level, ``level_socket(level)``. ``master=True`` runs it in
    master-worker mode (``-W -S``) with the master CLI at ``master_socket`` (and
    ``master_options``, e.g. ``"mode,660,group,haproxy"``, after its path); ``global_lines``
    go into the global section as they are.
    """

    #: Bind options after the master socket's path (a class default: ``Running`` in
    #: ``haproxy_configs`` sets up its own attributes, not through ``__init__``).
    master_options: str = ""

    def __init__(
        self,
        crt: Path,
        *,
        crt_list: bool = False,
        tcp_socket: bool = False,
        binary: str | None = None,
        levels: tuple[str, ...] = (),
        master: bool = False,
        master_options: str = "",
        global_lines: tuple[str, ...] = (),
    ) -> None:
        found = binary or haproxy_binary()
        if found is None:
            raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
        self.binary = found
        self.crt = Path(crt)
        # Unix socket paths are limited to ~107 bytes, so stay out of deep pytest dirs.
        self.dir = Path(tempfile.mkdtemp(prefix="ocsptool-haproxy-"))
        self.socket = str(self.dir / "admin.sock")
        self.port = free_port()
        self.tcp_address = f"ipv4@127.0.0.1:{free_port()}" if tcp_socket else None
        self.levels = levels
        self.master_socket = str(self.dir / "master.sock") if master else None
        self.master_options = master_options  # ``-S path,mode,660,group,g``
        self.global_lines = global_lines
        self.config = self.dir / "haproxy.cfg"
        self.log = self.dir / "haproxy.log"
        self.config.write_text(self._config_text(crt_list))
        self._process: subprocess.Popen[bytes] | None = None
        #: The environment haproxy starts with (None: this process's).
        self.env: Mapping[str, str] | None = None

    def level_socket(self, level: str) -> str:
        """The stats socket at ``level`` (one of ``levels``)."""
        if level not in self.levels:
            raise ValueError(f"no socket at level {level!r}: pass levels=({level!r},)")
        return str(self.dir / f"{level}.sock")

    def _config_text(self, crt_list: bool) -> str:
        keyword = "crt-list" if crt_list else "crt"
        lines = [
            "global",
            f"    stats socket {self.socket} mode 600 level admin",
        ]
        if self.tcp_address:
            lines.append(f"    stats socket {self.tcp_address} level admin")
        lines += [
            f"    stats socket {self.level_socket(lv)} mode 600 level {lv}" for lv in self.levels
        ]
        lines += [f"    {line}" for line in self.global_lines]
        lines += [
            "    stats timeout 30s",
            "    nbthread 1",
            "",
            "defaults",
            "    mode http",
            "    timeout connect 5s",
            "    timeout client 5s",
            "    timeout server 5s",
            "",
            "frontend tls",
            f"    bind 127.0.0.1:{self.port} ssl {keyword} {self.crt}",
            "    http-request return status 200 content-type text/plain string ok",
            "",
        ]
        return "\n".join(lines)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> HAProxy:
        """Start haproxy and wait until its admin socket answers."""
        if self._process is not None:
            raise RuntimeError("HAProxy is already running")
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if self.env is None else dict(self.env),
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _argv(self) -> list[str]:
        argv = [self.binary, "-db", "-f", str(self.config)]
        if self.master_socket is not None:
            options = f",{self.master_options}" if self.master_options else ""
            argv += ["-W", "-S", self.master_socket + options]
        return argv

    def _wait_until_ready(self, old_pid: int | None = None) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers() or (old_pid is not None and self.worker_pid() == old_pid):
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"haproxy exited with {self._process.returncode}:\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"haproxy did not answer within {_START_TIMEOUT}s:\n{self.output}"
                )
            time.sleep(0.01)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(self.socket)
                sock.sendall(b"show info\n")
                return b"Name: HAProxy" in _read_all(sock)
        except OSError:
            return False

    def worker_pid(self) -> int | None:
        """The pid of the worker that answers the admin socket (``show info``)."""
        try:
            info = self.command("show info")
        except OSError:
            return None
        for line in info.splitlines():
            if line.startswith("Pid: "):
                return int(line[5:])
        return None

    def reload(self) -> HAProxy:
        """``reload`` on the master CLI; returns once a new worker answers and the old
        one has exited."""
        if self.master_socket is None:
            raise RuntimeError("reload needs master=True")
        old_pid = self.worker_pid()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5.0)
            sock.connect(self.master_socket)
            sock.sendall(b"reload\n")
            with contextlib.suppress(OSError):
                _read_all(sock)
        self._wait_until_ready(old_pid)
        # The old worker finishes its connections and exits; until then it may still
        # accept TLS handshakes on the shared port.
        deadline = time.monotonic() + _START_TIMEOUT
        while old_pid is not None and time.monotonic() < deadline:
            try:
                os.kill(old_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop haproxy (SIGTERM, then SIGKILL) and remove its socket."""
        process, self._process = self._process, None
        stop_process(process, 5)
        Path(self.socket).unlink(missing_ok=True)
        if self.master_socket is not None:
            Path(self.master_socket).unlink(missing_ok=True)

    def restart(self) -> HAProxy:
        """A real restart: a new process that reads the certificates and ``.ocsp`` files again."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop haproxy and delete the temporary directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def output(self) -> str:
        """What haproxy printed so far (startup warnings, alerts)."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def command(self, line: str) -> str:
        """One non-interactive runtime API command; returns the reply (for test setup)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5.0)
            sock.connect(self.socket)
            sock.sendall(line.encode() + b"\n")
            return _read_all(sock).decode(errors="replace")

    def __enter__(self) -> HAProxy:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- a TLS 1.2 handshake that asks for a staple ------------------------------------------

_HANDSHAKE = 22
_ALERT = 21
_SERVER_HELLO_DONE = 14
_CERTIFICATE_STATUS = 22
_OCSP_STATUS_TYPE = 1

_CIPHERS = (
    0xC02B, 0xC02F, 0xC02C, 0xC030,  # ECDHE-{ECDSA,RSA}-AES-GCM
    0xCCA9, 0xCCA8,  # ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305
    0xC009, 0xC013, 0xC00A, 0xC014,  # ECDHE-{ECDSA,RSA}-AES-CBC-SHA
    0x009C, 0x009D, 0x002F, 0x0035,  # RSA key exchange
)  # fmt: skip
_SIGNATURE_SCHEMES = (0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601)
_GROUPS = (0x001D, 0x0017, 0x0018)  # x25519, secp256r1, secp384r1


def tls_staple(port: int, servername: str, *, host: str = "127.0.0.1") -> bytes | None:
    """The OCSP response (DER) a TLS server staples for ``servername``, or None.

    Sends a TLS 1.2 ClientHello with ``status_request`` and reads the server's flight up
    to ServerHelloDone. In TLS 1.2 the CertificateStatus message travels in clear, so no
    cryptography is needed and the bytes are exactly what the server sent.
    """
    with socket.create_connection((host, port), timeout=5.0) as sock:
        sock.sendall(_record(_HANDSHAKE, _handshake(1, _client_hello(servername))))
        for msg_type, body in _server_messages(sock):
            if msg_type == _CERTIFICATE_STATUS and body[0] == _OCSP_STATUS_TYPE:
                length = int.from_bytes(body[1:4], "big")
                return body[4 : 4 + length]
            if msg_type == _SERVER_HELLO_DONE:
                return None
    raise AssertionError("unreachable")  # pragma: no cover - the generator never ends


def _client_hello(servername: str) -> bytes:
    name = servername.encode("ascii")
    extensions = b"".join(
        [
            _extension(0x0000, _vector(b"\x00" + _vector(name, 2), 2)),  # server_name
            _extension(0x0005, b"\x01\x00\x00\x00\x00"),  # status_request: ocsp, no ids/exts
            _extension(0x000A, _vector(_u16s(_GROUPS), 2)),  # supported_groups
            _extension(0x000B, b"\x01\x00"),  # ec_point_formats: uncompressed
            _extension(0x000D, _vector(_u16s(_SIGNATURE_SCHEMES), 2)),  # signature_algorithms
            _extension(0x0017, b""),  # extended_master_secret
            _extension(0xFF01, b"\x00"),  # renegotiation_info
        ]
    )
    return b"".join(
        [
            b"\x03\x03",  # TLS 1.2, and no supported_versions extension: no TLS 1.3
            os.urandom(32),
            b"\x00",  # no session id
            _vector(_u16s(_CIPHERS), 2),
            b"\x01\x00",  # null compression
            _vector(extensions, 2),
        ]
    )


def _server_messages(sock: socket.socket) -> Iterator[tuple[int, bytes]]:
    """The server's handshake messages as (type, body), reassembled across records."""
    buffer = b""
    while True:
        while len(buffer) < 4 or len(buffer) < 4 + _u24(buffer[1:4]):
            content_type, _version, length = struct.unpack("!BHH", _read_exactly(sock, 5))
            fragment = _read_exactly(sock, length)
            if content_type == _ALERT:
                raise ConnectionError(f"the TLS server sent alert {fragment.hex()}")
            if content_type != _HANDSHAKE:
                raise ConnectionError(f"unexpected TLS record type {content_type}")
            buffer += fragment
        length = _u24(buffer[1:4])
        yield buffer[0], buffer[4 : 4 + length]
        buffer = buffer[4 + length :]


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the TLS server closed the connection during the handshake")
        data += chunk
    return data


def _record(content_type: int, payload: bytes) -> bytes:
    return struct.pack("!BHH", content_type, 0x0301, len(payload)) + payload


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def _extension(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def _vector(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _u16s(values: tuple[int, ...]) -> bytes:
    return b"".join(struct.pack("!H", value) for value in values)


def _u24(data: bytes) -> int:
    return int.from_bytes(data, "big")
