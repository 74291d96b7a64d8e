"""Which OCSP URLs to ask for a certificate, in order: an override, or all of its own.

``responder_overrides`` in the config file maps an issuer to a URL that replaces the
certificate's (a private responder under another name, a split network). An issuer is
named by its subject, as ocsptool prints it (``CN=Example CA``) or as a full RFC 4514
string (``CN=Example CA,O=Example``), or by its key identifier in hex, with or without
colons (``6a:3f:...`` or ``6a3f...``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography import x509

from ocsptool.certs import describe_name, ocsp_urls
from ocsptool.errors import ConfigError, FetchError
from ocsptool.fetch import check_url, order_urls

__all__ = ["Overrides", "order_urls", "parse_overrides", "urls_for"]

KEY = "responder_overrides"
_HEX = re.compile(r"[0-9a-fA-F]+|[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})+")


@dataclass(frozen=True)
class Overrides:
    """Parsed ``responder_overrides``: by issuer name (as written) and by key identifier."""

    by_name: Mapping[str, str] = field(default_factory=dict)
    names: tuple[tuple[x509.Name, str], ...] = ()
    by_key_id: Mapping[bytes, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_name or self.by_key_id)

    def url_for(self, leaf: x509.Certificate, issuer: x509.Certificate) -> str | None:
        """The override for ``issuer`` (the CA that issued ``leaf``), or None."""
        if self.by_key_id:
            for key_id in _key_ids(leaf, issuer):
                url = self.by_key_id.get(key_id)
                if url is not None:
                    return url
        if self.by_name:
            subject = issuer.subject
            for text in (describe_name(subject), subject.rfc4514_string()):
                url = self.by_name.get(text)
                if url is not None:
                    return url
            for name, url in self.names:
                if name == subject:
                    return url
        return None


def parse_overrides(value: object) -> Overrides:
    """Validate the config value; ``ConfigError`` naming the key on the first bad entry."""
    if not isinstance(value, Mapping):
        raise ConfigError(
            f'{KEY}: must be a table of issuer = URL, e.g. [{KEY}] "CN=Example CA" = "http://..."'
        )
    by_name: dict[str, str] = {}
    names: list[tuple[x509.Name, str]] = []
    by_key_id: dict[bytes, str] = {}
    for raw_key, url in value.items():
        key = str(raw_key).strip()
        where = f"{KEY}: {str(raw_key)!r}"
        if not isinstance(url, str):
            raise ConfigError(f"{where}: the value must be a URL in quotes")
        try:
            check_url(url)
        except FetchError as e:
            raise ConfigError(f"{where}: {e}") from None
        if "=" not in key:
            by_key_id[_parse_key_id(key, where)] = url
            continue
        try:
            name = x509.Name.from_rfc4514_string(key)
        except ValueError:
            raise ConfigError(
                f"{where}: not an issuer name (RFC 4514, e.g. CN=Example CA,O=Example) "
                "nor a key identifier in hex"
            ) from None
        by_name[key] = url
        names.append((name, url))
    return Overrides(by_name, tuple(names), by_key_id)


def _parse_key_id(key: str, where: str) -> bytes:
    if not _HEX.fullmatch(key):
        raise ConfigError(
            f"{where}: not a key identifier in hex (e.g. 6a:3f:...) nor an issuer name "
            "(e.g. CN=Example CA)"
        )
    digits = key.replace(":", "")
    if len(digits) % 2 or not 8 <= len(digits) <= 128:
        raise ConfigError(
            f"{where}: a key identifier is 4 to 64 bytes of hex ({len(digits)} digits)"
        )
    return bytes.fromhex(digits)


def _key_ids(leaf: x509.Certificate, issuer: x509.Certificate) -> list[bytes]:
    """The issuer's key identifiers: its SKI, the leaf's AKI, and the SHA-1 of its key."""
    ids: list[bytes] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        ids.append(
            issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        )
    try:
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        pass
    else:
        if aki.key_identifier is not None:
            ids.append(aki.key_identifier)
    ids.append(x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest)
    return list(dict.fromkeys(ids))


def urls_for(
    leaf: x509.Certificate, issuer: x509.Certificate, overrides: Overrides | None = None
) -> list[str]:
    """The override for the issuer alone, or every OCSP URL of the certificate in order."""
    if overrides:
        url = overrides.url_for(leaf, issuer)
        if url is not None:
            return [url]
    return ocsp_urls(leaf)
