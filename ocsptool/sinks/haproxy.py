"""The HAProxy sink: one runtime API socket, all its staples over one connection.

Each ``PushResult`` of ``ocsptool.haproxy.push_staples`` becomes one ``Delivery``:

- ``update``, ``transaction``, ``cert-loaded`` and ok: PUBLISHED (HAProxy serves exactly
  those bytes, read back);
- ``haproxy-updates``: SELF_STAPLED (``ocsp-update on``: HAProxy fetches it itself; the
  ``.ocsp`` file is still written, for its next start);
- ``not-loaded``: NOT_SERVED (this HAProxy does not serve the certificate);
- everything else (``renewed``, ``too-large``, a read-back mismatch, a refusal): FAILED,
  with HAProxy's reason; retried on the next run.

``SocketLevelError`` and the other ``HAProxyError`` (the socket cannot be used at all)
propagate: one line naming the socket and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.haproxy import Method, PushItem
from ocsptool.sinks import Delivery, DeliveryState, Publication, SinkOptions

if TYPE_CHECKING:
    from ocsptool.haproxy import PushResult

#: NOT_SERVED's reason (the run's note names the socket before it).
NOT_LOADED = "has not loaded this certificate (not in 'show ssl cert')"


class HAProxySink:
    def __init__(self, address: str, options: SinkOptions | None = None) -> None:
        options = options or SinkOptions()
        self.name = address
        self.label = f"HAProxy {address}"
        self.timeout = options.timeout
        self.now = options.now
        self.update_certs = options.update_certs

    def publish(self, items: Sequence[Publication]) -> list[Delivery]:
        keys = {item.cert_path: item.key for item in items}
        pushing = [self._item(item) for item in items]
        results = self._under_learned_names(pushing, self._push(pushing))
        return [delivery(keys[result.cert_path], result) for result in results]

    def _push(self, items: list[PushItem]) -> list[PushResult]:
        from ocsptool.haproxy import push_staples

        return push_staples(
            self.name, items, timeout=self.timeout, update_certs=self.update_certs, now=self.now
        )

    def _item(self, item: Publication) -> PushItem:
        return PushItem(
            item.cert_path,
            item.der,
            item.issuer_pem,
            serial=item.serial,
            bundle_pem=_bundle(item.cert_path) if self.update_certs else None,
            name=item.name,
        )

    def _under_learned_names(
        self, items: list[PushItem], results: list[PushResult]
    ) -> list[PushResult]:
        """Certificates HAProxy did not list under our path (no configuration named
        them): pushed again under the name ``show ssl cert`` has for them, if one fits."""
        from dataclasses import replace

        from ocsptool.errors import HAProxyError
        from ocsptool.haproxy import show_ssl_certs
        from ocsptool.haproxy.readers import learn_names

        missing = [
            i for i, r in enumerate(results) if r.method == "not-loaded" and items[i].name is None
        ]
        if not missing:
            return results
        try:
            loaded, _ = show_ssl_certs(self.name, timeout=self.timeout)
        except HAProxyError:
            return results
        names = learn_names([items[i].cert_path for i in missing], loaded)
        again = [i for i in missing if items[i].cert_path in names]
        if not again:
            return results
        retried = self._push([replace(items[i], name=names[items[i].cert_path]) for i in again])
        merged = list(results)
        for i, result in zip(again, retried, strict=True):
            merged[i] = result
        return merged


def _bundle(cert_path: str) -> bytes | None:
    """The certificate file with its key, for HAProxy only (never logged or kept): read
    like every certificate (``files.read_file``: a regular file, non-blocking, at most
    ``MAX_FILE_BYTES``), since it may have been swapped since the parse."""
    from ocsptool.errors import CertificateError
    from ocsptool.files import read_file

    try:
        return read_file(Path(cert_path))
    except CertificateError:
        return None  # push_staples then says there is no bundle to load


_METHODS = {str(m): m for m in Method}


def delivery(key: str, result: PushResult) -> Delivery:
    """The Delivery of one PushResult: only a staple HAProxy serves counts as published."""
    method = _METHODS[result.method]
    if method is Method.HAPROXY_UPDATES:
        return Delivery(key, DeliveryState.SELF_STAPLED, None, method)
    if method is Method.NOT_LOADED:
        return Delivery(key, DeliveryState.NOT_SERVED, NOT_LOADED, method)
    if result.ok and method in (Method.UPDATE, Method.TRANSACTION, Method.CERT_LOADED):
        return Delivery(key, DeliveryState.PUBLISHED, None, method)
    error = result.error or "push failed"
    # The run's line names the file first; don't name it twice.
    error = error.removeprefix(f"{result.cert_path}: ")
    return Delivery(key, DeliveryState.FAILED, error, method)
