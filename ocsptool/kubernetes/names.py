"""Names the API takes from the operator, checked before any request (and before the
client, with its TLS and HTTP modules, is imported: ``settings`` checks flags with them).
"""

from __future__ import annotations

import re

from ocsptool.kubernetes import RESERVED_KEYS
from ocsptool.kubernetes.errors import KubeConfigError

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DATA_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def check_namespace(namespace: str) -> str:
    """A namespace name (a DNS label), or a one-line usage error (``KubeConfigError``)."""
    if not _DNS_LABEL.fullmatch(namespace):
        raise KubeConfigError(f"kubernetes: {namespace!r} is not a namespace name")
    return namespace


def check_data_key(key: str) -> str:
    """A Secret data key ocsptool may write: valid, and none of the keys it never writes
    (else a one-line usage error, ``KubeConfigError``)."""
    if not _DATA_KEY.fullmatch(key) or key in (".", ".."):
        raise KubeConfigError(f"kubernetes: {key!r} is not a valid Secret data key")
    if key in RESERVED_KEYS:
        raise KubeConfigError(
            f"kubernetes: refusing to write the staple to {key!r}; pick a new key"
        )
    return key
