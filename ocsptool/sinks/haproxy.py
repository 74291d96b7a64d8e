"""The HAProxy sink: one runtime API socket, all its staples over one connection."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from ocsptool.sinks import Delivery, DeliveryState, Publication

if TYPE_CHECKING:
    from ocsptool.haproxy import PushItem, PushResult


class PushMethod(StrEnum):
    UPDATE = "update"  # set ssl ocsp-response
    TRANSACTION = "transaction"  # set ssl cert <cert>.ocsp + commit ssl cert
    NOT_LOADED = "not-loaded"  # HAProxy does not serve the certificate


class HAProxySink:
    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        self.name = address
        self.timeout = timeout

    def publish(self, items: Sequence[Publication]) -> list[Delivery]:
        from ocsptool.haproxy import PushItem, push_staples

        keys = {item.cert_path: item.key for item in items}
        pushing = [PushItem(i.cert_path, i.der, i.issuer_pem, name=i.name) for i in items]
        results = push_staples(self.name, pushing, timeout=self.timeout)
        results = self._under_learned_names(pushing, results)
        deliveries = []
        for result in results:
            method = PushMethod(result.method)
            if method is PushMethod.NOT_LOADED:
                state = DeliveryState.NOT_SERVED
            else:
                state = DeliveryState.PUBLISHED if result.ok else DeliveryState.FAILED
            error = result.error if state is not DeliveryState.PUBLISHED else None
            deliveries.append(
                Delivery(
                    keys[result.cert_path],
                    state,
                    error or ("push failed" if state is DeliveryState.FAILED else None),
                    method,
                )
            )
        return deliveries

    def _under_learned_names(
        self, items: list[PushItem], results: list[PushResult]
    ) -> list[PushResult]:
        """Certificates HAProxy did not list under our path (no configuration named
        them): pushed again under the name ``show ssl cert`` has for them, if one fits."""
        from dataclasses import replace

        from ocsptool.errors import HAProxyError
        from ocsptool.haproxy import push_staples, show_ssl_certs
        from ocsptool.sources.haproxy_config import learn_names

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
        retried = push_staples(
            self.name,
            [replace(items[i], name=names[items[i].cert_path]) for i in again],
            timeout=self.timeout,
        )
        merged = list(results)
        for i, result in zip(again, retried, strict=True):
            merged[i] = result
        return merged
