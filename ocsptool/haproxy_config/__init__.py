"""HAProxy's configuration as a source: which certificates it loads, which sockets reach it.

``read_haproxy_config(path, env=os.environ)`` reads one instance's configuration (a file,
or a directory of ``*.cfg`` files as ``haproxy -f DIR`` reads it) and returns a
``Discovery``: the certificates HAProxy loads, under the names ``show ssl cert`` lists,
its runtime sockets, the lines skipped (``warnings``) and what would stop HAProxy from
starting (``problems``). It reads files only; it never runs HAProxy.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from ocsptool.haproxy_config.crt import Expansion, expand_crt
from ocsptool.haproxy_config.crtlist import CrtListLine, parse_crt_list
from ocsptool.haproxy_config.files import MAX_FILE_BYTES, FileReadError, read_text, shown
from ocsptool.haproxy_config.model import (
    NOTHING_LOADED,
    Discovery,
    HAProxyConfigError,
    LoadedCert,
    Socket,
    SocketLevel,
)
from ocsptool.haproxy_config.reader import ConfigReader
from ocsptool.haproxy_config.sockets import (
    DEBIAN_CONFIG,
    DEBIAN_EXTRAOPTS,
    AddressError,
    master_sockets,
    shell_assignments,
    socket_address,
)
from ocsptool.printable import shown_lines

__all__ = [
    "CrtListLine",
    "Discovery",
    "Expansion",
    "HAProxyConfigError",
    "LoadedCert",
    "Socket",
    "SocketLevel",
    "expand_crt",
    "parse_crt_list",
    "read_haproxy_config",
]

DEFAULTS_FILE = Path("/etc/default/haproxy")
#: What an untrusted configuration is called, and what it costs (``trust.Steering``).
UNTRUSTED_CONFIG = ("HAProxy configuration", "nothing it loads is stapled")
#: ``haproxy -f DIR`` reads at most this many files (bounded work).
MAX_CONFIG_FILES = 1000


def read_haproxy_config(
    path: Path,
    *,
    env: Mapping[str, str],
    defaults_file: Path | None = DEFAULTS_FILE,
) -> Discovery:
    """What the HAProxy instance configured by ``path`` loads and listens on.

    ``env`` is the environment HAProxy expands ``"${VAR}"`` from (usually os.environ).
    ``defaults_file`` (Debian's ``/etc/default/haproxy``) adds the master CLI socket the
    packaged unit passes with ``-S``, when ``path`` is the unit's ``CONFIG``.
    Raises HAProxyConfigError when the configuration itself cannot be read.
    """
    files = _config_files(path)
    reader = ConfigReader({**env, "HAPROXY_CFGFILES": ",".join(files)})
    for name in files:
        if (untrusted := reader.steering.problem(name, *UNTRUSTED_CONFIG)) is not None:
            return Discovery(str(path), path, (), (), (), (untrusted,), tuple(files))
    for name in files:
        try:
            text = read_text(name, MAX_FILE_BYTES)
        except FileReadError as exc:
            raise HAProxyConfigError(
                f"{shown(name, 4000)}: cannot read the HAProxy configuration: {exc}"
            ) from None
        reader.read(name, text)
    if defaults_file is not None:
        _master(path, defaults_file, reader)
    certs = tuple(reader.certs.values())
    if not certs and not reader.problems and not reader.denied:
        reader.warnings.append(f"{path}: {NOTHING_LOADED}")
    reader.warnings += unstapled(certs)
    return Discovery(
        instance=str(path),
        config=path,
        certs=certs,
        sockets=tuple(reader.sockets),
        warnings=shown_lines(reader.warnings),
        problems=shown_lines(reader.problems),
        inputs=(*files, *reader.crt_lists_read),
        denied=tuple(dict.fromkeys(reader.denied)),
        issuers_dir=reader.issuers_dir,
    )


#: Why HAProxy reads no staple file for a certificate, per option that decided it.
_NO_STAPLE = {
    "ssl-load-extra-files": "ssl-load-extra-files leaves out 'ocsp': HAProxy reads no "
    ".ocsp file (add 'ocsp' to it)",
    "crt-store load": "its crt-store load line names no 'ocsp' file, and HAProxy never "
    "looks for <crt>.ocsp there (add 'ocsp <file>')",
    "generate-dummy": "HAProxy generates this certificate itself (generate-dummy on)",
}


def unstapled(certs: tuple[LoadedCert, ...]) -> list[str]:
    """One warning per option (and file) that leaves certificates without a staple file:
    ocsptool does not staple them, since what it pushes at run time HAProxy loses at its
    next reload (unless ``ocsp-update`` is on: HAProxy staples those itself). ``file:line``
    first, so that a configuration with nothing else says why."""
    groups: dict[tuple[str, str], list[LoadedCert]] = {}
    for cert in certs:
        # ocsp-update on: HAProxy fetches and staples it itself; nothing to say
        if cert.staple_path is None and cert.staple_from is not None and not cert.ocsp_update:
            option, where = cert.staple_from
            # one line per option line; crt-list and ssl-f-use lines: one per file
            group = where if option in _NO_STAPLE else where.rpartition(":")[0]
            groups.setdefault((option, group), []).append(cert)
    lines = []
    for (option, _), loaded in groups.items():
        where = loaded[0].staple_from[1] if loaded[0].staple_from else ""
        why = _NO_STAPLE.get(option) or (
            f"'{option.rpartition(' ')[2]}' without 'ocsp': HAProxy does not look for "
            "<crt>.ocsp (add 'ocsp <file>')"
        )
        count, name = len(loaded), loaded[0].name
        what = f"'{name}'" if count == 1 else f"{count} certificates ('{name}', …)"
        lines.append(f"{where}: {why}; ocsptool does not staple {what}")
    return lines


def _config_files(path: Path) -> list[str]:
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except OSError as exc:
        raise HAProxyConfigError(
            f"{shown(name, 4000)}: cannot read the HAProxy configuration: {exc.strerror or exc}"
        ) from None
    except ValueError as exc:
        raise HAProxyConfigError(
            f"{shown(name)}: cannot read the HAProxy configuration: {exc}"
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        return [name]
    try:
        entries = sorted(
            (
                e.name
                for e in os.scandir(name)
                if e.name.endswith(".cfg") and not e.name.startswith(".")
            ),
            key=os.fsencode,
        )
    except OSError as exc:
        raise HAProxyConfigError(
            f"{name}: cannot read the HAProxy configuration directory: {exc.strerror or exc}"
        ) from None
    if len(entries) > MAX_CONFIG_FILES:
        raise HAProxyConfigError(f"{name}: more than {MAX_CONFIG_FILES} configuration files")
    files = [f"{name.rstrip('/')}/{entry}" for entry in entries]
    regular = [f for f in files if os.path.isfile(f)]
    if not regular:
        raise HAProxyConfigError(f"{name}: no .cfg file in this configuration directory")
    return regular


def _master(path: Path, defaults_file: Path, reader: ConfigReader) -> None:
    """The master CLI of Debian's unit (``-S`` in ``EXTRAOPTS``) for its ``CONFIG``."""
    try:
        text = read_text(os.fspath(defaults_file), MAX_FILE_BYTES)
    except FileReadError as exc:
        if os.path.lexists(defaults_file):
            reader.warnings.append(f"{defaults_file}: not read ({exc}); master socket unknown")
        return
    named = ("defaults file", "its master socket is not used")
    if (untrusted := reader.steering.problem(os.fspath(defaults_file), *named)) is not None:
        reader.warnings.append(untrusted)
        return
    values = shell_assignments(text)
    config = values.get("CONFIG", DEBIAN_CONFIG)
    if os.path.realpath(config) != os.path.realpath(path):
        return
    extraopts = values.get("EXTRAOPTS", DEBIAN_EXTRAOPTS)
    origin = f"{defaults_file}:EXTRAOPTS"
    if "-f" in extraopts.split():
        reader.warnings.append(f"{origin}: the '-f' configuration files it adds are not read")
    try:
        found = master_sockets(extraopts)
    except AddressError as exc:
        reader.warnings.append(f"{origin}: master socket skipped: {exc}")
        return
    for address, level in found:
        try:
            spelled = socket_address(address, None)
        except AddressError as exc:
            reader.warnings.append(f"{origin}: master socket skipped: {exc}")
            continue
        reader.sockets.append(Socket(spelled, level, master=True, origin=origin))
