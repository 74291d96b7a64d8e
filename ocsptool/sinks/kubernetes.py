"""A TLS Secret's data key as the home of its staple (``--kubernetes``).

Reading is free: the source listed each Secret with its staple (``SecretHome.read``).
Writing goes through ``ocsptool.kubernetes.publish.publish_staple``: one data key, a JSON
merge patch conditional on the ``resourceVersion`` the certificate was read at. On a
conflict the Secret is read again and the decision made again:

- another leaf in ``tls.crt`` now: no staple for the old certificate (said in one line;
  the next run staples the new one);
- deleted, or replaced by another type: nothing written (one line);
- the Secret now holds a staple that verifies for this certificate and is newer than
  ours, or a revocation ours would undo: it is kept (one line), never replaced by a worse
  or older one (``retrieval.check_not_older``, as for the staple held on disk);
- anything else changed (a label, another key, a staple that does not verify): one more
  conditional write, never more than three.

Only the staple's key is ever in a patch: ``tls.crt``, ``tls.key`` and every other key
stay byte for byte as they were. A write refused by RBAC is one line naming the verb, the
namespace and the Role rule that would allow it.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from ocsptool.errors import OcspToolError
from ocsptool.sinks import Delivery, DeliveryState, Publication

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from ocsptool.certs import Bundle
    from ocsptool.kubernetes.client import KubeClient
    from ocsptool.kubernetes.config import ApiConfig
    from ocsptool.kubernetes.secrets import TlsSecret
    from ocsptool.kubernetes.selection import Selection
    from ocsptool.route import Route

#: Patches in flight at once (each a small request; the API server is not a responder).
MAX_WRITERS = 4

#: What the run says when a Secret no longer wants the staple (``publish.Outcome``).
_NOT_WRITTEN = {
    "certificate changed": (
        "tls.crt changed during this run (a new certificate): no staple for the old one; "
        "the next run staples the new one"
    ),
    "deleted": "the Secret was deleted during this run",
    "not a TLS secret": "the Secret was replaced by one of another type during this run",
}


class Listed(Protocol):
    """What the home needs of its source (``sources.kubernetes.KubernetesSource``): the
    Secrets it listed, the selection, and a Secret's leaf and issuer."""

    selection: Selection
    secrets: dict[str, TlsSecret]

    def bundle(self, key: str) -> Bundle: ...


class SecretHome:
    """The staples of a Kubernetes source's Secrets, under its data key."""

    def __init__(self, source: Listed, config: ApiConfig) -> None:
        self.source = source
        self.config = config
        self.missing = f"no staple under {source.selection.secret_key}"
        self.label = f"staple ({source.selection.secret_key})"

    def read(self, key: str, route: Route) -> bytes | None:
        secret = self.source.secrets.get(key)
        return None if secret is None else secret.staple

    def where(self, key: str, route: Route) -> str:
        return key

    def readable(self, key: str) -> bool:
        return key in self.source.secrets  # listed: this user may read it

    def writer(self, jobs: int, now: dt.datetime) -> SecretWriter:
        return SecretWriter(self, max(1, min(jobs, MAX_WRITERS)), now)


class SecretWriter:
    """Conditional patches for one run, a few at once, on one client."""

    def __init__(self, home: SecretHome, jobs: int, now: dt.datetime) -> None:
        self.home = home
        self.jobs = jobs
        self.now = now
        self._client: KubeClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[Delivery]] = []
        self._lock = threading.Lock()

    def submit(self, item: Publication) -> None:
        if self._pool is None:  # the first staple to write (a run with none needs no pool)
            from concurrent.futures import ThreadPoolExecutor

            from ocsptool.kubernetes.client import KubeClient

            self._client = KubeClient(self.home.config)
            self._pool = ThreadPoolExecutor(self.jobs, "patch")
        self._pending.append(self._pool.submit(self._write, item))

    def collect(self) -> list[Delivery]:
        pending, self._pending = self._pending, []
        results = [future.result() for future in pending]
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
        return results

    def _write(self, item: Publication) -> Delivery:
        from ocsptool.kubernetes.publish import Outcome, publish_staple
        from ocsptool.kubernetes.secrets import staple_id

        source = self.home.source
        secret = source.secrets.get(item.key)
        if secret is None or self._client is None:
            return Delivery(item.key, DeliveryState.FAILED, "not listed in this run")
        kept: list[str] = []
        try:
            published = publish_staple(
                self._client,
                secret,
                item.der,
                still_wanted=lambda fresh: self._still_wanted(item, fresh, kept),
            )
        except OcspToolError as e:  # a conflict every time, RBAC, the API server: one line
            return Delivery(item.key, DeliveryState.FAILED, str(e).removeprefix(f"{secret}: "))
        except Exception as e:  # one Secret never stops the others, not even a bug
            from ocsptool.retrieval import unexpected

            return Delivery(item.key, DeliveryState.FAILED, str(unexpected(e)))
        outcome = published.outcome
        if outcome in (Outcome.WRITTEN, Outcome.UNCHANGED):
            version = published.resource_version or secret.resource_version
            with self._lock:  # what the Secret holds now, for the rest of the run
                source.secrets[item.key] = replace(
                    secret, staple=item.der, resource_version=version
                )
            return Delivery(
                item.key, DeliveryState.PUBLISHED, method=str(outcome), inode=staple_id(item.der)
            )
        why = kept[0] if outcome is Outcome.DECLINED and kept else _NOT_WRITTEN[str(outcome)]
        return Delivery(item.key, DeliveryState.NOT_SERVED, why, method=str(outcome))

    def _still_wanted(self, item: Publication, fresh: TlsSecret, kept: list[str]) -> bool:
        """After a conflict: whether ``item``'s staple should still replace the one the
        Secret holds now (a staple for this certificate that is newer, or a revocation
        ours would undo, is kept; anything else is replaced)."""
        from ocsptool.errors import ResponseRejected
        from ocsptool.ocsp import verify
        from ocsptool.retrieval import check_not_older
        from ocsptool.state.events import describe_staple

        if not fresh.staple:
            return True
        try:
            bundle = self.home.source.bundle(item.key)
            theirs = verify(fresh.staple, bundle, self.now)
        except OcspToolError:  # not a staple for this certificate: ours is better
            return True
        try:
            ours = verify(item.der, bundle, self.now)
            check_not_older(ours, describe_staple(theirs, None))
        except ResponseRejected as e:
            kept.append(f"another writer left a better staple during this run: {e}")
            return False
        return True
