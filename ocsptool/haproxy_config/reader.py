"""Read a HAProxy configuration the way HAProxy 2.6 to 3.4 does, for what ocsptool needs.

Sections start at their keyword wherever it is indented. Read:

- ``global``: ``crt-base``, ``key-base`` (3.0+), ``ssl-load-extra-files`` (which of
  ``<crt>.key``/``.ocsp``/``.issuer``/``.sctl`` and bundles HAProxy looks for),
  ``ssl-load-extra-del-ext`` (``x.crt`` -> ``x.ocsp``), ``issuers-chain-path``,
  ``default-path`` (what relative paths are relative to), ``ocsp-update.mode`` (3.0+),
  ``stats socket``, ``unix-bind prefix``, ``setenv``/``presetenv``/``unsetenv``/``resetenv``;
- ``crt-store`` (3.0+): ``crt-base``, ``key-base``, ``load`` and every option of it;
- ``bind`` in ``frontend``, ``listen``, ``peers`` (and its ``default-bind``) and
  ``log-forward``: ``crt``, ``default-crt`` (3.0+), ``crt-list``, every other option
  known by its number of arguments (``keywords.BIND_OPTIONS``);
- ``ssl-f-use`` (3.2+) in ``frontend`` and ``listen``, loaded when the section ends.

Everything else is HAProxy's business and is passed over silently (``server ... crt`` is a
client certificate: HAProxy never staples it, so ocsptool never writes one for it). A
line that matters but cannot be understood gives one warning ``file:line: ...``; what
would stop HAProxy from starting is a problem ``file:line: ...``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ocsptool.haproxy_config.crt import Expansion, expand_crt
from ocsptool.haproxy_config.crtlist import CrtListLine, parse_cert_options, parse_crt_list
from ocsptool.haproxy_config.files import (
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    FileReadError,
    read_text,
    shown,
)
from ocsptool.haproxy_config.keywords import (
    ALL_EXTRA_FILES,
    BIND_OPTIONS,
    CERT_OPTIONS,
    EXTRA_FILES,
)
from ocsptool.haproxy_config.model import LoadedCert, Socket, SocketLevel
from ocsptool.haproxy_config.sockets import AddressError, parse_level, socket_address
from ocsptool.haproxy_config.words import WordError, split_words
from ocsptool.trust import Steering

SECTIONS = frozenset(
    (
        "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers",
        "userlist", "mailers", "program", "http-errors", "ring", "cache", "crt-store",
        "log-forward", "fcgi-app", "traces", "acme", "dynamic-update",
    )
)  # fmt: skip
#: Sections whose ``bind`` lines serve TLS with their ``crt`` (HAProxy reads the staples
#: of all of them; checked with each binary).
_BIND_SECTIONS = frozenset(("frontend", "listen", "peers", "log-forward"))
_PROXIES = frozenset(("frontend", "listen"))
_DEFAULT_PATHS = frozenset(("current", "config", "parent", "origin"))
#: What an untrusted crt-list is called, and what it costs (``trust.Steering``).
UNTRUSTED_LIST = ("crt-list", "its certificates are not stapled")


@dataclass(frozen=True, slots=True)
class _StoreEntry:
    cert_file: str
    key_file: str | None
    ocsp: str | None
    issuer: str | None
    ocsp_update: bool | None
    generated: bool
    origin: str


@dataclass(frozen=True, slots=True)
class _Files:
    """What a crt-list line or ``ssl-f-use`` says beyond the certificate's name."""

    kind: str  # "crt-list" or "ssl-f-use"
    ocsp_update: bool | None
    files: tuple[tuple[str, str], ...]
    generated: bool = False


