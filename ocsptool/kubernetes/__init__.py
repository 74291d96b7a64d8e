"""Kubernetes TLS Secrets as a source and a sink of staples.

The engine, in small modules, each one noun:

- ``config``: where the API is and how to authenticate (kubeconfig or in-cluster), as a
  frozen ``ApiConfig``;
- ``client``: a small client (the standard library's ``http.client``) for the three
  calls ocsptool makes (list TLS Secrets in pages, get one, patch one data key
  conditionally), with one-line errors;
- ``secrets``: a TLS Secret decoded into a frozen ``TlsSecret`` (never its ``tls.key``),
  and its leaf and issuer;
- ``publish``: write one staple under one key, conditional on the Secret's
  ``resourceVersion``; on a conflict read again and decide again.
- ``selection``: which Secrets a run serves (``--kubernetes``), as a frozen ``Selection``;
- ``names``: namespaces and data keys checked before any request.

In a pod this needs nothing beyond ocsptool's own dependencies. Reading a YAML kubeconfig
needs PyYAML: ``pip install 'ocsptool[kubernetes]'`` (a JSON kubeconfig needs nothing).
"""

from __future__ import annotations

#: The only Secret type ocsptool reads or writes.
TLS_TYPE = "kubernetes.io/tls"
#: Where the staple goes by default: Istio and kgateway read this key.
DEFAULT_SECRET_KEY = "tls.ocsp-staple"  # noqa: S105 - a data key name, not a secret
#: The data keys ocsptool never writes, whatever ``--secret-key`` says.
RESERVED_KEYS = frozenset({"tls.crt", "tls.key", "ca.crt"})
