"""The HAProxy sink: one runtime API socket, all its staples over one connection."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from ocsptool.sinks import Delivery, DeliveryState, Publication


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
        results = push_staples(
            self.name,
            [PushItem(item.cert_path, item.der, item.issuer_pem, name=item.name) for item in items],
            timeout=self.timeout,
        )
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
