"""Read a HAProxy configuration the way HAProxy does, for what ocsptool needs.

Sections start at their keyword wherever it is indented. Read: ``global`` (``crt-base``,
``key-base``, ``stats socket``, ``ocsp-update.mode`` (3.0+), ``ssl-load-extra-files``,
``unix-bind prefix``, ``setenv``/``presetenv``/``unsetenv``/``resetenv``), ``crt-store``
(3.0+) and the ``bind`` lines of ``frontend`` and ``listen`` (``crt``, ``default-crt``,
``crt-list``). Everything else is HAProxy's business and is passed over silently; a line
that matters but cannot be understood gives one warning ``file:line: ...``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ocsptool.haproxy_config.crt import Expansion, expand_crt
from ocsptool.haproxy_config.crtlist import CrtListLine, parse_crt_list
from ocsptool.haproxy_config.files import MAX_LINE_CHARS, FileReadError, read_text, shown
from ocsptool.haproxy_config.model import LoadedCert, Socket, SocketLevel
from ocsptool.haproxy_config.sockets import AddressError, parse_level, socket_address
from ocsptool.haproxy_config.words import WordError, split_words

SECTIONS = frozenset(
    (
        "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers",
        "userlist", "mailers", "program", "http-errors", "ring", "cache", "crt-store",
        "log-forward", "fcgi-app", "traces", "acme", "dynamic-update",
    )
)  # fmt: skip
_BIND_SECTIONS = frozenset(("frontend", "listen"))
_CRT_KEYWORDS = frozenset(("crt", "default-crt"))
_EXTRA_FILES = frozenset(("none", "all", "bundle", "sctl", "ocsp", "issuer", "key"))
_STORE_KEYWORDS = frozenset(("crt", "key", "ocsp", "issuer", "sctl", "alias", "ocsp-update"))


@dataclass(frozen=True, slots=True)
class _StoreEntry:
    cert_file: str
    key_file: str | None
    ocsp: str | None
    issuer: str | None
    ocsp_update: bool | None
    origin: str


class ConfigReader:
    """One instance's configuration files, read in order; results in the attributes."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.crt_base: str | None = None
        self.key_base: str | None = None
        self.unix_prefix: str | None = None
        self.bundles = True
        self.ocsp_update_default = False
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
        self._conditional_warned = False

    @property
    def crt_lists_read(self) -> tuple[str, ...]:
        """Every crt-list it read or tried to, in order."""
        return tuple(self._crt_lists)

    # -- files and lines --------------------------------------------------------------

    def read(self, name: str, text: str) -> None:
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
                section = keyword
                if keyword == "crt-store":
                    self._store_name = words[1] if len(words) > 1 else None
                    self._store_crt_base = self._store_key_base = None
                continue
            if keyword.startswith("."):
                self._directive(words, origin)
            elif section == "global":
                self._global(words, origin)
            elif section == "crt-store":
                self._crt_store(words, origin)
            elif section in _BIND_SECTIONS and keyword == "bind":
                self._bind(words, origin)

    def _directive(self, words: list[str], origin: str) -> None:
        if words[0] in (".if", ".elif", ".else") and not self._conditional_warned:
            self._conditional_warned = True
            self.warnings.append(
                f"{origin}: '{words[0]}' blocks are not evaluated; every branch is read"
            )

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
        unknown = [a for a in args if a not in _EXTRA_FILES]
        if unknown or not args:
            self.warnings.append(
                f"{origin}: ssl-load-extra-files: unknown '{shown(' '.join(unknown))}'"
            )
            return
        self.bundles = "all" in args or "bundle" in args
        if "all" not in args and "ocsp" not in args:
            self.warnings.append(
                f"{origin}: ssl-load-extra-files leaves out 'ocsp': "
                "HAProxy does not read .ocsp files at start"
            )

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

    def _crt_store(self, words: list[str], origin: str) -> None:
        keyword, args = words[0], words[1:]
        if keyword == "crt-base" and args:
            self._store_crt_base = args[0]
        elif keyword == "key-base" and args:
            self._store_key_base = args[0]
        elif keyword == "load":
            self._load(args, origin)

    def _load(self, args: list[str], origin: str) -> None:
        options: dict[str, str] = {}
        for key, value in zip(args[::2], args[1::2], strict=False):
            if key not in _STORE_KEYWORDS:
                self.warnings.append(
                    f"{origin}: load: unknown keyword '{shown(key)}', line skipped"
                )
                return
            options[key] = value
        if len(args) % 2 or "crt" not in options:
            self.warnings.append(
                f"{origin}: load: expected 'crt <file>' and keyword/value pairs, line skipped"
            )
            return
        update = options.get("ocsp-update")
        if update not in (None, "on", "off"):
            self.warnings.append(
                f"{origin}: load: 'ocsp-update {shown(update or '')}': "
                "expected on or off, line skipped"
            )
            return
        crt = options["crt"]
        crt_base = self._store_crt_base or self.crt_base
        if self._store_name is not None:
            key = f"@{self._store_name}/{options.get('alias', crt)}"
        else:
            key = _join(self.crt_base, options.get("alias", crt))
        ocsp = options.get("ocsp")
        entry = _StoreEntry(
            cert_file=_join(crt_base, crt),
            key_file=_join(self._store_key_base or self.key_base, options["key"])
            if "key" in options
            else None,
            ocsp=_join(crt_base, ocsp) if ocsp else None,
            issuer=_join(crt_base, options["issuer"]) if "issuer" in options else None,
            ocsp_update=None if update is None else update == "on",
            origin=origin,
        )
        if entry.ocsp and not os.path.isfile(entry.ocsp):
            self.problems.append(
                f"{origin}: OCSP response file '{entry.ocsp}' does not exist "
                "(HAProxy refuses to start)"
            )
        self._stores[key] = entry

    # -- bind lines -------------------------------------------------------------------

    def _bind(self, words: list[str], origin: str) -> None:
        for keyword, value in zip(words, [*words[1:], None], strict=False):
            if keyword in _CRT_KEYWORDS or keyword == "crt-list":
                if value is None:
                    self.warnings.append(f"{origin}: '{keyword}' without a file, skipped")
                elif keyword == "crt-list":
                    self._crt_list(value, origin)
                else:
                    self._crt(value, origin, (), None, ())

    def _crt(
        self,
        crt: str,
        origin: str,
        snis: tuple[str, ...],
        ocsp_update: bool | None,
        files: tuple[tuple[str, str], ...],
        *,
        in_list: bool = False,
    ) -> None:
        path = crt if crt.startswith(("/", "@")) else _join(self.crt_base, crt)
        store = self._stores.get(path)
        if store is not None:
            self._add(
                LoadedCert(
                    name=path,
                    cert_file=store.cert_file,
                    key_file=store.key_file,
                    staple_path=store.ocsp or f"{store.cert_file}.ocsp",
                    issuer_path=store.issuer or f"{store.cert_file}.issuer",
                    ocsp_update=_first(ocsp_update, store.ocsp_update, self.ocsp_update_default),
                    snis=snis,
                    origin=origin,
                )
            )
            return
        if path.startswith("@"):
            self.problems.append(f"{origin}: '{path}' is not in any crt-store defined before it")
            return
        loaded = self._loads(path, in_list, origin)
        key = staple = issuer = None
        if files:
            given = dict(files)
            key = _join(self.key_base, given["key"]) if "key" in given else None
            staple = _join(self.crt_base, given["ocsp"]) if "ocsp" in given else None
            issuer = _join(self.crt_base, given["issuer"]) if "issuer" in given else None
        update = self.ocsp_update_default if ocsp_update is None else ocsp_update
        for name in loaded:
            self._add(
                LoadedCert(
                    name=name,
                    cert_file=name,
                    key_file=key,
                    staple_path=staple or f"{name}.ocsp",
                    issuer_path=issuer or f"{name}.issuer",
                    ocsp_update=update,
                    snis=snis,
                    origin=origin,
                )
            )

    def _loads(self, path: str, in_list: bool, origin: str) -> tuple[str, ...]:
        """The names ``path`` loads: a file itself (the fast path), else ``expand_crt``."""
        try:
            if not stat.S_ISDIR(os.stat(path).st_mode):
                return (path,)
        except (OSError, ValueError):
            pass
        cached = (path, in_list)
        expansion = self._expansions.get(cached)
        if expansion is None:
            expansion = expand_crt(path, bundles=self.bundles, directories=not in_list)
            self._expansions[cached] = expansion
        if expansion.denied:
            self.denied.append(path)
        elif expansion.problem:
            self.problems.append(f"{origin}: {expansion.problem}")
        return expansion.names

    def _crt_list(self, path: str, origin: str) -> None:
        if path in self._crt_lists:  # the same certificates again: nothing new to learn
            if self._crt_lists[path][1]:
                self.problems.append(
                    f"{origin}: cannot open crt-list '{path}': {self._crt_lists[path][1]}"
                )
            return
        if path not in self._crt_lists:
            try:
                text = read_text(path)
            except FileReadError as exc:
                self._crt_lists[path] = [], str(exc)
            else:
                entries, warnings = parse_crt_list(text, path)
                self._crt_lists[path] = entries, None
                self.warnings.extend(warnings)
        entries, error = self._crt_lists[path]
        if error:
            self.problems.append(f"{origin}: cannot open crt-list '{path}': {error}")
            return
        for entry in entries:
            self._crt(
                entry.crt,
                f"{path}:{entry.line}",
                entry.snis,
                entry.ocsp_update,
                entry.files,
                in_list=True,
            )

    def _add(self, cert: LoadedCert) -> None:
        known = self.certs.get(cert.name)
        if known is None:
            self.certs[cert.name] = cert
            return
        if known.ocsp_update != cert.ocsp_update:
            self.warnings.append(
                f"{cert.origin}: '{cert.name}' was loaded at {known.origin} with another "
                "ocsp-update; HAProxy keeps the first"
            )
        snis = known.snis + tuple(s for s in cert.snis if s not in known.snis)
        if snis != known.snis:
            self.certs[cert.name] = replace(known, snis=snis)


def _join(base: str | None, path: str) -> str:
    """HAProxy's ``<base>/<path>`` for a relative path (no normalisation: ``a//b`` stays)."""
    if base and not path.startswith("/"):
        return f"{base}/{path}"
    return path


def _first(*values: bool | None) -> bool:
    return next((v for v in values if v is not None), False)
