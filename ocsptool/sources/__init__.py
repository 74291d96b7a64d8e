"""Sources: where the certificates to staple come from, and the one discovery.

``discover(inputs)`` asks every source the inputs name and returns the run's
``Inventory``: every certificate once, its route, the consumers, the warnings and
problems. Every command calls it, so they all see the same certificates. The seam's
contract is ``ocsptool.sources.types``; new sources are added in ``sources_for``, the one
place sources are picked, and in ``default_inputs`` when they have a default file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.errors import UsageError
from ocsptool.files import READ_DENIED
from ocsptool.inventory import Inputs, Inventory, Part
from ocsptool.route import Route
from ocsptool.sources.types import Source, Survey

if TYPE_CHECKING:
    from ocsptool.settings import Settings


def sources_for(inputs: Inputs, *, cache: Path | None = None) -> list[Source]:
    """The sources of a run: the HAProxy configurations, then the nginx configurations
    (each read here: a ConfigError when one cannot be read; ``cache`` keeps the reading
    for the next run, ``<cache>-nginx`` nginx's), then the PATHs, then the TLS Secrets
    (``--kubernetes``). Add new sources here (each imported only when it is used: a run
    pays for the sources it has)."""
    sources: list[Source] = []
    if inputs.haproxy_configs:
        from ocsptool.sources.haproxy_config import HAProxyConfigSource

        sources.append(
            HAProxyConfigSource.read(inputs.haproxy_configs, inputs.sockets, cache=cache)
        )
    if inputs.nginx_configs:
        from ocsptool.sources.nginx import NginxSource

        beside = cache.with_name(cache.name + "-nginx") if cache is not None else None
        sources.append(NginxSource.read(inputs.nginx_configs, cache=beside))
    if inputs.paths:
        from ocsptool.sources.directory import DirectorySource

        sources.append(DirectorySource(inputs.paths, inputs.extensions, inputs.excludes))
    if inputs.kubernetes is not None:
        from ocsptool.sources.kubernetes import KubernetesSource

        sources.append(KubernetesSource(inputs.kubernetes))
    return sources


def with_certs(inputs: Inputs, certs: Sequence[str]) -> Inputs:
    """``inputs`` with the CERTs of ``renew CERT...`` and ``show CERT`` added as PATHs
    (a configuration that names one keeps its route: ``select`` finds it). With
    ``--kubernetes``, a CERT that is no file names a TLS Secret (``NAMESPACE/NAME``,
    ``NAME`` or its key): it is looked up among the Secrets, not scanned for."""
    import os
    from dataclasses import replace

    if inputs.kubernetes is not None:
        certs = [c for c in certs if os.path.lexists(c)]
    return replace(inputs, paths=(*inputs.paths, *certs)) if certs else inputs


def default_inputs(inputs: Inputs, *, required: bool = True) -> Inputs:
    """``inputs``, or, when nothing names a certificate, the servers' default
    configurations that exist; with none, a usage error saying where it looked (or, not
    ``required``, the inputs as they are)."""
    if inputs.named:
        return inputs
    from dataclasses import replace

    from ocsptool.sources import haproxy_config, nginx

    haproxy, ngx = haproxy_config.DEFAULT_CONFIG, nginx.DEFAULT_CONFIG
    haproxy_configs = (haproxy,) if haproxy.exists() else ()
    nginx_configs = (ngx,) if ngx.exists() else ()
    if haproxy_configs or nginx_configs:  # a host may run both
        return replace(
            inputs, haproxy_configs=haproxy_configs, nginx_configs=nginx_configs, defaulted=True
        )
    if not required:
        return inputs
    raise UsageError(
        "give at least one certificate file or directory, --haproxy-config FILE or "
        "--nginx-config FILE (or set paths, haproxy_configs or nginx_configs in the config "
        f"file); {haproxy} does not exist and {ngx} does not exist"
    )


def discover(inputs: Inputs, *, cache: Path | None = None) -> Inventory:
    """The inventory of ``inputs``: each certificate once (the first source that names it
    keeps it; a configuration's route wins over a PATH's), every consumer, every warning."""
    from ocsptool.gcpause import paused

    with paused():  # tens of thousands of long-lived tuples: no garbage to look for
        sources = sources_for(inputs, cache=cache)
        surveys = [(source, source.survey()) for source in sources]
    inventory = Inventory(inputs=inputs)
    sockets = list(inputs.sockets)
    warnings: list[str] = []
    routes: Mapping[str, Route] = {}
    socketless: Mapping[str, str] = {}
    itself: dict[str, str] = {}
    aliases: dict[str, str] = {}
    seen: set[str] | None = set() if len(surveys) > 1 else None
    for source, survey in surveys:
        found = survey.found
        if seen is not None:
            found = [f for f in found if f.path not in seen]
            seen.update(f.path for f in found)
        inventory.parts.append(Part(source.target, found, survey.home))
        if survey.routes:  # one source: its own mapping, not a copy of 100,000 routes
            new = survey.routes
            routes = _merged(routes, new, inventory.problems) if routes else new
        sockets += survey.sockets
        warnings += survey.warnings
        inventory.problems += survey.problems
        inventory.unreadable += [path for path, why in survey.problems if why == READ_DENIED]
        inventory.leftovers += survey.leftovers
        if survey.socketless:  # one source: its own mapping, not a copy of 100,000 keys
            socketless = {**socketless, **survey.socketless} if socketless else survey.socketless
        for key, address in survey.itself.items():
            itself.setdefault(key, address)
        inventory.listed += survey.listed
        inventory.searched += survey.searched
        aliases.update(survey.aliases)
    inventory.routes = routes
    inventory.aliases = aliases
    inventory.sockets = tuple(dict.fromkeys(sockets))
    if inputs.defaulted and inputs.paths:  # renew/show CERT: a default that loads nothing
        from ocsptool.haproxy_config.model import NOTHING_LOADED

        warnings = [w for w in warnings if not w.endswith(f": {NOTHING_LOADED}")]
    inventory.warnings = tuple(dict.fromkeys(warnings))
    inventory.socketless = socketless
    inventory.itself = itself
    return inventory


def _merged(
    first: Mapping[str, Route], then: Mapping[str, Route], problems: list[tuple[str, str]]
) -> dict[str, Route]:
    """Two sources' routes: a certificate both name keeps the first one's route, with the
    second one's servers added when they read the same staple file; when they read
    different files, one of them would go stale: a problem."""
    from ocsptool.route import joined, staple_file

    merged = {**then, **first}
    for key in first.keys() & then.keys():
        old, new = first[key], then[key]
        both = joined(key, old, new)
        if both is not None:
            merged[key] = both
            continue
        here, there = staple_file(key, old), staple_file(key, new)
        problems.append(
            (
                new.origin or key,
                f"{key} is stapled from {there} here and from {here} "
                f"({old.origin or 'as a PATH'}); ocsptool keeps one staple file per "
                f"certificate, so {there} would go stale: make both read {here}",
            )
        )
    return merged


def inventory_of(settings: Settings, *, cache: bool = True, certs: Sequence[str] = ()) -> Inventory:
    """The run's inventory, as every command builds it: the settings' inputs (or the
    servers' default configurations when nothing is named), read by the sources.
    ``certs`` (``renew CERT...``, ``show CERT``) are added as PATHs: a configuration that
    names one keeps its route (``sources.select`` finds them)."""
    from ocsptool.sources import default_inputs, discover, with_certs

    inputs = default_inputs(settings.inputs, required=not certs)
    if certs:
        inputs = with_certs(inputs, certs)
    return discover(inputs, cache=settings.discovery_cache if cache else None)


def select(inventory: Inventory, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """The keys that ``names`` (``renew CERT...``, ``show CERT``) name in ``inventory``,
    and the names that name none. A name matches a certificate by its key or another name
    its source gives it (a Secret's ``NAMESPACE/NAME``), by its absolute path, by the file
    it links to, or as a multi-cert bundle's base name (each of its parts)."""
    import os

    from ocsptool.sources.directory import explicit_paths

    known = set(inventory.keys())
    real: dict[str, str] | None = None
    keys: list[str] = []
    missing: list[str] = []
    for name in names:
        key = name if name in known else inventory.aliases.get(name)
        if key is not None and not os.path.lexists(name):
            if key not in keys:
                keys.append(key)
            continue
        expanded, _ = explicit_paths([name])
        matched = [p for p in map(os.path.abspath, expanded) if p in known]
        if not matched:
            if real is None:
                real = {os.path.realpath(k): k for k in known}
            matched = [real[r] for r in map(os.path.realpath, expanded) if r in real]
        if matched:
            keys.extend(k for k in matched if k not in keys)
        else:
            missing.append(name)
    return keys, missing


__all__ = [
    "Inputs",
    "Inventory",
    "Source",
    "Survey",
    "default_inputs",
    "discover",
    "select",
    "sources_for",
    "with_certs",
]