class ConfigReader:
    """One instance's configuration files, read in order; results in the attributes."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.crt_base: str | None = None
        self.key_base: str | None = None
        self.unix_prefix: str | None = None
        #: ``ssl-load-extra-files``: the siblings HAProxy looks for, and its line.
        self.extra_files = ALL_EXTRA_FILES
        self.extra_origin: str | None = None
        #: ``ssl-load-extra-del-ext``: its line (None: not set).
        self.del_ext: str | None = None
        self.issuers_dir: str | None = None
        self.ocsp_update_default = False
        #: HAProxy's working directory for relative paths (``default-path``); None: the
        #: directory it was started in, taken as ours.
        self.cwd: str | None = None
        self._default_path: tuple[str, str | None] = ("current", None)
        self.certs: dict[str, LoadedCert] = {}
        self.sockets: list[Socket] = []
        self.warnings: list[str] = []
        self.problems: list[str] = []
        #: Paths this user may not look at (permission denied), not problems of HAProxy's.
        self.denied: list[str] = []
        self._stores: dict[str, _StoreEntry] = {}
        self._crt_lists: dict[str, tuple[list[CrtListLine], str | None]] = {}
        self._expansions: dict[tuple[str, bool], Expansion] = {}
        self._store_name: str | None = None
        self._store_crt_base: str | None = None
        self._store_key_base: str | None = None
        self._store_loaded = False
        self._f_use: list[tuple[str, list[str]]] = []
        self._conditional_warned = False
        #: Which files may steer this run (configurations, crt-lists): ``trust``.
        self.steering = Steering()

    @property
    def crt_lists_read(self) -> tuple[str, ...]:
        """Every crt-list it read or tried to, in order."""
        return tuple(self._crt_lists)

    # -- files and lines --------------------------------------------------------------

    def read(self, name: str, text: str) -> None:
        self.cwd = self._cwd_for(name)
        section: str | None = None
        for number, line in enumerate(text.split("\n"), 1):
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            origin = f"{name}:{number}"
            if len(line) > MAX_LINE_CHARS:
                self.warnings.append(f"{origin}: line longer than {MAX_LINE_CHARS}, skipped")
                continue
            if "\0" in line:
                self.warnings.append(f"{origin}: NUL character, line skipped")
                continue
            try:
                words = split_words(line, self.env)
            except WordError as exc:
                self.warnings.append(f"{origin}: {exc}, line skipped")
                continue
            if not words:
                continue
            keyword = words[0]
            if keyword in SECTIONS:
                self._end_section()
                section = keyword
                if keyword == "crt-store":
                    self._start_store(words, origin)
                continue
            if keyword.startswith("."):
                self._directive(words, origin)
            elif section == "global":
                self._global(words, origin)
            elif section == "crt-store":
                self._crt_store(words, origin)
            elif section in _BIND_SECTIONS:
                self._proxy_line(section, words, origin)
        self._end_section()

    def _end_section(self) -> None:
        """HAProxy loads a section's ``ssl-f-use`` certificates when it ends, last first."""
        pending, self._f_use = self._f_use, []
        for origin, words in reversed(pending):
            self._ssl_f_use(words, origin)

    def _directive(self, words: list[str], origin: str) -> None:
        if words[0] in (".if", ".elif", ".else") and not self._conditional_warned:
            self._conditional_warned = True
            self.warnings.append(
                f"{origin}: '{words[0]}' blocks are not evaluated; every branch is read"
            )

    def _proxy_line(self, section: str, words: list[str], origin: str) -> None:
        keyword = words[0]
        if keyword == "bind":
            self._bind(words[2:], origin)  # words[1] is the address
        elif keyword == "default-bind" and section == "peers":
            self._bind(words[1:], origin)
        elif keyword == "ssl-f-use" and section in _PROXIES:
            self._f_use.append((origin, words[1:]))

    # -- paths ------------------------------------------------------------------------

    def _cwd_for(self, config: str) -> str | None:
        """HAProxy's directory for relative paths while it reads ``config``."""
        mode, origin = self._default_path
        if mode == "origin":
            return origin
        if mode == "current":
            return None
        directory = config.rpartition("/")[0] if "/" in config else ""
        if mode == "config":
            return directory or None
        return f"{directory}/.." if directory else ".."

    def _at(self, path: str) -> str:
        """Where HAProxy finds ``path``: relative paths under ``default-path``."""
        cwd = self.cwd
        if cwd is None or path[:1] == "/":
            return path
        return f"{cwd}/{path}"

    # -- global -----------------------------------------------------------------------

    def _global(self, words: list[str], origin: str) -> None:
        keyword, args = words[0], words[1:]
        if keyword == "crt-base" and args:
            self.crt_base = args[0]
        elif keyword == "key-base" and args:
            self.key_base = args[0]
        elif keyword == "stats" and args[:1] == ["socket"]:
            self._stats_socket(args[1:], origin)
        elif keyword == "ocsp-update.mode" and args:
            self._ocsp_update_mode(args[0], origin)
        elif keyword == "ssl-load-extra-files":
            self._extra_files(args, origin)
        elif keyword == "ssl-load-extra-del-ext":
            self.del_ext = origin
        elif keyword == "issuers-chain-path":
            self._issuers_chain_path(args, origin)
        elif keyword == "default-path":
            self._default_path_line(args, origin)
        elif keyword == "unix-bind" and args[:1] == ["prefix"] and len(args) > 1:
            self.unix_prefix = args[1]
        elif keyword == "setenv" and len(args) >= 2:
            self.env[args[0]] = args[1]
        elif keyword == "presetenv" and len(args) >= 2:
            self.env.setdefault(args[0], args[1])
        elif keyword == "unsetenv":
            for name in args:
                self.env.pop(name, None)
        elif keyword == "resetenv":
            self.env = {name: self.env[name] for name in args if name in self.env}

    def _ocsp_update_mode(self, value: str, origin: str) -> None:
        if value not in ("on", "off"):
            self.warnings.append(f"{origin}: 'ocsp-update.mode {shown(value)}': expected on or off")
        else:
            self.ocsp_update_default = value == "on"

    def _extra_files(self, args: list[str], origin: str) -> None:
        """``ssl-load-extra-files``: words OR'ed; ``none`` and ``all`` only alone."""
        unknown = [a for a in args if a not in EXTRA_FILES]
        if unknown or not args:
            self.problems.append(
                f"{origin}: ssl-load-extra-files: unknown '{shown(' '.join(unknown))}' "
                "(HAProxy refuses to start)"
            )
            return
        if len(args) > 1 and ("none" in args or "all" in args):
            self.problems.append(
                f"{origin}: ssl-load-extra-files: 'none' and 'all' can be only used alone "
                "(HAProxy refuses to start)"
            )
            return
        self.extra_files = ALL_EXTRA_FILES if args == ["all"] else frozenset(args) - {"none"}
        self.extra_origin = origin

    def _issuers_chain_path(self, args: list[str], origin: str) -> None:
        if len(args) != 1 or not args[0]:
            self.problems.append(
                f"{origin}: issuers-chain-path expects one directory (HAProxy refuses to start)"
            )
            return
        path = self._at(args[0].rstrip("/") or "/")
        if not os.path.isdir(path):
            self.problems.append(
                f"{origin}: issuers-chain-path '{path}' is not a directory "
                "(HAProxy refuses to start)"
            )
            return
        self.issuers_dir = path

    def _default_path_line(self, args: list[str], origin: str) -> None:
        mode = args[0] if args else ""
        if mode not in _DEFAULT_PATHS or (mode == "origin" and len(args) < 2):
            self.problems.append(
                f"{origin}: default-path: expected current, config, parent or origin <dir> "
                "(HAProxy refuses to start)"
            )
            return
        self._default_path = (mode, args[1] if mode == "origin" else None)
        self.cwd = self._cwd_for(origin.rpartition(":")[0])

    def _stats_socket(self, args: list[str], origin: str) -> None:
        if not args:
            self.warnings.append(f"{origin}: 'stats socket' without an address, skipped")
            return
        level = SocketLevel.OPERATOR
        try:
            address = socket_address(args[0], self.unix_prefix)
            for key, value in zip(args[1:], [*args[2:], ""], strict=False):
                if key == "level":
                    level = parse_level(value)
        except AddressError as exc:
            self.warnings.append(f"{origin}: stats socket skipped: {shown(str(exc), 160)}")
            return
        self.sockets.append(Socket(address, level, master=False, origin=origin))

    # -- crt-store --------------------------------------------------------------------

    def _start_store(self, words: list[str], origin: str) -> None:
        """A crt-store starts with the global crt-base and key-base (HAProxy copies them)."""
        self._store_name = words[1] if len(words) > 1 else ""
        self._store_crt_base, self._store_key_base = self.crt_base, self.key_base
        self._store_loaded = False
        if len(words) > 2:
            self.problems.append(
                f"{origin}: 'crt-store' takes only a name (HAProxy 3.0+ refuses to start)"
            )

    def _crt_store(self, words: list[str], origin: str) -> None:
        keyword, args = words[0], words[1:]
        if keyword in ("crt-base", "key-base"):
            if not args:
                self.warnings.append(f"{origin}: crt-store: '{keyword}' without a path, skipped")
            elif self._store_loaded:
                self.problems.append(
                    f"{origin}: crt-store: '{keyword}' after a load line "
                    "(HAProxy 3.0+ refuses to start)"
                )
            elif keyword == "crt-base":
                self._store_crt_base = args[0]
            else:
                self._store_key_base = args[0]
        elif keyword == "load":
            self._load(args, origin)
        else:
            self.warnings.append(
                f"{origin}: crt-store: unknown keyword '{shown(keyword)}' "
                "(HAProxy refuses to start), line skipped"
            )

    def _load(self, args: list[str], origin: str) -> None:
        options: dict[str, str] = {}
        for key, value in zip(args[::2], args[1::2], strict=False):
            if key not in CERT_OPTIONS:
                self.warnings.append(
                    f"{origin}: load: unknown keyword '{shown(key)}' "
                    "(HAProxy refuses to start), line skipped"
                )
                return
            options[key] = value
        if len(args) % 2 or "crt" not in options:
            self.warnings.append(
                f"{origin}: load: expected 'crt <file>' and keyword/value pairs, line skipped"
            )
            return
        for flag in ("ocsp-update", "generate-dummy"):
            if options.get(flag, "on") not in ("on", "off"):
                self.warnings.append(
                    f"{origin}: load: '{flag} {shown(options[flag])}': "
                    "expected on or off, line skipped"
                )
                return
        self._store_loaded = True
        crt, alias, store = options["crt"], options.get("alias"), self._store_name or ""
        if alias is not None:
            key = f"@{store}/{alias}"
        elif self._store_name:
            key = f"@{store}{'' if crt.startswith('/') else '/'}{crt}"
        else:
            key = _join(self.crt_base, crt)  # an unnamed store: the global crt-base
        crt_base, key_base = self._store_crt_base, self._store_key_base
        update = options.get("ocsp-update")
        entry = _StoreEntry(
            cert_file=self._at(_join(crt_base, crt)),
            key_file=self._at(_join(key_base, options["key"])) if "key" in options else None,
            ocsp=self._at(_join(crt_base, options["ocsp"])) if "ocsp" in options else None,
            issuer=self._at(_join(crt_base, options["issuer"])) if "issuer" in options else None,
            ocsp_update=None if update is None else update == "on",
            generated=options.get("generate-dummy") == "on",
            origin=origin,
        )
        if key in self._stores:
            self.problems.append(
                f"{origin}: crt-store: '{key}' was already defined at "
                f"{self._stores[key].origin} (HAProxy 3.0+ refuses to start)"
            )
            return
        self._missing_files(entry, options, crt_base, origin)
        self._stores[key] = entry

    def _missing_files(
        self, entry: _StoreEntry, options: dict[str, str], crt_base: str | None, origin: str
    ) -> None:
        """HAProxy reads every file a load line names at once; a missing one stops it. The
        ``ocsp`` file is not checked: ocsptool writes it (and then HAProxy can start)."""
        named = [entry.cert_file] if not entry.generated and "acme" not in options else []
        named += [f for f in (entry.key_file, entry.issuer) if f]
        if "sctl" in options:
            named.append(self._at(_join(crt_base, options["sctl"])))
        for path in named:
            if not os.path.isfile(path):
                self.problems.append(
                    f"{origin}: crt-store (HAProxy 3.0+): '{path}' cannot be read "
                    "(HAProxy refuses to start)"
                )

    # -- bind lines and ssl-f-use ------------------------------------------------------

    def _bind(self, options: list[str], origin: str) -> None:
        """A bind line's options after its address; ``crt`` loads at once, in order."""
        i, end = 0, len(options)
        while i < end:
            keyword = options[i]
            arity = BIND_OPTIONS.get(keyword)
            if arity is None:
                self.warnings.append(
                    f"{origin}: bind: unknown keyword '{shown(keyword)}' (HAProxy 2.6 to 3.4 "
                    "refuse it); the rest of the line is not read"
                )
                return
            if arity and i + 1 >= end:
                if keyword in ("crt", "default-crt", "crt-list"):
                    self.warnings.append(f"{origin}: '{keyword}' without a file, skipped")
                return
            if keyword in {"crt", "default-crt"}:
                self._crt(options[i + 1], origin)
            elif keyword == "crt-list":
                self._crt_list(options[i + 1], origin)
            i += 1 + arity

    def _ssl_f_use(self, args: list[str], origin: str) -> None:
        parsed = parse_cert_options(args)
        if isinstance(parsed, str):
            self.warnings.append(f"{origin}: ssl-f-use (HAProxy 3.2+): {parsed}, line skipped")
            return
        if parsed.crt is None:
            self.warnings.append(f"{origin}: ssl-f-use (HAProxy 3.2+) without 'crt', skipped")
            return
        files = _Files("ssl-f-use", parsed.ocsp_update, parsed.files, parsed.generated)
        self._crt(parsed.crt, origin, (), files)

    def _crt(
        self,
        crt: str,
        origin: str,
        snis: tuple[str, ...] = (),
        given: _Files | None = None,
    ) -> None:
        path = crt if crt[:1] in ("/", "@") else _join(self.crt_base, crt)
        store = self._stores.get(path) if self._stores else None
        if store is not None:
            self._from_store(path, store, origin, snis, given)
            return
        if path[:1] == "@":
            self.problems.append(f"{origin}: '{path}' is not in any crt-store defined before it")
            return
        if given is not None and given.generated:
            made = ("generate-dummy", origin)
            self._add(LoadedCert(path, path, None, None, None, False, snis, origin, made))
            return
        names = self._loads(path, given is not None, origin)
        if given is not None and given.files:
            self._named_files(names, path, origin, snis, given)
            return
        update = self.ocsp_update_default
        if given is not None and given.ocsp_update is not None:
            update = given.ocsp_update
        if self.cwd is None and self.del_ext is None and self.extra_files is ALL_EXTRA_FILES:
            for name in names:  # the usual case, 100,000 times in a large crt-list
                self._add(
                    LoadedCert(
                        name, name, None, f"{name}.ocsp", f"{name}.issuer", update, snis, origin
                    )
                )
            return
        for name in names:
            self._add(self._autodetected(name, update, snis, origin))

    def _autodetected(
        self, name: str, update: bool, snis: tuple[str, ...], origin: str
    ) -> LoadedCert:
        """HAProxy's siblings of ``name``: ``.ocsp`` and ``.issuer`` per
        ``ssl-load-extra-files``, ``x.crt`` -> ``x.*`` with ``ssl-load-extra-del-ext``."""
        cert_file = self._at(name)
        base, key, source = cert_file, None, None
        if self.del_ext is not None and name.endswith(".crt"):
            base = cert_file[:-4]
            key, source = f"{base}.key", ("ssl-load-extra-del-ext", self.del_ext)
        extra = self.extra_files
        if "ocsp" in extra:
            staple: str | None = f"{base}.ocsp"
            issuer = f"{base}.issuer" if "issuer" in extra else None
        else:
            staple = issuer = None
            source = ("ssl-load-extra-files", self.extra_origin or "")
        return LoadedCert(name, cert_file, key, staple, issuer, update, snis, origin, source)

    def _named_files(
        self,
        names: tuple[str, ...],
        path: str,
        origin: str,
        snis: tuple[str, ...],
        given: _Files,
    ) -> None:
        """A crt-list line or ssl-f-use naming key/ocsp/issuer/sctl (3.0+/3.2+): exactly
        those files, relative to HAProxy's working directory, and no lookup of siblings."""
        if len(names) != 1 or names[0] != path:
            if names:
                self.problems.append(
                    f"{origin}: '{path}' is a multi-cert bundle: HAProxy 3.0+ refuses "
                    f"{'/'.join(k for k, _ in given.files)} with it"
                )
            return
        files = dict(given.files)
        for keyword in ("key", "issuer", "sctl"):
            if keyword in files and not os.path.isfile(self._at(files[keyword])):
                self.problems.append(
                    f"{origin}: {given.kind} {keyword}: '{self._at(files[keyword])}' cannot "
                    "be read (HAProxy refuses to start)"
                )
        staple = self._at(files["ocsp"]) if "ocsp" in files else None
        first = "ocsp" if staple else next(iter(files))
        update = self.ocsp_update_default if given.ocsp_update is None else given.ocsp_update
        self._add(
            LoadedCert(
                name=path,
                cert_file=self._at(path),
                key_file=self._at(files["key"]) if "key" in files else None,
                staple_path=staple,
                issuer_path=self._at(files["issuer"]) if "issuer" in files and staple else None,
                ocsp_update=update,
                snis=snis,
                origin=origin,
                staple_from=(f"{given.kind} {first}", origin),
            )
        )

    def _from_store(
        self,
        name: str,
        store: _StoreEntry,
        origin: str,
        snis: tuple[str, ...],
        given: _Files | None,
    ) -> None:
        """A crt-store entry: only the files its load line names, never ``<crt>.ocsp``."""
        update = given.ocsp_update if given is not None else None
        if store.generated:
            source = ("generate-dummy", store.origin)
        else:
            source = ("crt-store load ocsp" if store.ocsp else "crt-store load", store.origin)
        self._add(
            LoadedCert(
                name=name,
                cert_file=store.cert_file,
                key_file=store.key_file,
                staple_path=None if store.generated else store.ocsp,
                issuer_path=store.issuer if store.ocsp else None,
                ocsp_update=_first(update, store.ocsp_update, self.ocsp_update_default),
                snis=snis,
                origin=origin,
                staple_from=source,
            )
        )

    def _loads(self, path: str, in_list: bool, origin: str) -> tuple[str, ...]:
        """The names ``path`` loads: a file itself (the fast path), else ``expand_crt``."""
        at = path if self.cwd is None else self._at(path)
        try:
            if not stat.S_ISDIR(os.stat(at).st_mode):
                return (path,)
        except (OSError, ValueError):
            pass
        cached = (at, in_list)
        expansion = self._expansions.get(cached)
        if expansion is None:
            bundles = "bundle" in self.extra_files
            expansion = expand_crt(at, bundles=bundles, directories=not in_list)
            if at is not path:  # names as HAProxy spells them: relative to default-path
                cut = len(at) - len(path)
                expansion = replace(expansion, names=tuple(n[cut:] for n in expansion.names))
            self._expansions[cached] = expansion
        if expansion.denied:
            self.denied.append(path)
        elif expansion.problem:
            self.problems.append(f"{origin}: {expansion.problem}")
        return expansion.names

    def _crt_list(self, path: str, origin: str) -> None:
        at = self._at(path)
        if at in self._crt_lists:  # the same certificates again: nothing new to learn
            if self._crt_lists[at][1]:
                self.problems.append(
                    f"{origin}: cannot open crt-list '{at}': {self._crt_lists[at][1]}"
                )
            return
        if at not in self._crt_lists:
            try:
                text = read_text(at, MAX_FILE_BYTES)
            except FileReadError as exc:
                self._crt_lists[at] = [], str(exc)
            else:
                if (untrusted := self.steering.problem(at, *UNTRUSTED_LIST)) is not None:
                    self._crt_lists[at] = [], None
                    self.problems.append(untrusted)
                    return
                entries, warnings = parse_crt_list(text, at)
                self._crt_lists[at] = entries, None
                self.warnings.extend(warnings)
        entries, error = self._crt_lists[at]
        if error:
            self.problems.append(f"{origin}: cannot open crt-list '{at}': {error}")
            return
        options: dict[tuple[bool | None, tuple[tuple[str, str], ...], bool], _Files] = {}
        for entry in entries:
            where = f"{at}:{entry.line}"
            if entry.files or entry.ocsp_update is not None or entry.generated:
                said = (entry.ocsp_update, entry.files, entry.generated)
                files = options.get(said)
                if files is None:
                    files = options[said] = _Files("crt-list", *said)
                self._crt(entry.crt, where, entry.snis, files)
            else:
                self._crt(entry.crt, where, entry.snis, _PLAIN)

    def _add(self, cert: LoadedCert) -> None:
        known = self.certs.get(cert.name)
        if known is None:
            self.certs[cert.name] = cert
            return
        if known.ocsp_update != cert.ocsp_update:
            self.warnings.append(
                f"{cert.origin}: '{cert.name}' was loaded at {known.origin} with another "
                "ocsp-update; HAProxy 2.8 keeps the first, 3.0+ refuse to start"
            )
        elif (known.staple_path, known.key_file) != (cert.staple_path, cert.key_file):
            self.warnings.append(
                f"{cert.origin}: '{cert.name}' was loaded at {known.origin} with other "
                "files; HAProxy keeps the first (3.0+ refuse to start)"
            )
        snis = known.snis + tuple(s for s in cert.snis if s not in known.snis)
        if snis != known.snis:
            self.certs[cert.name] = replace(known, snis=snis)


#: A crt-list line without options: a list entry (no directories), HAProxy's siblings.
_PLAIN = _Files("crt-list", None, ())


def _join(base: str | None, path: str) -> str:
    """HAProxy's ``<base>/<path>`` for a relative path (no normalisation: ``a//b`` stays)."""
    if base and not path.startswith("/"):
        return f"{base}/{path}"
    return path


def _first(*values: bool | None) -> bool:
    return next((v for v in values if v is not None), False)
