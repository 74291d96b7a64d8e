"""Read an nginx configuration as nginx does, for what ocsptool needs.

``read_nginx_config(path)`` follows ``include`` (globs, relative paths) into every
context and reads: ``pid`` and ``error_log`` (main), ``http``'s ``server`` blocks with
``listen``, ``server_name``, ``ssl_certificate`` (several per block, paired with the
``ssl_certificate_key`` at the same position), ``ssl_stapling``, ``ssl_stapling_file``,
``ssl_trusted_certificate`` and ``ssl`` (before 1.25.1), each inherited from ``http``
when the block does not set it (nginx merges after reading all of ``http``, so a line
after the blocks counts too). ``stream`` and ``mail`` have no stapling and are passed
over; so is every other directive.

Paths as nginx resolves them (``ngx_conf_full_name``, checked with ``nginx -t -c FILE
-p PREFIX`` on 1.22.1): ``include``, certificates, keys, staple files and trusted
certificates relative to the directory of the main configuration; ``pid`` and
``error_log`` relative to the prefix (``-p``, else the build's ``--prefix``).

Bounded work: at most ``MAX_FILES`` files, ``MAX_FILE_BYTES`` each and ``MAX_DEPTH``
nested blocks and includes; an include loop is reported, not followed.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ocsptool.files import read_text
from ocsptool.nginx.errors import NginxConfigError
from ocsptool.nginx.model import Certificate, Listen, NginxConfig, ServerBlock
from ocsptool.nginx.stapling import findings, staple_files
from ocsptool.nginx.tokens import End, Statement, statements
from ocsptool.printable import shown, shown_lines
from ocsptool.trust import Steering

#: Debian's nginx (``nginx -V``): ``--conf-path``, ``--prefix`` and ``--pid-path``.
DEFAULT_CONFIG = Path("/etc/nginx/nginx.conf")
DEFAULT_PREFIX = "/usr/share/nginx/"
DEFAULT_PID = "/run/nginx.pid"

#: A site per file is common (sites-enabled): 100,000 sites, as many as HAProxy's crt-lists.
MAX_FILES = 100_000
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

#: The directives read inside ``http`` and its ``server`` blocks (and nowhere else).
_SSL_DIRECTIVES = frozenset(
    (
        "ssl_certificate", "ssl_certificate_key", "ssl_stapling", "ssl_stapling_file",
        "ssl_trusted_certificate", "ssl",
    )
)  # fmt: skip
_NOT_FILES = ("stderr", "syslog:", "memory:")
#: What an untrusted configuration or include is called, and what it costs (``trust``).
UNTRUSTED_CONFIG = ("nginx configuration", "nothing it staples from a file is kept")
UNTRUSTED_INCLUDE = ("nginx include", "what it configures is not read")


class Context(Enum):
    MAIN = "main"
    HTTP = "http"
    SERVER = "server"
    LOCATION = "location"  # any block inside an http server block
    OTHER = "other"  # events, stream, mail, upstream, map, types...


@dataclass
class _Scope:
    """The ssl directives one ``http`` or ``server`` sets: (value, origin) or None."""

    certs: list[tuple[str, str]] | None = None
    keys: list[tuple[str, str]] | None = None
    stapling: tuple[bool, str] | None = None
    stapling_file: tuple[str, str] | None = None
    trusted: tuple[str, str] | None = None
    ssl: tuple[bool, str] | None = None


@dataclass
class _Server:
    origin: str
    scope: _Scope = field(default_factory=_Scope)
    names: list[str] = field(default_factory=list)
    listens: list[tuple[str, int | None, bool, bool, str]] = field(default_factory=list)


@dataclass
class _Frame:
    context: Context
    server: _Server | None


def read_nginx_config(
    path: Path = DEFAULT_CONFIG,
    *,
    prefix: Path | str | None = None,
    default_pid: str = DEFAULT_PID,
) -> NginxConfig:
    """What the nginx started with ``-c path [-p prefix]`` loads, serves and staples.

    ``path`` is taken from the current directory (as a command-line argument is).
    ``prefix`` is nginx's ``-p`` (default: Debian's ``/usr/share/nginx``); ``default_pid``
    the build's ``--pid-path``, used when no ``pid`` line is given. Raises
    ``NginxConfigError`` when ``path`` itself cannot be read; everything else is a
    warning or a problem in the result.
    """
    main = os.path.abspath(path)
    reader = _Reader(_with_slash(str(prefix or DEFAULT_PREFIX)), os.path.dirname(main) + "/")
    try:
        text = read_text(main, MAX_FILE_BYTES)
    except OSError as exc:
        raise NginxConfigError(
            f"{_shown(main)}: cannot read the nginx configuration: {_cause(exc)}"
        ) from None
    if (untrusted := reader.steering.problem(main, *UNTRUSTED_CONFIG)) is not None:
        reader.untrusted.append(main)
        reader.problems.append(untrusted)
    else:
        reader.parse_file(main, text, _Frame(Context.MAIN, None), ())
    servers = reader.server_blocks()
    found = findings(servers)
    pid = reader.pid[0] if reader.pid else default_pid
    return NginxConfig(
        path=Path(main),
        prefix=reader.prefix,
        conf_prefix=reader.conf_prefix,
        pid_path=_full(pid, reader.prefix),
        error_logs=tuple(reader.error_logs),
        servers=servers,
        staple_files=staple_files(servers),
        warnings=shown_lines([*reader.warnings, *found.warnings]),
        problems=shown_lines([*reader.problems, *found.problems]),
        inputs=tuple(reader.inputs),
        untrusted=tuple(reader.untrusted),
    )


class _Reader:
    def __init__(self, prefix: str, conf_prefix: str) -> None:
        self.prefix = prefix
        self.conf_prefix = conf_prefix
        self.http = _Scope()
        self.http_seen = False
        self.servers: list[_Server] = []
        self.pid: tuple[str, str] | None = None
        self.error_logs: list[str] = []
        self.warnings: list[str] = []
        self.problems: list[str] = []
        self.inputs: dict[str, None] = {}
        self.files = 0
        self.too_many_reported = False
        #: Which files may steer this run, and the ones that may not (``trust``).
        self.steering = Steering()
        self.untrusted: list[str] = []

    # -- files ----------------------------------------------------------------------

    def parse_file(self, name: str, text: str, frame: _Frame, chain: tuple[str, ...]) -> None:
        """One file's statements in ``frame``'s context (an included file adds to the
        block that includes it, and must close the blocks it opens)."""
        self.files += 1
        self.inputs[name] = None
        found, error = statements(text)
        stack: list[_Frame] = []
        for statement in found:
            origin = f"{name}:{statement.line}"
            current = stack[-1] if stack else frame
            if statement.end is End.CLOSE:
                if not stack:
                    self.problems.append(f'{origin}: unexpected "}}"')
                    return
                self._close(stack.pop())
            elif statement.end is End.BLOCK:
                if len(chain) + len(stack) >= MAX_DEPTH:
                    self.problems.append(f"{origin}: blocks and includes nested too deep")
                    return
                stack.append(self._open(statement, current, origin))
            else:
                self._directive(statement.words, current, origin, (*chain, name))
        if error is not None:
            self.problems.append(f"{name}:{error.line}: {error}")
        elif stack:
            self.problems.append(
                f'{name}:{text.count(chr(10)) + 1}: unexpected end of file, expecting "}}"'
            )

    def _include(self, word: str, frame: _Frame, origin: str, chain: tuple[str, ...]) -> None:
        pattern = _full(word, self.conf_prefix)
        if not any(c in pattern for c in "*?["):
            names = [pattern]
        else:
            self.inputs[os.path.dirname(pattern)] = None
            names = sorted(glob.glob(pattern), key=os.fsencode)
        if len(chain) >= MAX_DEPTH:
            self.problems.append(f"{origin}: includes nested too deep")
            return
        for name in names:
            if name in chain:
                self.problems.append(f"{origin}: include loop: {name} includes itself")
                continue
            if self.files >= MAX_FILES:
                if not self.too_many_reported:
                    self.too_many_reported = True
                    self.problems.append(
                        f"{origin}: more than {MAX_FILES} configuration files; the rest is not read"
                    )
                return
            try:
                text = read_text(name, MAX_FILE_BYTES)
            except OSError as exc:
                self.inputs[name] = None
                self.problems.append(f"{origin}: cannot read the included {name}: {_cause(exc)}")
                continue
            if (untrusted := self.steering.problem(name, *UNTRUSTED_INCLUDE)) is not None:
                self.inputs[name] = None
                self.untrusted.append(name)
                self.problems.append(untrusted)
                continue
            self.parse_file(name, text, frame, chain)

    # -- blocks ---------------------------------------------------------------------

    def _open(self, statement: Statement, current: _Frame, origin: str) -> _Frame:
        keyword, args = statement.words[0], statement.words[1:]
        context = current.context
        if context is Context.MAIN and keyword == "http":
            if self.http_seen:
                self.problems.append(f'{origin}: "http" directive is duplicate')
                return _Frame(Context.OTHER, None)
            self.http_seen = True
            return _Frame(Context.HTTP, None)
        if context is Context.HTTP and keyword == "server":
            if args:
                self.problems.append(f'{origin}: invalid number of arguments in "server" directive')
            return _Frame(Context.SERVER, _Server(origin))
        if context in (Context.SERVER, Context.LOCATION):
            return _Frame(Context.LOCATION, current.server)
        return _Frame(Context.OTHER, None)

    def _close(self, frame: _Frame) -> None:
        """A server block counts once closed (one cut short by an error does not); it
        is merged with ``http`` once everything is read."""
        if frame.context is Context.SERVER:
            assert frame.server is not None
            self.servers.append(frame.server)

    def server_blocks(self) -> tuple[ServerBlock, ...]:
        ssl_addresses = {
            _address_key(address, port)
            for server in self.servers
            for address, port, ssl, _default, _origin in server.listens
            if ssl
        }
        return tuple(self._merge(server, ssl_addresses) for server in self.servers)

    def _merge(self, server: _Server, ssl_addresses: set[tuple[str, int | None]]) -> ServerBlock:
        own, http = server.scope, self.http
        certs = own.certs if own.certs is not None else http.certs
        keys = own.keys if own.keys is not None else http.keys
        stapling = own.stapling or http.stapling
        stapling_file = own.stapling_file or http.stapling_file
        trusted = own.trusted or http.trusted
        ssl_on = own.ssl or http.ssl
        block_ssl = bool(ssl_on and ssl_on[0])
        return ServerBlock(
            origin=server.origin,
            server_names=tuple(server.names),
            listens=tuple(
                Listen(
                    address,
                    port,
                    block_ssl or ssl or _address_key(address, port) in ssl_addresses,
                    default,
                    origin,
                )
                for address, port, ssl, default, origin in server.listens
            ),
            certificates=tuple(
                self._certificate(cert, keys[i] if keys and i < len(keys) else None)
                for i, cert in enumerate(certs or ())
            ),
            stapling=bool(stapling and stapling[0]),
            stapling_file=_full(stapling_file[0], self.conf_prefix) if stapling_file else None,
            stapling_file_origin=stapling_file[1] if stapling_file else None,
            trusted_certificate=_full(trusted[0], self.conf_prefix) if trusted else None,
            certificates_inherited=own.certs is None and certs is not None,
        )

    def _certificate(self, cert: tuple[str, str], key: tuple[str, str] | None) -> Certificate:
        path, origin = cert
        inline = path.startswith("data:")
        key_word = key[0] if key else None
        if key_word is not None and not key_word.startswith(("data:", "engine:")):
            key_word = _full(key_word, self.conf_prefix)
        return Certificate(
            path="data:…" if inline else _full(path, self.conf_prefix),
            key=key_word,
            origin=origin,
            variables="$" in path or (key is not None and "$" in key[0]),
            inline=inline,
        )

    # -- directives -----------------------------------------------------------------

    def _directive(
        self, words: tuple[str, ...], frame: _Frame, origin: str, chain: tuple[str, ...]
    ) -> None:
        keyword, args = words[0], words[1:]
        if keyword == "include":
            if self._arguments(keyword, args, origin, 1):
                self._include(args[0], frame, origin, chain)
            return
        context = frame.context
        if context is Context.MAIN:
            self._main(keyword, args, origin)
        elif context is Context.HTTP and keyword in _SSL_DIRECTIVES:
            self._ssl(self.http, keyword, args, origin)
        elif context is Context.SERVER:
            assert frame.server is not None
            self._server(frame.server, keyword, args, origin)
        elif keyword in _SSL_DIRECTIVES and context is Context.LOCATION:
            self.problems.append(f'{origin}: "{keyword}" directive is not allowed here')

    def _main(self, keyword: str, args: tuple[str, ...], origin: str) -> None:
        if keyword == "pid" and self._arguments(keyword, args, origin, 1):
            if self.pid is not None:
                self.problems.append(f'{origin}: "pid" directive is duplicate')
            else:
                self.pid = (args[0], origin)
        elif keyword == "error_log" and args:
            if not args[0].startswith(_NOT_FILES):
                self.error_logs.append(_full(args[0], self.prefix))
        elif keyword in _SSL_DIRECTIVES:
            self.problems.append(f'{origin}: "{keyword}" directive is not allowed here')

    def _server(self, server: _Server, keyword: str, args: tuple[str, ...], origin: str) -> None:
        if keyword in _SSL_DIRECTIVES:
            self._ssl(server.scope, keyword, args, origin)
        elif keyword == "server_name":
            server.names += [a if a.startswith("~") else a.lower() for a in args]
        elif keyword == "listen" and self._arguments(keyword, args, origin, None):
            listen = _listen(args, origin)
            if isinstance(listen, str):
                self.problems.append(listen)
            elif listen is not None:
                server.listens.append(listen)

    def _ssl(self, scope: _Scope, keyword: str, args: tuple[str, ...], origin: str) -> None:
        if not self._arguments(keyword, args, origin, 1):
            return
        value = args[0]
        if keyword == "ssl_certificate":
            scope.certs = [*(scope.certs or ()), (value, origin)]
        elif keyword == "ssl_certificate_key":
            scope.keys = [*(scope.keys or ()), (value, origin)]
        elif keyword in ("ssl_stapling", "ssl"):
            flag = _flag(keyword, value, origin)
            if isinstance(flag, str):
                self.problems.append(flag)
            elif self._single(scope, keyword, origin):
                setattr(scope, "stapling" if keyword == "ssl_stapling" else "ssl", (flag, origin))
        elif self._single(scope, keyword, origin):
            attribute = "stapling_file" if keyword == "ssl_stapling_file" else "trusted"
            setattr(scope, attribute, (value, origin))

    def _single(self, scope: _Scope, keyword: str, origin: str) -> bool:
        """False (and a problem) when ``keyword`` is set twice in one block, as nginx says."""
        attribute = {
            "ssl_stapling": "stapling",
            "ssl": "ssl",
            "ssl_stapling_file": "stapling_file",
            "ssl_trusted_certificate": "trusted",
        }[keyword]
        if getattr(scope, attribute) is None:
            return True
        self.problems.append(f'{origin}: "{keyword}" directive is duplicate')
        return False

    def _arguments(
        self, keyword: str, args: tuple[str, ...], origin: str, count: int | None
    ) -> bool:
        """``count`` arguments exactly (None: one or more); else a problem in nginx's words."""
        if (len(args) == count) if count is not None else bool(args):
            return True
        self.problems.append(f'{origin}: invalid number of arguments in "{keyword}" directive')
        return False


