"""ocsptool.kubernetes.secrets: a TLS Secret read like a TLS server reads it.

Secrets are made on the real API server and read back through the client, so the bytes
decoded are the bytes the API serves.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from conftest import PKI

from ocsptool.certs import ocsp_url
from ocsptool.errors import CertificateError
from ocsptool.kubernetes.client import KubeClient
from ocsptool.kubernetes.config import ApiConfig
from ocsptool.kubernetes.errors import NotTlsSecret
from ocsptool.kubernetes.secrets import (
    TlsSecret,
    Unreadable,
    certificates,
    decode_secret,
    read_tls_secrets,
    same_leaf,
)
from ocsptool.testing.kubernetes import JOB, KubeApiServer
from ocsptool.testing.pki import Leaf

URL = "http://127.0.0.1:1/ocsp"


@pytest.fixture
def job(kube: KubeApiServer, kube_ns: str) -> Iterator[KubeClient]:
    kube.admin.allow(kube_ns, JOB, verbs=("list",))
    config = ApiConfig(
        server=kube.url, namespace=kube_ns, origin="t", ca_pem=kube.ca_pem, token=kube.tokens[JOB]
    )
    client = KubeClient(config)
    yield client
    client.close()


def read(job: KubeClient, namespace: str, key: str = "tls.ocsp-staple") -> dict[str, TlsSecret]:
    found = list(read_tls_secrets(job, namespace, staple_key=key))
    assert all(isinstance(s, TlsSecret) for s in found), found
    return {s.name: s for s in found if isinstance(s, TlsSecret)}


def test_the_issuer_comes_from_the_chain_then_ca_crt_else_none(
    kube: KubeApiServer, kube_ns: str, job: KubeClient, pki: PKI
) -> None:
    chained = pki.direct.leaf("chained.test", ocsp_url=URL)
    ca_only = pki.direct.leaf("ca-only.test", ocsp_url=URL)
    alone = pki.direct.leaf("alone.test", ocsp_url=URL)
    no_ocsp = pki.direct.leaf("no-ocsp.test", ocsp_url=None)
    kube.admin.tls_secret(kube_ns, "chained", chained, ca=pki.root.pem)
    kube.admin.tls_secret(kube_ns, "ca-only", ca_only, chain=False, ca=pki.direct.pem)
    kube.admin.tls_secret(kube_ns, "alone", alone, chain=False, ca=pki.root.pem)
    kube.admin.tls_secret(kube_ns, "no-ocsp", no_ocsp)

    secrets = read(job, kube_ns)

    found = {name: certificates(secret) for name, secret in secrets.items()}
    assert found["chained"].leaf == chained.cert
    assert (found["chained"].issuer, found["chained"].issuer_origin) == (pki.direct.cert, "chain")
    assert (found["ca-only"].issuer, found["ca-only"].issuer_origin) == (pki.direct.cert, "ca.crt")
    assert (found["alone"].issuer, found["alone"].issuer_origin) == (None, None)
    assert ocsp_url(found["chained"].leaf) == URL
    assert ocsp_url(found["no-ocsp"].leaf) is None
    assert found["no-ocsp"].issuer == pki.direct.cert
    assert secrets["chained"].ca_crt == pki.root.pem
    assert secrets["no-ocsp"].ca_crt is None


def test_the_staple_is_read_from_the_chosen_key(
    kube: KubeApiServer, kube_ns: str, job: KubeClient, pki: PKI
) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    kube.admin.tls_secret(
        kube_ns, "site", leaf, extra={"tls.ocsp-staple": b"istio", "ocsp.staple": b"envoy"}
    )
    stored = kube.admin.secret(kube_ns, "site")["metadata"]
    secret = read(job, kube_ns)["site"]
    assert secret.staple == b"istio"
    assert (secret.uid, secret.resource_version) == (stored["uid"], stored["resourceVersion"])
    assert (secret.ref, str(secret)) == (f"{kube_ns}/site", f"kubernetes secret {kube_ns}/site")
    assert read(job, kube_ns, "ocsp.staple")["site"].staple == b"envoy"
    assert read(job, kube_ns, "tls.ocsp-resp")["site"].staple is None
    assert secret.tls_crt == leaf.bundle_pem(key=False)
    assert "tls.key" not in repr(secret)


def test_a_bad_secret_is_unreadable_and_the_others_go_on(
    kube: KubeApiServer, kube_ns: str, job: KubeClient, pki: PKI
) -> None:
    kube.admin.create_secret(kube_ns, "a-garbage", {"tls.crt": b"not a cert", "tls.key": b"k"})
    kube.admin.tls_secret(kube_ns, "b-good", pki.direct.leaf("good.test", ocsp_url=URL))
    first, second = list(read_tls_secrets(job, kube_ns))
    assert isinstance(first, TlsSecret)  # decoding reads bytes; parsing comes later
    with pytest.raises(CertificateError) as bad:
        certificates(first)
    assert str(bad.value) == (
        f"kubernetes secret {kube_ns}/a-garbage: tls.crt: not a certificate (neither PEM nor DER)"
    )
    assert isinstance(second, TlsSecret)
    assert certificates(second).leaf.subject.rfc4514_string().startswith("CN=good.test")


def item(data: dict[str, str], type_: str = "kubernetes.io/tls") -> dict[str, object]:
    return {
        "metadata": {"namespace": "ns", "name": "s", "uid": "u", "resourceVersion": "7"},
        "type": type_,
        "data": data,
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_tls_key_is_never_decoded(pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    secret = decode_secret(
        item({"tls.crt": b64(leaf.bundle_pem(key=False)), "tls.key": "%% not base64 %%"})
    )
    assert certificates(secret).leaf == leaf.cert


def test_other_types_are_refused_unread() -> None:
    with pytest.raises(NotTlsSecret) as refused:
        decode_secret(item({"tls.crt": "%%"}, "Opaque"))
    assert (
        str(refused.value)
        == "kubernetes secret ns/s: type 'Opaque' is not kubernetes.io/tls; not read"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "tls.crt is empty"),
        ({"tls.crt": "%%"}, "tls.crt is not base64"),
        ({"tls.crt": b64(b"x"), "ca.crt": "%%"}, "ca.crt is not base64"),
        ({"tls.crt": b64(b"x"), "tls.ocsp-staple": 5}, "tls.ocsp-staple is not a string"),
    ],
)
def test_undecodable_data_is_one_line(data: dict[str, str], message: str) -> None:
    with pytest.raises(CertificateError) as bad:
        decode_secret(item(data))
    assert str(bad.value) == f"kubernetes secret ns/s: {message}"


def test_a_chain_that_starts_with_a_ca_is_refused(pki: PKI) -> None:
    leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    secret = decode_secret(item({"tls.crt": b64(leaf.bundle_pem(key=False, leaf_last=True))}))
    with pytest.raises(CertificateError) as bad:
        certificates(secret)
    assert str(bad.value) == (
        "kubernetes secret ns/s: tls.crt starts with a CA certificate "
        "(CN=Direct Intermediate); put the server certificate first"
    )


def test_same_leaf_ignores_the_chain(pki: PKI) -> None:
    leaf: Leaf = pki.direct.leaf("site.test", ocsp_url=URL)
    other = pki.direct.leaf("site.test", ocsp_url=URL)
    with_chain, bare = leaf.bundle_pem(key=False), leaf.bundle_pem(key=False, chain=False)
    assert same_leaf(with_chain, bare)
    assert not same_leaf(with_chain, other.bundle_pem(key=False))
    assert not same_leaf(with_chain, b"garbage")


def test_unreadable_says_which_secret() -> None:
    assert (
        str(Unreadable("ns", "s", "tls.crt is empty")) == "kubernetes secret ns/s: tls.crt is empty"
    )
