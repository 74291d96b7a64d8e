"""ocsptool.kubernetes.client and publish against a real kube-apiserver (RBAC on).

Every test takes a fresh namespace of the session's server (``kube_ns``); the ``job``
user has no rights until a test binds a Role to it, as a cluster would.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import PKI

from ocsptool.errors import UsageError
from ocsptool.kubernetes import client as client_module
from ocsptool.kubernetes.client import KubeClient, check_data_key, check_namespace
from ocsptool.kubernetes.config import ApiConfig, from_kubeconfig
from ocsptool.kubernetes.errors import (
    Forbidden,
    KubeApiError,
    KubeConfigError,
    NotTlsSecret,
    SecretConflict,
    SecretGone,
    Unauthorized,
    Unreachable,
)
from ocsptool.kubernetes.publish import Outcome, publish_staple
from ocsptool.kubernetes.secrets import TlsSecret, get_tls_secret, read_tls_secrets
from ocsptool.limits import Timeouts
from ocsptool.testing.kubernetes import ADMIN, JOB, NOBODY, Admin, KubeApiServer
from ocsptool.testing.pki import Leaf, key_pem
from ocsptool.testing.proxy import Proxy

ALL = ("get", "list", "patch")
STAPLE = b"\x30\x03\x0a\x01\x00"  # the bytes are opaque to the client


class Counted:
    """Each answer the client received (its ``observe`` hook): method, path and body."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.bodies: list[bytes] = []

    def __call__(self, method: str, path: str, status: int, body: bytes) -> None:
        self.requests.append(f"{method} {path}")
        self.bodies.append(body)


def secret_lists(kube: KubeApiServer) -> int:
    """The API server's own count of LIST requests on secrets so far (its /metrics)."""
    text = kube.admin.session.get(kube.url + "/metrics", timeout=30).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("apiserver_request_total{")
        and 'resource="secrets"' in line
        and 'verb="LIST"' in line
    )


def job_config(kube: KubeApiServer, namespace: str, *, user: str = JOB) -> ApiConfig:
    return ApiConfig(
        server=kube.url,
        namespace=namespace,
        origin="test",
        ca_pem=kube.ca_pem,
        token=kube.tokens[user],
    )


@pytest.fixture
def leaf(pki: PKI) -> Leaf:
    return pki.direct.leaf("site.test", ocsp_url="http://127.0.0.1:1/ocsp")


@pytest.fixture
def job(kube: KubeApiServer, kube_ns: str) -> Iterator[KubeClient]:
    """A client as the ``job`` user, allowed get, list and patch on secrets in kube_ns."""
    kube.admin.allow(kube_ns, JOB, verbs=ALL)
    client = KubeClient(job_config(kube, kube_ns))
    yield client
    client.close()


def only(secrets: Iterator[object]) -> TlsSecret:
    (found,) = list(secrets)
    assert isinstance(found, TlsSecret)
    return found


# -- listing ------------------------------------------------------------------------------


def test_1000_tls_secrets_are_listed_in_4_requests(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf
) -> None:
    data = {"tls.crt": leaf.bundle_pem(key=False), "tls.key": key_pem(leaf.key)}
    names = [f"site-{i:04d}" for i in range(1000)]

    # The administrator's session is not shared between threads: one Admin per thread.
    def create_with_own_session(chunk: list[str]) -> None:
        admin = Admin(kube)
        try:
            for name in chunk:
                admin.create_secret(kube_ns, name, data)
        finally:
            admin.session.close()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create_with_own_session, [names[i::4] for i in range(4)]))
    kube.admin.create_secret(kube_ns, "opaque", {"password": b"x"}, type="Opaque")
    kube.admin.allow(kube_ns, JOB, verbs=("list",))
    counted = Counted()
    client = KubeClient(job_config(kube, kube_ns), observe=counted)
    lists = secret_lists(kube)

    started = time.perf_counter()
    found = list(read_tls_secrets(client, kube_ns))
    elapsed = time.perf_counter() - started

    assert sorted(s.name for s in found if isinstance(s, TlsSecret)) == names
    assert secret_lists(kube) - lists == 4  # what the server saw
    assert len(counted.requests) == 4, counted.requests
    assert all(
        "limit=250" in r and "fieldSelector=type%3Dkubernetes.io%2Ftls" in r
        for r in counted.requests
    )
    assert sum("continue=" in r for r in counted.requests) == 3
    print(
        f"\n1,000 TLS Secrets listed and decoded: {len(counted.requests)} requests, {elapsed:.2f} s"
    )


