"""The HAProxy sink's table: every push Method to one delivery state (no HAProxy needed;
tests/test_refresh_haproxy.py proves each through a real one), and the update_certs key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsptool import config
from ocsptool.errors import ConfigError
from ocsptool.haproxy import Method, PushResult
from ocsptool.sinks import DeliveryState
from ocsptool.sinks.haproxy import NOT_LOADED, delivery

PATH = "/etc/haproxy/certs/site.pem"
RENEWED = (
    f"{PATH}: HAProxy still holds the certificate with serial 1A, but the file has serial "
    "2B (renewed): reload HAProxy to load it, or use --update-certs"
)
MISMATCH = (
    "HAProxy accepted the staple but does not serve it (read back with `show ssl ocsp-response`)"
)

TABLE = {
    "update, served": (True, Method.UPDATE, None, DeliveryState.PUBLISHED, None),
    "first staple, served": (True, Method.TRANSACTION, None, DeliveryState.PUBLISHED, None),
    "renewed certificate loaded": (True, Method.CERT_LOADED, None, DeliveryState.PUBLISHED, None),
    "read-back mismatch": (False, Method.UPDATE, MISMATCH, DeliveryState.FAILED, MISMATCH),
    "ocsp-update on": (True, Method.HAPROXY_UPDATES, None, DeliveryState.SELF_STAPLED, None),
    "not loaded": (False, Method.NOT_LOADED, "x", DeliveryState.NOT_SERVED, NOT_LOADED),
    "renewed: the file named once": (
        False,
        Method.RENEWED,
        RENEWED,
        DeliveryState.FAILED,
        RENEWED.removeprefix(f"{PATH}: "),
    ),
    "too large": (False, Method.TOO_LARGE, "too large", DeliveryState.FAILED, "too large"),
    "failed without a reason": (
        False,
        Method.TRANSACTION,
        None,
        DeliveryState.FAILED,
        "push failed",
    ),
}


@pytest.mark.parametrize(
    ("ok", "method", "error", "state", "said"), TABLE.values(), ids=TABLE.keys()
)
def test_every_method_has_one_delivery_state(
    ok: bool, method: Method, error: str | None, state: DeliveryState, said: str | None
) -> None:
    result = delivery(PATH, PushResult(PATH, ok, method, error))
    assert (result.key, result.state, result.error, result.method) == (PATH, state, said, method)
    assert result.done is (state is not DeliveryState.FAILED)  # failed ones are retried


def test_update_certs_in_the_config_file(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("update_certs = true\n")
    values = config.load(good)
    assert values == {"update_certs": True}
    mapped = config.default_map(values, ["refresh", "renew", "status", "check"])
    assert [name for name, keys in mapped.items() if keys] == ["refresh", "renew"]
    bad = tmp_path / "bad.toml"
    bad.write_text('update_certs = "yes"\n')
    with pytest.raises(ConfigError) as error:
        config.load(bad)
    assert str(error.value) == f"{bad}: update_certs: expected true or false, got 'yes'"
