"""The source seam: what every source of certificates provides (the registry is
``ocsptool.sources.sources_for``).

A source does two things, cheaply first: ``survey()`` says which certificates it names
(stat keys only: all a run with nothing due reads), where their staples go, who serves
them, and what it could not read; ``target(found, route)`` parses one certificate into a
``Target`` when a run must look at it.

A source whose staples are not files says where they live: ``Survey.home`` (see
``ocsptool.sinks.Home``); its ``Found`` keys then identify the certificate and the staple
held the same cheap way (``stat``: what the certificate was read from; ``ocsp_inode``:
the staple held, or None), so the no-op run compares them with the records unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ocsptool.route import Route
from ocsptool.scan import Found
from ocsptool.sinks.file import FILE_HOME

if TYPE_CHECKING:
    from ocsptool.sinks import Home
    from ocsptool.target import Target


@dataclass
class Survey:
    """What one source found."""

    found: list[Found] = field(default_factory=list)
    #: Per certificate key, when the source knows who serves it (else the -s sockets).
    routes: Mapping[str, Route] = field(default_factory=dict)
    #: The consumers (runtime addresses) it names.
    sockets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: (key or PATH, why); ``files.READ_DENIED``: this user may not read it (``status``
    #: and ``check`` report it from the state: ``Inventory.unreadable``).
    problems: list[tuple[str, str]] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    socketless: Mapping[str, str] = field(default_factory=dict)
    #: Keys the server staples itself, with no file of ocsptool's -> its consumer address.
    itself: Mapping[str, str] = field(default_factory=dict)
    #: Where its staples live (``Inventory.home``).
    home: Home = FILE_HOME
    #: Key prefixes it listed whole (``Inventory.listed``), other names of its
    #: certificates (``Inventory.aliases``), and where it looked (``Inventory.searched``).
    listed: tuple[str, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    searched: tuple[str, ...] = ()


class Source(Protocol):
    def survey(self) -> Survey:
        """The certificates, their routes, the consumers, and what could not be read."""
        ...

    def target(self, found: Found, route: Route) -> Target:
        """Parse one certificate; raise ``CertificateError`` with a one-line cause."""
        ...


def file_target(found: Found, route: Route) -> Target:
    """The target of a certificate file: its bundle, its route's staple file and servers."""
    from dataclasses import replace

    from ocsptool.certs import parse_bundle
    from ocsptool.route import issuer_sources
    from ocsptool.target import target_of

    staple = Path(route.staple_path) if route.staple_path else None
    files, chains = issuer_sources(route)
    target = target_of(parse_bundle(Path(found.path), files, chains), found.path, staple)
    return replace(target, consumers=route.consumers) if route.served else target
