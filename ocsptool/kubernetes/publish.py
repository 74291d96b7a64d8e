"""Write one staple into one TLS Secret: conditional, and decided again after a conflict.

The patch carries the ``resourceVersion`` the staple's certificate was read at, so a
Secret that changed in between answers 409 and nothing is written. Then the Secret is
read again and the decision made again: a Secret whose leaf changed gets no staple for
the old certificate, one that was deleted or replaced by another type is left alone, one
whose staple is already ours is left as it is. Only a change of something else (a label,
another key, another writer's staple) leads to one more conditional write, and never more
than ``attempts`` writes in all: never a blind retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ocsptool.kubernetes.errors import NotTlsSecret, SecretConflict, SecretGone
from ocsptool.kubernetes.secrets import TlsSecret, get_tls_secret, same_leaf

if TYPE_CHECKING:
    from ocsptool.kubernetes.client import KubeClient


class Outcome(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"  # the Secret already holds this staple: nothing written
    CERT_CHANGED = "certificate changed"  # tls.crt has another leaf now: not written
    GONE = "deleted"  # the Secret was deleted mid-run: not written
    NOT_TLS = "not a TLS secret"  # replaced by a Secret of another type: not written
    DECLINED = "declined"  # ``still_wanted`` said no after reading again: not written


@dataclass(frozen=True)
class Published:
    outcome: Outcome
    #: The resourceVersion after the write (WRITTEN), or the last one read.
    resource_version: str | None
    #: How many conditional writes were sent (0 when nothing needed writing).
    writes: int


def publish_staple(
    client: KubeClient,
    secret: TlsSecret,
    staple: bytes,
    *,
    still_wanted: Callable[[TlsSecret], bool] | None = None,
    attempts: int = 3,
) -> Published:
    """Write ``staple`` under ``secret.staple_key``, only into the Secret as it was read.

    ``secret`` is the Secret as read when the staple was chosen for its leaf. After a
    conflict, ``still_wanted(fresh)`` (when given) is asked whether the staple should still
    go into the Secret as it now is (say, another writer left a newer staple). Raises
    ``SecretConflict`` when the Secret kept changing for ``attempts`` writes.
    """
    current = secret
    writes = 0
    while True:
        if current.staple == staple:
            return Published(Outcome.UNCHANGED, current.resource_version, writes)
        writes += 1
        try:
            version = client.patch_secret_key(
                current.namespace,
                current.name,
                current.staple_key,
                staple,
                resource_version=current.resource_version,
            )
        except SecretGone:
            return Published(Outcome.GONE, None, writes)
        except SecretConflict:
            if writes >= attempts:
                raise SecretConflict(
                    f"{secret}: changed during each of {attempts} writes; left for the next run",
                    status=409,
                    reason="Conflict",
                ) from None
        else:
            return Published(Outcome.WRITTEN, version, writes)
        try:
            fresh = get_tls_secret(client, current.namespace, current.name, current.staple_key)
        except SecretGone:
            return Published(Outcome.GONE, None, writes)
        except NotTlsSecret:
            return Published(Outcome.NOT_TLS, None, writes)
        if not same_leaf(fresh.tls_crt, secret.tls_crt):
            return Published(Outcome.CERT_CHANGED, fresh.resource_version, writes)
        if fresh.staple != staple and still_wanted is not None and not still_wanted(fresh):
            return Published(Outcome.DECLINED, fresh.resource_version, writes)
        current = fresh
