"""Property-based fuzzing: every outcome is a result or our own error, never a crash.

Arbitrary bytes and mutated real files go to the bundle parser; arbitrary bytes and
mutated real responses go to the verifier. ``OcspToolError`` is the only exception
allowed out: anything else would be a traceback in a cron mail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ocsptool import certs
from ocsptool import state as statefile
from ocsptool.certs import Bundle, parse_bundle, read_certificates
from ocsptool.errors import CertificateError, OcspToolError, ResponseRejected, StateError
from ocsptool.ocsp import Staple, build_request, verify
from ocsptool.testing.pki import Authority
from ocsptool.testing.responder import Responder

FUZZ = settings(
    max_examples=int(os.environ.get("OCSPTOOL_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_ROOT = Authority.root("Fuzz Root")
_CA = _ROOT.intermediate("Fuzz Intermediate")
_DELEGATED = _ROOT.intermediate("Fuzz Delegating")
_LEAF = _CA.leaf("fuzz.test", ocsp_url="http://127.0.0.1/ocsp", must_staple=True)
_DLEAF = _DELEGATED.leaf("dfuzz.test", ocsp_url="http://127.0.0.1/ocsp")
BUNDLE_PEM = _LEAF.bundle_pem()
BUNDLE = Bundle(Path("fuzz.pem"), _LEAF.cert, _CA.cert, None)
DBUNDLE = Bundle(Path("dfuzz.pem"), _DLEAF.cert, _DELEGATED.cert, None)
NOW = dt.datetime.now(dt.UTC)


def _responses() -> dict[str, bytes]:
    responder = Responder()
    responder.add_issuer(_CA)
    responder.add_issuer(_DELEGATED, _DELEGATED.ocsp_signer())
    out = {}
    for mode in ("good", "revoked", "unknown", "tryLater", "multi"):
        responder.mode = mode
        out[mode] = responder.answer(build_request(BUNDLE))[2]
    responder.mode = "good"
    out["delegated"] = responder.answer(build_request(DBUNDLE))[2]
    return out


RESPONSES = _responses()


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few bytes flipped, inserted, deleted, or cut short."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x30, 0x80, 0x81, 0x82, 0xFF]))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "cut":
            del data[pos:]
    return bytes(data)


# -- the parser ------------------------------------------------------------------------------


def parse_bytes(tmp_path: Path, data: bytes) -> Bundle | None:
    path = tmp_path / "f.pem"
    path.write_bytes(data)
    try:
        return parse_bundle(path)
    except CertificateError:
        return None


@FUZZ
@given(st.binary(max_size=4096))
@example(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
@example(b"-----BEGIN CERTIFICATE-----\n")
@example(b"\x30\x80")
def test_read_certificates_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(CertificateError):
        read_certificates(data)


@FUZZ
@given(data=mutated(BUNDLE_PEM))
def test_parse_bundle_on_mutated_pem(tmp_path: Path, data: bytes) -> None:
    bundle = parse_bytes(tmp_path, data)
    if bundle is not None:
        _use(bundle)


@FUZZ
@given(data=st.data())
def test_parse_bundle_on_mutated_der_inside_pem(tmp_path: Path, data: st.DataObject) -> None:
    """Mutate the DER, then wrap it in valid PEM, so the mutation reaches the X.509 parser."""
    import base64

    from cryptography.hazmat.primitives import serialization

    leaf_der = data.draw(mutated(_LEAF.cert.public_bytes(serialization.Encoding.DER)))
    ca_der = data.draw(mutated(_CA.cert.public_bytes(serialization.Encoding.DER)))
    pem = b"".join(
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(d) + b"-----END CERTIFICATE-----\n"
        for d in (leaf_der, ca_der)
    )
    bundle = parse_bytes(tmp_path, pem)
    if bundle is not None:
        _use(bundle)
    bundle = parse_bytes(tmp_path, leaf_der)  # and as a bare DER file
    if bundle is not None:
        _use(bundle)


def _use(bundle: Bundle) -> None:
    """Everything refresh reads from a parsed bundle must work, or fail with our error."""
    try:
        _ = (bundle.ocsp_url, bundle.fingerprint, bundle.must_staple, bundle.name)
        certs.validity_problem(bundle.leaf, NOW)
        build_request(bundle)
    except OcspToolError:
        pass


# -- the verifier ----------------------------------------------------------------------------


def check(der: bytes, bundle: Bundle = BUNDLE) -> Staple | None:
    try:
        return verify(der, bundle, NOW)
    except ResponseRejected:
        return None


@FUZZ
@given(st.binary(max_size=2048))
def test_verify_on_arbitrary_bytes(der: bytes) -> None:
    assert check(der) is None


@pytest.mark.parametrize("kind", sorted(RESPONSES))
def test_verify_on_mutated_responses(kind: str) -> None:
    original = RESPONSES[kind]
    bundle = DBUNDLE if kind == "delegated" else BUNDLE

    @FUZZ
    @given(mutated(original))
    def run(der: bytes) -> None:
        staple = check(der, bundle)
        if staple is not None:
            # Anything accepted must still be the truth for this certificate.
            assert staple.status in ("good", "revoked")
            assert staple.next_update > NOW

    run()


def test_unmutated_responses_verify() -> None:
    """The fuzzing starts from real, acceptable responses (else it proves little)."""
    assert check(RESPONSES["good"]) is not None
    assert check(RESPONSES["revoked"]) is not None
    assert check(RESPONSES["delegated"], DBUNDLE) is not None


# -- the state file --------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=15,
)
_state_like = st.fixed_dictionaries(
    {"version": st.integers(-1, 3) | _json, "certs": st.dictionaries(st.text(), _json) | _json},
    optional={"extra": _json},
)


@FUZZ
@given(data=st.binary(max_size=512) | _json.map(json.dumps) | _state_like.map(json.dumps))
def test_state_load_on_anything(tmp_path: Path, data: bytes | str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    try:
        loaded = statefile.load(path, NOW)
    except StateError:
        return
    assert all(statefile.valid_record(r) for r in loaded.certs.values())
