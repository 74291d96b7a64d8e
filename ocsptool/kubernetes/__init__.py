"""Kubernetes TLS Secrets as a source and a sink of staples.

The engine, in small modules, each one noun:

- ``config``: where the API is and how to authenticate (kubeconfig or in-cluster), as a
  frozen ``ApiConfig``;
- ``client``: a small requests-based client for the three calls ocsptool makes (list TLS
  Secrets in pages, get one, patch one data key conditionally), with one-line errors;
- ``secrets``: a TLS Secret decoded into a frozen ``TlsSecret`` (never its ``tls.key``),
  and its leaf and issuer;
- ``publish``: write one staple under one key, conditional on the Secret's
  ``resourceVersion``; on a conflict read again and decide again.

In a pod this needs nothing beyond ocsptool's own dependencies. Reading a YAML kubeconfig
needs PyYAML: ``pip install 'ocsptool[kubernetes]'`` (a JSON kubeconfig needs nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The only Secret type ocsptool reads or writes.
TLS_TYPE = "kubernetes.io/tls"
#: Where the staple goes by default: Istio and kgateway read this key.
DEFAULT_SECRET_KEY = "tls.ocsp-staple"  # noqa: S105 - a data key name, not a secret
#: The data keys ocsptool never writes, whatever ``--secret-key`` says.
RESERVED_KEYS = frozenset({"tls.crt", "tls.key", "ca.crt"})


@dataclass(frozen=True)
class Selection:
    """Which TLS Secrets a run serves (``--kubernetes``), and where their staples go."""

    #: The namespaces served; empty: the API configuration's own (the service account's in
    #: a pod, else the kubeconfig context's).
    namespaces: tuple[str, ...] = ()
    #: A label selector (``app=web,tier!=dev``), passed to the API server as is.
    selector: str | None = None
    #: The data key each staple goes under.
    secret_key: str = DEFAULT_SECRET_KEY
    #: ``--kubeconfig``; None: ``$KUBECONFIG``, else the in-cluster service account.
    kubeconfig: Path | None = None
