"""Which ``ssl_stapling_file`` ocsptool may keep, and the stapling traps of a configuration.

Pure functions over ``ServerBlock`` values (no I/O), so their tests are tables. What
nginx does with a staple file (source: ``ngx_event_openssl_stapling.c``, checked on
1.22.1): it reads the file once per certificate of the block at start or reload and
attaches the same response to each; only with ``ssl_stapling on``; never for a
certificate loaded per handshake (variables in ``ssl_certificate`` or its key).

- A block with several certificates and one staple file staples one certificate's
  response for the others: a problem (one per block); ocsptool keeps the file only for
  the single-certificate blocks that share it, if any.
- One staple file for different certificates in different blocks: the same, per file.
- ``ssl_stapling_file`` without ``ssl_stapling on``: nginx ignores the file (warning).
- Variables in a certificate path: nginx cannot staple it (warning).
- ``ssl_stapling on`` without a file: nginx asks the responder itself; not ocsptool's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ocsptool.nginx.model import ServerBlock, StapleFile

_SPLIT = (
    "split the block into one server block per certificate, each with its own "
    "ssl_stapling_file, or remove ssl_stapling_file there and let nginx staple them itself"
)


@dataclass(frozen=True, slots=True)
class Findings:
    """One-line messages: ``problems`` (nginx refuses, or would staple a wrong
    response) and ``warnings`` (a setting with no effect, a block ocsptool skips)."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def findings(servers: Sequence[ServerBlock]) -> Findings:
    """The stapling traps of ``servers``, in the order of the blocks."""
    problems: list[str] = []
    warnings: list[str] = []
    for block in servers:
        if not block.certificates:
            continue
        problems += [
            f'{block.origin}: no "ssl_certificate_key" is defined for certificate '
            f'"{cert.path}" ({cert.origin}); nginx refuses this configuration'
            for cert in block.certificates
            if cert.key is None
        ]
        wants_staple = block.stapling or block.stapling_file is not None
        if block.variables and wants_staple:
            cert = next(c for c in block.certificates if c.variables)
            warnings.append(
                f'{cert.origin}: ssl_certificate "{cert.path}" (or its key) has variables: '
                f"nginx loads it at each handshake and cannot staple it; "
                f"ocsptool skips the block at {block.origin}"
            )
            continue
        if block.stapling_file is not None and not block.stapling:
            warnings.append(
                f"{block.stapling_file_origin}: ssl_stapling_file {block.stapling_file} "
                f'has no effect in the block at {block.origin}: without "ssl_stapling on;" '
                "nginx ignores the file; add it to the block"
            )
            continue
        if block.stapling_file is not None and len(block.certificates) > 1:
            problems.append(_shared_in_block(block))
        inline = [c for c in block.certificates if c.inline]
        if inline and block.stapling_file is not None:
            warnings.append(
                f"{inline[0].origin}: an inline (data:) certificate is not a file; "
                f"ocsptool skips the block at {block.origin}"
            )
    problems += _shared_across_blocks(servers)
    return Findings(tuple(problems), tuple(warnings))


def _shared_in_block(block: ServerBlock) -> str:
    listed = ", ".join(f"{c.path} ({c.origin})" for c in block.certificates)
    return (
        f"{block.origin}: {len(block.certificates)} certificates share one ssl_stapling_file "
        f"{block.stapling_file} ({block.stapling_file_origin}): {listed}; nginx staples "
        f"that one response for each of them, so all but one get a response for another "
        f"certificate; {_SPLIT}"
    )


def _shared_across_blocks(servers: Sequence[ServerBlock]) -> list[str]:
    """One problem per staple file that single-certificate blocks use for different
    certificates (a block with several is reported on its own)."""
    problems = []
    for path, blocks in _by_file(servers).items():
        single = [b for b in blocks if len(b.certificates) == 1]
        certs = dict.fromkeys(b.certificates[0].path for b in single)
        if len(certs) < 2:
            continue
        listed = ", ".join(f"{b.certificates[0].path} in {b.origin}" for b in single)
        problems.append(
            f"{single[0].stapling_file_origin}: ssl_stapling_file {path} is used for "
            f"different certificates: {listed}; nginx staples that one response for each, "
            "so all but one get a response for another certificate; give each "
            "certificate its own ssl_stapling_file"
        )
    return problems


def _by_file(servers: Sequence[ServerBlock]) -> dict[str, list[ServerBlock]]:
    """The blocks where nginx reads each staple file: stapling on, a file, certificates
    loaded with the configuration."""
    found: dict[str, list[ServerBlock]] = {}
    for block in servers:
        if block.stapling and block.stapling_file and block.certificates and not block.variables:
            found.setdefault(block.stapling_file, []).append(block)
    return found


def staple_files(servers: Sequence[ServerBlock]) -> tuple[StapleFile, ...]:
    """The staple files ocsptool keeps: each for the one certificate file of the
    single-certificate blocks that read it. A file they use for different certificates
    is left alone; a block with several certificates is left out of ``servers`` (it
    staples a wrong response for some whatever the file holds); ``findings`` says why."""
    kept: list[StapleFile] = []
    for path, blocks in _by_file(servers).items():
        single = [b for b in blocks if len(b.certificates) == 1]
        certs = {b.certificates[0].path: b.certificates[0] for b in single}
        if len(certs) != 1:
            continue
        (cert,) = certs.values()
        if cert.inline:
            continue
        trusted = next((b.trusted_certificate for b in single if b.trusted_certificate), None)
        origin = single[0].stapling_file_origin or single[0].origin
        kept.append(StapleFile(path, origin, cert, trusted, tuple(single)))
    return tuple(kept)
