"""The Kubernetes source (``--kubernetes``): the TLS Secrets of the namespaces served.

Each ``kubernetes.io/tls`` Secret is one certificate, keyed ``kubernetes:NAMESPACE/NAME``
(never a path). The survey lists each namespace in pages (``KubeClient``) and keeps each
Secret as read (its ``tls.key`` dropped by the client, never decoded); its ``Found`` is
cheap and stable across runs, so a run with nothing due compares it with the records and
parses nothing:

- ``stat``: a digest of ``tls.crt`` and ``ca.crt`` (what the certificate is read from);
- ``ocsp_inode``: a digest of the staple the Secret holds under the data key, or None.

The Secret's own staple is the record: with no state at all (a CronJob's emptyDir), the
run parses each Secret, adopts the staple it holds when it verifies, and fetches only what
is due. Its staples live in the Secret (``ocsptool.sinks.kubernetes.SecretHome``).

A namespace this user may not list is one problem naming the Role rule that would allow
it; the other namespaces are served. A Secret that cannot be decoded is one problem; a
certificate without an OCSP URL is skipped quietly, as a file is; Secrets of other types
are filtered out by the API server and never read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.errors import CertificateError
from ocsptool.kubernetes.errors import KubeApiError, Unauthorized, Unreachable
from ocsptool.kubernetes.secrets import digest, staple_id
from ocsptool.kubernetes.selection import Selection
from ocsptool.route import Route
from ocsptool.scan import Found
from ocsptool.sources.types import Survey

if TYPE_CHECKING:
    from cryptography import x509

    from ocsptool.certs import Bundle
    from ocsptool.kubernetes.secrets import TlsSecret
    from ocsptool.target import IssuerOrigin, Target

#: Every Secret's key starts so: ``kubernetes:NAMESPACE/NAME``.
SCHEME = "kubernetes:"
#: A Secret's route: its staple lives in the Secret, and no -s socket is given it (the
#: gateways read the Secret themselves).
SERVED_BY_NONE = Route((), None, ())


def secret_key(namespace: str, name: str) -> str:
    return f"{SCHEME}{namespace}/{name}"


def stat_of(secret: TlsSecret) -> list[int]:
    """What the certificate is read from: ``tls.crt`` and ``ca.crt``, as a stat key."""
    ca = secret.ca_crt or b""
    return [0, len(secret.tls_crt), digest(secret.tls_crt), digest(ca) if ca else 0]


class KubernetesSource:
    """The TLS Secrets of ``selection``'s namespaces, read once per run."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        #: The Secrets listed, by key: what ``target`` parses and the home reads.
        self.secrets: dict[str, TlsSecret] = {}
        #: Issuers fetched from caIssuers in this run (a Secret cannot hold them for us).
        self.issuers: dict[str, x509.Certificate] = {}

    # -- survey ----------------------------------------------------------------------------

    def survey(self) -> Survey:
        from ocsptool.kubernetes.client import KubeClient
        from ocsptool.kubernetes.config import load_config
        from ocsptool.kubernetes.secrets import Unreadable, read_tls_secrets
        from ocsptool.sinks.kubernetes import SecretHome

        selection = self.selection
        config = load_config(selection.kubeconfig)
        namespaces = selection.namespaces or (config.namespace,)
        survey = Survey(home=SecretHome(self, config))
        found = survey.found
        problems = survey.problems
        listed: list[str] = []
        searched: list[str] = []
        client = KubeClient(config)
        try:
            for namespace in dict.fromkeys(namespaces):
                try:
                    for item in read_tls_secrets(
                        client,
                        namespace,
                        selector=selection.selector,
                        staple_key=selection.secret_key,
                    ):
                        key = secret_key(item.namespace, item.name)
                        if isinstance(item, Unreadable):
                            problems.append((key, item.reason))
                            continue
                        self.secrets[key] = item
                        found.append(Found(key, stat_of(item), staple_id(item.staple), None))
                except (Unauthorized, Unreachable) as e:  # the same for every namespace
                    problems.append(_problem(e))
                    break
                except KubeApiError as e:  # 403 and the rest: this namespace; the others go on
                    problems.append(_problem(e))
                    continue
                listed.append(f"{SCHEME}{namespace}/")
                searched.append(self._searched(namespace))
        finally:
            client.close()
        survey.routes = dict.fromkeys((f.path for f in found), SERVED_BY_NONE)
        survey.listed = tuple(listed)
        survey.searched = tuple(searched)
        survey.aliases = _aliases(self.secrets.values())
        return survey

    def _searched(self, namespace: str) -> str:
        selector = self.selection.selector
        return f'the TLS Secrets of namespace "{namespace}"' + (
            f" with labels {selector}" if selector else ""
        )

    # -- one certificate ---------------------------------------------------------------------

    def target(self, found: Found, route: Route) -> Target:
        from ocsptool.certs import Bundle, describe_name
        from ocsptool.target import IssuerNotFound, target_of

        key = found.path
        leaf, issuer, origin = self._certificates(key)
        if issuer is None:

            def keep(fetched: x509.Certificate, url: str | None) -> tuple[Found, str]:
                self.issuers[key] = fetched
                where = f" from {url}" if url else ""
                return found, (
                    f"{key}: tls.crt lacks its chain; fetched the issuer "
                    f"{describe_name(fetched.subject)}{where} for this run (TLS clients "
                    "may fail to build the chain too: append the intermediate to tls.crt)"
                )

            raise IssuerNotFound(_no_issuer(leaf), leaf, keep)
        target = target_of(Bundle(Path(key), leaf, issuer, None), key)
        return replace(target, issuer_origin=origin, staple_path=None)

    def bundle(self, key: str) -> Bundle:
        """The leaf and its issuer, as ``target`` reads them (``CertificateError``)."""
        from ocsptool.certs import Bundle

        leaf, issuer, _ = self._certificates(key)
        if issuer is None:
            raise CertificateError(_no_issuer(leaf))
        return Bundle(Path(key), leaf, issuer, None)

    def _certificates(
        self, key: str
    ) -> tuple[x509.Certificate, x509.Certificate | None, IssuerOrigin]:
        """The leaf, its issuer (None: not in the Secret, nor fetched in this run) and
        where the issuer came from."""
        from ocsptool.kubernetes.secrets import certificates
        from ocsptool.target import IssuerOrigin

        secret = self.secrets[key]
        try:
            read = certificates(secret)
        except CertificateError as e:  # the key names the Secret already
            raise CertificateError(str(e).removeprefix(f"{secret}: ")) from None
        if read.issuer is not None and read.issuer_origin is not None:
            return read.leaf, read.issuer, read.issuer_origin
        return read.leaf, self.issuers.get(key), IssuerOrigin.AIA


def _no_issuer(leaf: x509.Certificate) -> str:
    from ocsptool.certs import describe_name

    return (
        f"issuer {describe_name(leaf.issuer)} is in neither tls.crt nor ca.crt; "
        "append the intermediate certificate to tls.crt"
    )


def _problem(error: KubeApiError) -> tuple[str, str]:
    """(where, why) of a one-line API error (``kubernetes namespace "ns": why``)."""
    where, _, why = str(error).partition(": ")
    return (where, why) if why else ("kubernetes", where)


def _aliases(secrets: Collection[TlsSecret]) -> dict[str, str]:
    """``NAMESPACE/NAME`` of each Secret, and ``NAME`` of each name used only once."""
    from collections import Counter

    listed = list(secrets)
    names = Counter(s.name for s in listed)
    aliases = {s.ref: secret_key(s.namespace, s.name) for s in listed}
    aliases.update((s.name, secret_key(s.namespace, s.name)) for s in listed if names[s.name] == 1)
    return aliases