def test_selector_filters_on_the_server(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    for name, labels in (("a", {"gw": "istio"}), ("b", {"gw": "envoy"}), ("c", {})):
        kube.admin.tls_secret(kube_ns, name, leaf, labels=labels)

    def names(selector: str | None) -> list[str]:
        return sorted(
            s["metadata"]["name"] for s in job.list_tls_secrets(kube_ns, selector=selector)
        )

    assert names(None) == ["a", "b", "c"]
    assert names("gw=istio") == ["a"]
    assert names("gw in (istio,envoy)") == ["a", "b"]
    assert names("!gw") == ["c"]
    with pytest.raises(KubeApiError) as bad:
        names("gw in istio")
    assert bad.value.status == 400
    assert str(bad.value).startswith(
        f'kubernetes namespace "{kube_ns}": the API server answered 400 BadRequest: '
        "unable to parse requirement"
    )


def test_only_tls_secrets_are_listed_or_read(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "tls", leaf)
    kube.admin.create_secret(kube_ns, "opaque", {"tls.crt": leaf.bundle_pem()}, type="Opaque")
    kube.admin.create_secret(
        kube_ns,
        "docker",
        {".dockerconfigjson": b'{"auths":{}}'},
        type="kubernetes.io/dockerconfigjson",
    )
    assert [s["metadata"]["name"] for s in job.list_tls_secrets(kube_ns)] == ["tls"]
    with pytest.raises(NotTlsSecret) as refused:
        get_tls_secret(job, kube_ns, "opaque")
    assert str(refused.value) == (
        f"kubernetes secret {kube_ns}/opaque: type 'Opaque' is not kubernetes.io/tls; not read"
    )


def test_an_empty_or_missing_namespace_lists_nothing(
    kube: KubeApiServer, kube_ns: str, job: KubeClient
) -> None:
    assert list(job.list_tls_secrets(kube_ns)) == []
    admin = KubeClient(job_config(kube, kube_ns, user=ADMIN))  # RBAC needs no namespace
    assert list(admin.list_tls_secrets("no-such-namespace")) == []


def test_an_answer_over_the_size_cap_is_refused(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "big", leaf, extra={"padding": b"x" * 20_000})
    small = KubeClient(job.config, max_bytes=10_000)
    with pytest.raises(KubeApiError) as refused:
        list(small.list_tls_secrets(kube_ns))
    assert str(refused.value) == (
        f'kubernetes namespace "{kube_ns}": the API server\'s answer is over 10000 bytes; '
        "narrow it with --selector"
    )


# -- writing one key ----------------------------------------------------------------------


def test_patch_writes_one_key_and_nothing_else(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient, pki: PKI
) -> None:
    kube.admin.tls_secret(
        kube_ns, "site", leaf, ca=pki.direct.pem, extra={"other": b"keep me"}, labels={"a": "b"}
    )
    before = kube.admin.secret_data(kube_ns, "site")
    secret = only(read_tls_secrets(job, kube_ns))

    version = job.patch_secret_key(
        kube_ns, "site", "tls.ocsp-staple", STAPLE, resource_version=secret.resource_version
    )

    stored = kube.admin.secret(kube_ns, "site")
    after = kube.admin.secret_data(kube_ns, "site")
    assert after == {**before, "tls.ocsp-staple": STAPLE}
    for key in ("tls.crt", "tls.key", "ca.crt", "other"):
        assert after[key] == before[key]  # byte for byte
    assert stored["metadata"]["resourceVersion"] == version != secret.resource_version
    assert stored["metadata"]["labels"] == {"a": "b"}
    assert stored["type"] == "kubernetes.io/tls"
    mine = [f for f in stored["metadata"]["managedFields"] if f["manager"] == "ocsptool"]
    assert [f["fieldsV1"] for f in mine] == [{"f:data": {"f:tls.ocsp-staple": {}}}]


def test_the_patch_answer_carries_no_key_material(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    counted = Counted()
    client = KubeClient(job.config, observe=counted)
    client.patch_secret_key(
        kube_ns, "site", "tls.ocsp-staple", STAPLE, resource_version=secret.resource_version
    )
    bodies = counted.bodies
    assert len(bodies) == 1
    answer = json.loads(bodies[0])
    assert (answer["kind"], sorted(answer)) == (
        "PartialObjectMetadata",
        ["apiVersion", "kind", "metadata"],
    )
    assert base64.b64encode(key_pem(leaf.key))[:40] not in bodies[0]


@pytest.mark.parametrize("key", ["tls.crt", "tls.key", "ca.crt", "a/b", "", ".."])
def test_reserved_and_invalid_keys_are_never_written(key: str) -> None:
    with pytest.raises(KubeConfigError) as refused:
        check_data_key(key)
    assert isinstance(refused.value, UsageError)  # a bad --secret-key: exit 2
    if key.startswith(("tls.", "ca.")):
        assert (
            str(refused.value)
            == f"kubernetes: refusing to write the staple to {key!r}; pick a new key"
        )


@pytest.mark.parametrize("key", ["tls.ocsp-staple", "ocsp.staple", "tls.ocsp-resp"])
def test_the_gateways_keys_are_accepted(key: str) -> None:
    assert check_data_key(key) == key


@pytest.mark.parametrize("namespace", ["../kube-system", "A", "a/b", "", "x" * 64])
def test_namespace_names_are_checked_before_any_request(namespace: str) -> None:
    with pytest.raises(KubeConfigError, match="is not a namespace name"):
        check_namespace(namespace)


def test_a_conflict_is_a_clear_409_and_writes_nothing(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    kube.admin.patch_secret(kube_ns, "site", labels={"touched": "yes"})  # between read and write

    with pytest.raises(SecretConflict) as conflict:
        job.patch_secret_key(
            kube_ns, "site", "tls.ocsp-staple", STAPLE, resource_version=secret.resource_version
        )
    assert str(conflict.value) == (
        f"kubernetes secret {kube_ns}/site: changed since it was read (409 Conflict); read it again"
    )
    assert (conflict.value.status, conflict.value.reason) == (409, "Conflict")
    assert "tls.ocsp-staple" not in kube.admin.secret_data(kube_ns, "site")


def test_a_deleted_secret_is_a_clear_404(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    kube.admin.delete_secret(kube_ns, "site")
    with pytest.raises(SecretGone) as gone:
        job.patch_secret_key(
            kube_ns, "site", "tls.ocsp-staple", STAPLE, resource_version=secret.resource_version
        )
    assert str(gone.value) == f"kubernetes secret {kube_ns}/site: not found (deleted)"
    with pytest.raises(SecretGone):
        job.get_secret(kube_ns, "site")
    # ... and the patch did not bring it back
    assert (
        kube.admin.request("GET", f"/api/v1/namespaces/{kube_ns}/secrets/site", ok=(404,))["reason"]
        == "NotFound"
    )


# -- publish: read again and decide again ----------------------------------------------


def test_publish_writes_once(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    done = publish_staple(job, secret, STAPLE)
    assert (done.outcome, done.writes) == (Outcome.WRITTEN, 1)
    assert (
        kube.admin.secret(kube_ns, "site")["metadata"]["resourceVersion"] == done.resource_version
    )
    again = publish_staple(job, only(read_tls_secrets(job, kube_ns)), STAPLE)
    assert (again.outcome, again.writes) == (Outcome.UNCHANGED, 0)


def test_publish_after_an_unrelated_change_reads_again_and_writes(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    kube.admin.patch_secret(kube_ns, "site", labels={"touched": "yes"})
    done = publish_staple(job, secret, STAPLE)
    assert (done.outcome, done.writes) == (Outcome.WRITTEN, 2)
    assert kube.admin.secret_data(kube_ns, "site")["tls.ocsp-staple"] == STAPLE


def test_a_renewed_certificate_gets_no_staple_for_the_old_one(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient, pki: PKI
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    renewed = pki.direct.leaf("site.test", ocsp_url="http://127.0.0.1:1/ocsp")
    kube.admin.patch_secret(
        kube_ns, "site", {"tls.crt": renewed.bundle_pem(key=False), "tls.key": key_pem(renewed.key)}
    )
    done = publish_staple(job, secret, STAPLE)
    assert (done.outcome, done.writes) == (Outcome.CERT_CHANGED, 1)
    assert "tls.ocsp-staple" not in kube.admin.secret_data(kube_ns, "site")


def test_a_new_chain_for_the_same_leaf_still_gets_the_staple(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf, chain=False)
    secret = only(read_tls_secrets(job, kube_ns))
    kube.admin.patch_secret(kube_ns, "site", {"tls.crt": leaf.bundle_pem(key=False)})
    done = publish_staple(job, secret, STAPLE)
    assert (done.outcome, done.writes) == (Outcome.WRITTEN, 2)


def test_publish_into_a_deleted_or_retyped_secret_writes_nothing(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "gone", leaf)
    kube.admin.tls_secret(kube_ns, "retyped", leaf)
    gone, retyped = sorted(
        (s for s in read_tls_secrets(job, kube_ns) if isinstance(s, TlsSecret)),
        key=lambda s: s.name,
    )
    kube.admin.delete_secret(kube_ns, "gone")
    kube.admin.delete_secret(kube_ns, "retyped")
    kube.admin.create_secret(kube_ns, "retyped", {"tls.crt": b"x"}, type="Opaque")

    assert publish_staple(job, gone, STAPLE).outcome is Outcome.GONE
    assert publish_staple(job, retyped, STAPLE).outcome is Outcome.NOT_TLS
    assert kube.admin.secret_data(kube_ns, "retyped") == {"tls.crt": b"x"}


def test_publish_never_retries_blindly(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    """A Secret that changes before every write: three conditional writes, then an error."""
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    asked: list[str] = []

    def busy(fresh: TlsSecret) -> bool:
        asked.append(fresh.resource_version)
        kube.admin.patch_secret(kube_ns, "site", labels={"n": str(len(asked))})
        return True

    kube.admin.patch_secret(kube_ns, "site", labels={"n": "0"})
    with pytest.raises(SecretConflict) as conflict:
        publish_staple(job, secret, STAPLE, still_wanted=busy)
    assert str(conflict.value) == (
        f"kubernetes secret {kube_ns}/site: changed during each of 3 writes; left for the next run"
    )
    assert len(asked) == 2  # read again after the first and second conflicts
    assert "tls.ocsp-staple" not in kube.admin.secret_data(kube_ns, "site")


def test_publish_asks_again_before_overwriting_another_staple(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    secret = only(read_tls_secrets(job, kube_ns))
    kube.admin.patch_secret(kube_ns, "site", {"tls.ocsp-staple": b"newer"})
    done = publish_staple(job, secret, STAPLE, still_wanted=lambda fresh: fresh.staple != b"newer")
    assert (done.outcome, done.writes) == (Outcome.DECLINED, 1)
    assert kube.admin.secret_data(kube_ns, "site")["tls.ocsp-staple"] == b"newer"


# -- RBAC ------------------------------------------------------------------------------


def test_403_names_the_verb_the_namespace_and_the_rule(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    other = kube.admin.namespace("other")
    kube.admin.tls_secret(other, "site", leaf)
    with pytest.raises(Forbidden) as denied:
        list(job.list_tls_secrets(other))
    assert str(denied.value) == (
        f'kubernetes namespace "{other}": forbidden: User "job" cannot list secrets; '
        f'add to a Role in namespace "{other}" bound to User "job": '
        'rules: - apiGroups: [""] resources: ["secrets"] verbs: ["list"]'
    )
    assert (denied.value.verb, denied.value.namespace, denied.value.user) == ("list", other, "job")


def test_403_on_patch_when_the_role_only_lists(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf
) -> None:
    kube.admin.allow(kube_ns, JOB, verbs=("list", "get"))
    kube.admin.tls_secret(kube_ns, "site", leaf)
    client = KubeClient(job_config(kube, kube_ns))
    secret = only(read_tls_secrets(client, kube_ns))
    with pytest.raises(Forbidden) as denied:
        publish_staple(client, secret, STAPLE)
    assert str(denied.value).endswith('verbs: ["patch"]')
    assert "cannot patch secrets" in str(denied.value)
    assert "tls.ocsp-staple" not in kube.admin.secret_data(kube_ns, "site")


def test_401_for_a_token_the_server_does_not_know(kube: KubeApiServer, kube_ns: str) -> None:
    config = ApiConfig(
        server=kube.url, namespace=kube_ns, origin="kubeconfig x", ca_pem=kube.ca_pem, token="nope"
    )
    with pytest.raises(Unauthorized) as denied:
        list(KubeClient(config).list_tls_secrets(kube_ns))
    assert str(denied.value) == (
        f'kubernetes namespace "{kube_ns}": unauthorized (401): {kube.url} rejects the '
        "credentials of kubeconfig x"
    )


def test_a_rotated_token_file_is_read_again(
    kube: KubeApiServer, kube_ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.admin.allow(kube_ns, JOB, verbs=("list",))
    token_file = tmp_path / "token"
    token_file.write_text(kube.tokens[NOBODY])
    config = ApiConfig(
        server=kube.url,
        namespace=kube_ns,
        origin="test",
        ca_pem=kube.ca_pem,
        token=kube.tokens[NOBODY],
        token_file=token_file,
    )
    client = KubeClient(config)
    with pytest.raises(Forbidden, match='User "nobody"'):
        list(client.list_tls_secrets(kube_ns))
    token_file.write_text(kube.tokens[JOB] + "\n")  # the kubelet rotated it
    monkeypatch.setattr(client_module, "TOKEN_REREAD_SECONDS", 0.0)
    assert list(client.list_tls_secrets(kube_ns)) == []


# -- no answer -----------------------------------------------------------------------------


def test_an_untrusted_server_certificate_fails_tls(
    kube: KubeApiServer, kube_ns: str, tmp_path: Path
) -> None:
    config = from_kubeconfig([kube.kubeconfig(tmp_path / "config", namespace=kube_ns, ca="none")])
    with pytest.raises(Unreachable) as failed:
        list(KubeClient(config).list_tls_secrets(kube_ns))
    assert str(failed.value).startswith(
        f'kubernetes namespace "{kube_ns}": {kube.url}: TLS failed: certificate verify failed'
    )
    assert str(failed.value).endswith("check certificate-authority")


def test_a_wrong_tls_server_name_fails_and_the_right_one_works(
    kube: KubeApiServer, kube_ns: str, tmp_path: Path
) -> None:
    kube.admin.allow(kube_ns, JOB, verbs=("list",))
    wrong = from_kubeconfig(
        [kube.kubeconfig(tmp_path / "a", namespace=kube_ns, tls_server_name="example.com")]
    )
    with pytest.raises(Unreachable, match="TLS failed: certificate verify failed"):
        list(KubeClient(wrong).list_tls_secrets(kube_ns))
    # The serving certificate names kubernetes.default.svc: reached by IP, verified by name.
    right = from_kubeconfig(
        [
            kube.kubeconfig(
                tmp_path / "b", namespace=kube_ns, tls_server_name="kubernetes.default.svc"
            )
        ]
    )
    assert list(KubeClient(right).list_tls_secrets(kube_ns)) == []


def test_a_refused_connection_is_one_line(unused_port: int) -> None:
    config = ApiConfig(server=f"https://127.0.0.1:{unused_port}", namespace="x", origin="t")
    with pytest.raises(Unreachable) as failed:
        list(KubeClient(config).list_tls_secrets("x"))
    assert str(failed.value) == (
        f'kubernetes namespace "x": cannot connect to https://127.0.0.1:{unused_port} '
        "(connection refused)"
    )


def test_a_server_that_never_answers_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        config = ApiConfig(server=f"https://127.0.0.1:{port}", namespace="x", origin="t")
        client = KubeClient(config, timeouts=Timeouts(connect=1.0, read=0.3, total=2.0))
        started = time.monotonic()
        with pytest.raises(Unreachable) as failed:
            list(client.list_tls_secrets("x"))
        assert time.monotonic() - started < 2.0
    assert str(failed.value) == (
        f'kubernetes namespace "x": https://127.0.0.1:{port} did not answer in time '
        "(1s to connect, 0.3s to read)"
    )


# -- proxies: kubeconfig proxy-url, else $HTTPS_PROXY unless $NO_PROXY -------------------


def test_proxy_url_tunnels_and_still_verifies_the_server(
    kube: KubeApiServer, kube_ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube.admin.allow(kube_ns, JOB, verbs=("list",))
    path = kube.kubeconfig(tmp_path / "config", namespace=kube_ns)
    proxy = Proxy()
    with proxy.serving() as url:
        config = replace(from_kubeconfig([path]), proxy_url=url)
        assert list(KubeClient(config).list_tls_secrets(kube_ns)) == []
        untrusted = replace(config, ca_pem=None)
        with pytest.raises(Unreachable, match="TLS failed: certificate verify failed"):
            list(KubeClient(untrusted).list_tls_secrets(kube_ns))
        # $HTTPS_PROXY applies without proxy-url, and $NO_PROXY exempts the server.
        monkeypatch.setenv("HTTPS_PROXY", url)
        plain = from_kubeconfig([path])
        assert list(KubeClient(plain).list_tls_secrets(kube_ns)) == []
        tunnels = len(proxy.carried)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert list(KubeClient(plain).list_tls_secrets(kube_ns)) == []
    assert proxy.carried == [f"CONNECT 127.0.0.1:{kube.port}"] * 3
    assert tunnels == 3


def test_secrets_come_back_without_their_private_key(
    kube: KubeApiServer, kube_ns: str, leaf: Leaf, job: KubeClient
) -> None:
    kube.admin.tls_secret(kube_ns, "site", leaf)
    (listed,) = job.list_tls_secrets(kube_ns)
    got = job.get_secret(kube_ns, "site")
    assert sorted(listed["data"]) == sorted(got["data"]) == ["tls.crt"]
    assert "tls.key" in kube.admin.secret_data(kube_ns, "site")  # still there, untouched