def _flag(keyword: str, value: str, origin: str) -> bool | str:
    lowered = value.lower()
    if lowered in ("on", "off"):
        return lowered == "on"
    return f'{origin}: invalid value "{value}" in "{keyword}" directive, it must be "on" or "off"'


def _listen(
    args: tuple[str, ...], origin: str
) -> tuple[str, int | None, bool, bool, str] | str | None:
    """(address, port, ssl, default_server, origin), a problem, or None for a QUIC
    (UDP) listen, which no TCP handshake reaches."""
    spec, options = args[0], args[1:]
    if "quic" in options:
        return None
    ssl = "ssl" in options
    default = "default_server" in options or "default" in options
    if spec.startswith("unix:"):
        return (spec, None, ssl, default, origin)
    if spec.startswith("["):
        close = spec.find("]")
        if close < 0:
            return f'{origin}: invalid host in "{spec}" of the "listen" directive'
        address, rest = spec[: close + 1].lower(), spec[close + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ("80" if not rest else "")
    elif spec.isdigit():
        address, port_text = "*", spec
    else:
        host, colon, port_text = spec.rpartition(":")
        address = host.lower() if colon else spec.lower()
        port_text = port_text if colon else "80"
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return f'{origin}: invalid port in "{spec}" of the "listen" directive'
    return (address, int(port_text), ssl, default, origin)


def _address_key(address: str, port: int | None) -> tuple[str, int | None]:
    return ("*" if address == "0.0.0.0" else address, port)  # noqa: S104


def _cause(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _full(name: str, prefix: str) -> str:
    """``name`` as nginx opens it: absolute as is, else joined to ``prefix``."""
    return name if name.startswith("/") else prefix + name


def _with_slash(prefix: str) -> str:
    return prefix if prefix.endswith("/") else prefix + "/"


def _shown(text: str, limit: int = 4000) -> str:
    return shown(text, limit)
