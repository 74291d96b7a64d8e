"""Options that name a staple file are honoured only for the HAProxy versions that have
them (``keywords.SINCE``: crt-list ``[ocsp …]`` and crt-store ``load … ocsp …`` since 3.0,
``ssl-f-use … ocsp …`` since 3.2).

``honour(discovery, sockets)`` looks at the certificates whose staple file such an option
chose (``LoadedCert.staple_from``). None: nothing is asked, at no cost (the usual
configuration). Else the instance's version is learnt once per reading, and cached with
it (``Discovery.inputs`` gains what the answer depends on):

1. from its own sockets, best first (``show version``: the HAProxy that runs);
2. else from ``haproxy -v`` of the binary on PATH (then ``/usr/sbin``, ``/usr/local/sbin``):
   the HAProxy that starts next;
3. else unknown.

A version that has the option: the staple file is the one named. One that has not: the
staple file is not written and its certificate not stapled, one problem per option and
file (that HAProxy refuses the line anyway). Unknown: one warning for the configuration,
and the staples go to ``<cert>.ocsp``, beside the certificate a trusted file named.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ocsptool.errors import HAProxyError
from ocsptool.haproxy.dialect import Dialect, dialect_for
from ocsptool.haproxy_config.keywords import SINCE
from ocsptool.haproxy_config.model import Discovery, LoadedCert
from ocsptool.printable import shown

#: Where ``haproxy -v`` is looked for after PATH (cron's PATH has no sbin).
SBIN = ("/usr/sbin", "/usr/local/sbin")
#: Seconds for each question (a socket, the binary).
TIMEOUT = 2.0


@dataclass(frozen=True)
class Release:
    """An instance's HAProxy version as learnt, or why it is not known."""

    dialect: Dialect | None
    #: Where it was learnt (a socket, ``/usr/sbin/haproxy -v``), or why it is unknown.
    source: str
    #: Files the answer depends on: a reading is read again when one changes.
    inputs: tuple[str, ...] = ()


def honour(discovery: Discovery, sockets: Sequence[str]) -> Discovery:
    """``discovery`` with each version-bound staple file kept, refused or moved to
    ``<cert>.ocsp`` by the instance's version (see the module)."""
    bound = [c for c in discovery.certs if _bound(c)]
    if not bound:
        return discovery
    release = learn(sockets)
    certs: list[LoadedCert] = []
    refused: dict[tuple[str, str], list[LoadedCert]] = {}
    for cert in discovery.certs:
        if not _bound(cert):
            certs.append(cert)
            continue
        assert cert.staple_from is not None
        option, where = cert.staple_from
        if release.dialect is None:
            certs.append(replace(cert, staple_path=f"{cert.cert_file}.ocsp", issuer_path=None))
        elif release.dialect.has(SINCE[option]):
            certs.append(cert)
        else:
            certs.append(replace(cert, staple_path=None, issuer_path=None))
            group = where if option.startswith("crt-store") else where.rpartition(":")[0]
            refused.setdefault((option, group), []).append(cert)
    problems = [_refusal(option, loaded, release) for (option, _), loaded in refused.items()]
    warnings = [] if release.dialect is not None else [_unknown(discovery, bound, release)]
    return replace(
        discovery,
        certs=tuple(certs),
        warnings=(*discovery.warnings, *warnings),
        problems=(*discovery.problems, *problems),
        inputs=(*discovery.inputs, *release.inputs),
    )


def learn(sockets: Sequence[str]) -> Release:
    """The version of the HAProxy behind ``sockets`` (else of the binary on PATH)."""
    from ocsptool.haproxy.transport import Connection

    inputs = [address for address in sockets if address.startswith("/")]
    failures: list[str] = []
    for address in sockets:
        try:
            connection = Connection(address, TIMEOUT)
        except HAProxyError as e:
            failures.append(str(e))
            continue
        connection.close()
        if connection.dialect.version != "?":
            return Release(connection.dialect, address, tuple(inputs))
    search = os.pathsep.join((os.environ.get("PATH", ""), *SBIN))
    binary = shutil.which("haproxy", path=search)
    if binary is not None:
        inputs.append(binary)
        dialect = _binary_version(binary)
        if dialect is not None:
            return Release(dialect, f"{binary} -v", tuple(inputs))
        failures.append(f"{binary} -v did not say its version")
    else:  # read again once one is installed where it will be found
        inputs += [os.path.join(directory, "haproxy") for directory in SBIN]
        failures.append("no haproxy binary on PATH or in /usr/sbin")
    return Release(None, "; ".join(failures), tuple(inputs))


def _binary_version(binary: str) -> Dialect | None:
    try:
        done = subprocess.run(  # noqa: S603 - the operator's haproxy, no shell
            [binary, "-v"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = done.stdout.decode("utf-8", "replace").partition("\n")[0]
    head, found, version = first.partition(" version ")
    if not found or not head.endswith("HAProxy") or not version[:1].isdigit():
        return None
    return dialect_for(version)


def _bound(cert: LoadedCert) -> bool:
    """Whether an option that not every release has chose ``cert``'s staple file."""
    return (
        cert.staple_path is not None
        and cert.staple_from is not None
        and cert.staple_from[0] in SINCE
    )


def _release(since: tuple[int, int]) -> str:
    return ".".join(map(str, since))


def _refusal(option: str, loaded: list[LoadedCert], release: Release) -> str:
    assert release.dialect is not None
    first = loaded[0]
    assert first.staple_from is not None
    where = first.staple_from[1]
    count = len(loaded)
    what = f"'{first.name}'" if count == 1 else f"{count} certificates ('{first.name}', …)"
    version = release.dialect.version
    return shown(
        f"{where}: '{option}' is an option of HAProxy {_release(SINCE[option])}+, and this "
        f"HAProxy is {version} ({release.source}): the staple file it names is not written, "
        f"and ocsptool does not staple {what}: upgrade HAProxy, or remove the option "
        f"(HAProxy {version} refuses it)",
        4000,
    )


def _unknown(discovery: Discovery, bound: list[LoadedCert], release: Release) -> str:
    first = bound[0]
    assert first.staple_from is not None
    option, where = first.staple_from
    since = min(SINCE[c.staple_from[0]] for c in bound if c.staple_from)
    more = ", …" if len(bound) > 1 else ""
    return shown(
        f"{discovery.instance}: the HAProxy version is unknown ({release.source}), so the "
        f"staple files named by options of HAProxy {_release(since)}+ ('{option}' at "
        f"{where}{more}) are not written: their certificates' staples go to <cert>.ocsp",
        4000,
    )
