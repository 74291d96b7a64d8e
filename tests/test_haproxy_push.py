"""The runtime-API client against a REAL HAProxy, proven with real TLS handshakes.

Every push is followed by a TLS handshake that asks for a staple, and the stapled bytes
must be the ones pushed. Fake servers stand in only for sockets that misbehave in ways a
real HAProxy will not on demand (never answering, hanging up).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CertDir
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsptool.haproxy import (
    NO_SLOT,
    NOT_LOADED,
    PushItem,
    PushResult,
    certid_key,
    dialect_for,
    push_staples,
    response_certid_key,
    show_ocsp_responses,
    show_ssl_certs,
)
from ocsptool.testing.haproxy import HAProxy, tls_staple
from ocsptool.testing.pki import Authority, Leaf
from ocsptool.testing.responder import Responder

pytestmark = pytest.mark.haproxy

StartHAProxy = Callable[..., HAProxy]


def staple(responder: Responder, leaf: Leaf, mode: str | None = None) -> bytes:
    """A response signed by the test responder for ``leaf`` (SHA-1 CertID), without HTTP."""
    if mode is not None:
        responder.modes[leaf.cert.serial_number] = mode
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf.cert, leaf.chain[0], hashes.SHA1())
    status, _headers, body = responder.answer(
        request.build().public_bytes(serialization.Encoding.DER)
    )
    assert status == 200
    return body


def item(cert_dir: CertDir, name: str, der: bytes, issuer: Authority | None = None) -> PushItem:
    path = str(cert_dir.path / f"{name}.pem")
    return PushItem(path, der, issuer.pem if issuer else None)


def served(proxy: HAProxy, name: str) -> bytes | None:
    return tls_staple(proxy.port, f"{name}.test")


def ok(path: str, method: str) -> PushResult:
    return PushResult(path, True, method, None)


# -- the three ways a staple gets in ------------------------------------------------------


def test_update_replaces_the_staple_of_a_cert_loaded_with_an_ocsp_file(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("site")
    old = staple(responder, cert_dir.leaves["site"])
    cert_dir.staple("site").write_bytes(old)
    proxy = start_haproxy(cert_dir.path)
    assert served(proxy, "site") == old
    new = staple(responder, cert_dir.leaves["site"], "revoked")

    results = push_staples(proxy.socket, [item(cert_dir, "site", new)])

    assert results == [ok(str(cert_dir.path / "site.pem"), "update")]
    assert served(proxy, "site") == new


def test_first_staple_without_reload_uses_a_transaction(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("fresh")  # chain in the bundle, no .ocsp when HAProxy starts
    proxy = start_haproxy(cert_dir.path)
    assert served(proxy, "fresh") is None
    first = staple(responder, cert_dir.leaves["fresh"])

    assert push_staples(proxy.socket, [item(cert_dir, "fresh", first)]) == [
        ok(str(cert_dir.path / "fresh.pem"), "transaction")
    ]
    assert served(proxy, "fresh") == first
    assert show_ssl_certs(proxy.socket)[1] == []  # nothing left open

    # The slot now exists, so the next push is a plain update.
    second = staple(responder, cert_dir.leaves["fresh"], "revoked")
    assert push_staples(proxy.socket, [item(cert_dir, "fresh", second)])[0].method == "update"
    assert served(proxy, "fresh") == second


def test_first_staple_with_issuer_from_issuer_file(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("lone", chain=False)
    (cert_dir.path / "lone.pem.issuer").write_bytes(cert_dir.pki.direct.pem)
    proxy = start_haproxy(cert_dir.path)
    der = staple(responder, cert_dir.leaves["lone"])

    # Without the issuer in the transaction HAProxy cannot compute the CertID (checked trap).
    [failed] = push_staples(proxy.socket, [item(cert_dir, "lone", der)])
    assert not failed.ok
    assert failed.method == "transaction"
    assert failed.error is not None
    assert "impossible to compute the OCSP certificate ID" in failed.error
    assert "\n" not in failed.error
    assert show_ssl_certs(proxy.socket)[1] == []

    results = push_staples(proxy.socket, [item(cert_dir, "lone", der, cert_dir.pki.direct)])

    assert results == [ok(str(cert_dir.path / "lone.pem"), "transaction")]
    assert served(proxy, "lone") == der


def test_issuer_pem_with_blank_lines_and_crlf_still_ends_the_payload_once(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("lone", chain=False)
    (cert_dir.path / "lone.pem.issuer").write_bytes(cert_dir.pki.direct.pem)
    proxy = start_haproxy(cert_dir.path)
    der = staple(responder, cert_dir.leaves["lone"])
    messy = b"\r\n" + cert_dir.pki.direct.pem.replace(b"\n", b"\r\n") + b"\n\n\n"

    results = push_staples(proxy.socket, [PushItem(str(cert_dir.path / "lone.pem"), der, messy)])

    assert results == [ok(str(cert_dir.path / "lone.pem"), "transaction")]
    assert served(proxy, "lone") == der


def test_certificate_haproxy_has_not_loaded(
    tmp_path: Path, cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("loaded")
    proxy = start_haproxy(cert_dir.path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stranger = cert_dir.pki.direct.leaf("stranger.test", ocsp_url=responder.url)
    stranger_path = stranger.write_bundle(elsewhere / "stranger.pem")
    good = staple(responder, cert_dir.leaves["loaded"])

    results = push_staples(
        proxy.socket,
        [
            PushItem(str(stranger_path), staple(responder, stranger), None),
            item(cert_dir, "loaded", good),
        ],
    )

    assert results == [
        PushResult(str(stranger_path), False, "not-loaded", NOT_LOADED),
        ok(str(cert_dir.path / "loaded.pem"), "transaction"),
    ]
    assert served(proxy, "loaded") == good


def test_symlinked_path_is_matched_to_the_path_haproxy_loaded(
    tmp_path: Path, cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("real")
    proxy = start_haproxy(cert_dir.path)
    link = tmp_path / "link.pem"
    link.symlink_to(cert_dir.path / "real.pem")
    der = staple(responder, cert_dir.leaves["real"])

    assert push_staples(proxy.socket, [PushItem(str(link), der, None)]) == [
        ok(str(link), "transaction")
    ]
    assert served(proxy, "real") == der


# -- HAProxy's refusals: one item fails, the others still go in ---------------------------


def test_refused_responses_fail_alone_with_haproxys_reply(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    names = ["good", "unknown", "expired", "garbage", "wrong_id", "sha256", "fresh"]
    for name in names:
        cert_dir.add(name)
        if name != "fresh":  # "fresh" gets its first staple by transaction in the same batch
            cert_dir.staple(name).write_bytes(staple(responder, cert_dir.leaves[name]))
    proxy = start_haproxy(cert_dir.path)
    leaves = cert_dir.leaves
    ders = {
        "good": staple(responder, leaves["good"], "revoked"),
        "unknown": staple(responder, leaves["unknown"], "unknown"),
        "expired": staple(responder, leaves["expired"], "expired"),
        "garbage": b"not an OCSP response",
        "wrong_id": staple(responder, leaves["wrong_id"], "other_cert"),
        "sha256": staple(responder, leaves["sha256"], "sha256"),
        "fresh": staple(responder, leaves["fresh"]),
    }

    results = push_staples(proxy.socket, [item(cert_dir, n, ders[n]) for n in names])

    by_name = dict(zip(names, results, strict=True))
    assert by_name["good"] == ok(str(cert_dir.path / "good.pem"), "update")
    assert by_name["fresh"] == ok(str(cert_dir.path / "fresh.pem"), "transaction")
    errors = {name: result.error for name, result in by_name.items() if not result.ok}
    serial = leaves["wrong_id"].cert.serial_number + 1
    expired = ocsp.load_der_ocsp_response(ders["expired"]).next_update_utc
    assert expired is not None
    assert errors == {
        "unknown": "HAProxy answered: OCSP single response: certificate status is unknown.",
        "expired": f"the OCSP response expired at {expired:%Y-%m-%d %H:%M:%S} UTC (its "
        "nextUpdate): HAProxy would not serve it",
        "garbage": "HAProxy answered: Unable to parse OCSP response.",
        "wrong_id": f"HAProxy answered: {NO_SLOT} (the OCSP response is for serial "
        f"{serial:x}, not for this certificate)",
        "sha256": f"HAProxy answered: {NO_SLOT} (the OCSP response's CertID uses SHA256; "
        "HAProxy only matches SHA-1 CertIDs)",
    }
    assert served(proxy, "good") == ders["good"]
    assert served(proxy, "fresh") == ders["fresh"]
    assert show_ssl_certs(proxy.socket)[1] == []


# -- transactions left open ----------------------------------------------------------------


def open_transaction(proxy: HAProxy, path: Path, der: bytes) -> None:
    """What a run killed halfway leaves behind: a transaction nobody commits."""
    b64 = base64.b64encode(der).decode()
    reply = proxy.command(f"set ssl cert {path}.ocsp <<\n{b64}\n")
    assert reply.strip() == f"Transaction created for certificate {path}!"


def test_leftover_transaction_on_our_certificate_is_aborted_first(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    path = cert_dir.add("fresh")
    proxy = start_haproxy(cert_dir.path)
    der = staple(responder, cert_dir.leaves["fresh"])
    open_transaction(proxy, path, staple(responder, cert_dir.leaves["fresh"], "revoked"))
    assert show_ssl_certs(proxy.socket)[1] == [str(path)]

    assert push_staples(proxy.socket, [item(cert_dir, "fresh", der)]) == [
        ok(str(path), "transaction")
    ]
    assert show_ssl_certs(proxy.socket)[1] == []
    assert served(proxy, "fresh") == der


def test_foreign_open_transaction_is_left_alone_and_blocks_only_transactions(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("slotted")
    cert_dir.staple("slotted").write_bytes(staple(responder, cert_dir.leaves["slotted"]))
    cert_dir.add("fresh")
    other = cert_dir.add("other")
    proxy = start_haproxy(cert_dir.path)
    open_transaction(proxy, other, staple(responder, cert_dir.leaves["other"]))
    slotted = staple(responder, cert_dir.leaves["slotted"], "revoked")

    results = push_staples(
        proxy.socket,
        [
            item(cert_dir, "slotted", slotted),
            item(cert_dir, "fresh", staple(responder, cert_dir.leaves["fresh"])),
        ],
    )

    assert results[0] == ok(str(cert_dir.path / "slotted.pem"), "update")
    assert results[1] == PushResult(
        str(cert_dir.path / "fresh.pem"),
        False,
        "transaction",
        f"another certificate transaction is open in HAProxy on {other}; try again later",
    )
    assert show_ssl_certs(proxy.socket)[1] == [str(other)]  # untouched
    assert served(proxy, "slotted") == slotted
    assert served(proxy, "fresh") is None


# -- one connection, pipelined ---------------------------------------------------------------


def cumulated_connections(proxy: HAProxy) -> int:
    """HAProxy's CumConns (the stats socket counts too); reading it costs one connection."""
    for line in proxy.command("show info").splitlines():
        if line.startswith("CumConns:"):
            return int(line.split(":")[1])
    raise AssertionError("no CumConns in show info")


def test_a_whole_batch_uses_one_connection(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    responder.presign = True
    names = [f"site{i}" for i in range(150)]
    for name in names:
        cert_dir.add(name)
        if name != "site0":
            cert_dir.staple(name).write_bytes(b"")  # an empty .ocsp reserves the slot
    proxy = start_haproxy(cert_dir.path)
    ders = {name: staple(responder, cert_dir.leaves[name]) for name in names}
    before = cumulated_connections(proxy)

    results = push_staples(proxy.socket, [item(cert_dir, n, ders[n]) for n in names])

    assert cumulated_connections(proxy) == before + 2  # our one, and this show info
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert [r.method for r in results] == ["transaction"] + ["update"] * (len(names) - 1)
    for name in names[::25]:
        assert served(proxy, name) == ders[name]


def good_response(leaf: Leaf, ca: Authority, now: dt.datetime) -> ocsp.OCSPResponseBuilder:
    """A builder of a "good" response for ``leaf``, valid for 3 days from ``now``."""
    return ocsp.OCSPResponseBuilder().add_response(
        cert=leaf.cert,
        issuer=ca.cert,
        algorithm=hashes.SHA1(),
        cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=now - dt.timedelta(minutes=1),
        next_update=now + dt.timedelta(days=3),
        revocation_time=None,
        revocation_reason=None,
    )


def big_staple(cert_dir: CertDir, leaf: Leaf, b64_size: int) -> bytes:
    """A valid response of exactly ``b64_size`` bytes in base64, padded with a long nonce."""
    ca = cert_dir.pki.direct
    now = dt.datetime.now(dt.UTC)

    def build(padding: int) -> bytes:
        builder = (
            good_response(leaf, ca, now)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
            .add_extension(x509.OCSPNonce(b"\xa5" * padding), critical=False)
        )
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    padding = b64_size * 3 // 4
    while len(base64.b64encode(der := build(padding))) > b64_size:
        padding -= 1
    assert len(base64.b64encode(der)) == b64_size
    return der


def test_large_responses_use_the_payload_form_and_too_large_fails_alone(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    for name in ("small", "large", "huge"):
        cert_dir.add(name)
        cert_dir.staple(name).write_bytes(b"")
    proxy = start_haproxy(cert_dir.path)
    dialect = dialect_for(proxy.command("show version"))
    small = staple(responder, cert_dir.leaves["small"])
    # Larger than the window, so it goes alone in the payload form; fits every version.
    large = big_staple(cert_dir, cert_dir.leaves["large"], 16300)
    # Beyond tune.bufsize on 2.6 to 3.2; 3.4 takes payloads up to 128 KB.
    huge = big_staple(cert_dir, cert_dir.leaves["huge"], 17000)

    results = push_staples(
        proxy.socket,
        [
            item(cert_dir, "huge", huge),
            item(cert_dir, "large", large),
            item(cert_dir, "small", small),
        ],
    )

    assert results[1:] == [
        ok(str(cert_dir.path / "large.pem"), "update"),
        ok(str(cert_dir.path / "small.pem"), "update"),
    ]
    if dialect.max_command > 17100:
        assert results[0] == ok(str(cert_dir.path / "huge.pem"), "update")
        assert served(proxy, "huge") == huge
    else:
        assert results[0].method == "too-large"
        assert results[0].error == dialect.too_large(17000 + len("set ssl ocsp-response <<\n\n\n"))
        assert "tune.bufsize" in results[0].error
    assert served(proxy, "large") == large
    assert served(proxy, "small") == small
    assert proxy.running


def test_tcp_socket_address(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("site")
    proxy = start_haproxy(cert_dir.path, tcp_socket=True)
    assert proxy.tcp_address is not None
    der = staple(responder, cert_dir.leaves["site"])

    assert push_staples(proxy.tcp_address, [item(cert_dir, "site", der)])[0].ok
    assert served(proxy, "site") == der


# -- reading what HAProxy serves -----------------------------------------------------------


def test_show_ocsp_responses_and_certid_key_match_haproxy(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("good")
    cert_dir.add("revoked")
    cert_dir.add("empty")
    cert_dir.staple("empty").write_bytes(b"")
    proxy = start_haproxy(cert_dir.path)
    ders = {
        "good": staple(responder, cert_dir.leaves["good"]),
        "revoked": staple(responder, cert_dir.leaves["revoked"], "revoked"),
    }
    push_staples(proxy.socket, [item(cert_dir, n, d) for n, d in ders.items()])

    staples = show_ocsp_responses(proxy.socket)

    issuer = ocsp.load_der_ocsp_response(ders["good"])
    for name in ("good", "revoked", "empty"):
        serial = cert_dir.leaves[name].cert.serial_number
        key = certid_key(issuer.issuer_name_hash, issuer.issuer_key_hash, serial)
        assert int(staples[key].serial, 16) == serial  # printed as its bytes: width varies
    for name, der in ders.items():
        response = ocsp.load_der_ocsp_response(der)
        entry = staples[response_certid_key(der)]
        assert entry.status == name
        assert entry.this_update == response.this_update_utc
        assert entry.next_update == response.next_update_utc
    empty_key = certid_key(
        issuer.issuer_name_hash, issuer.issuer_key_hash, cert_dir.leaves["empty"].cert.serial_number
    )
    assert staples[empty_key].status == ""
    assert staples[empty_key].next_update is None


def test_certid_key_encodes_serials_as_der_integers() -> None:
    name_hash, key_hash = bytes(range(20)), bytes(range(20, 40))
    assert certid_key(name_hash, key_hash, 1) == (
        "303a300906052b0e03021a0500" + "0414" + name_hash.hex() + "0414" + key_hash.hex() + "020101"
    )
    assert certid_key(name_hash, key_hash, 0x7F).endswith("02017f")
    assert certid_key(name_hash, key_hash, 0x80).endswith("02020080")  # sign byte
    assert certid_key(name_hash, key_hash, 0x100).endswith("02020100")
    long_serial = certid_key(name_hash, key_hash, 1 << 1000)  # DER long-form lengths
    assert long_serial.startswith("308")


def test_show_ssl_certs_lists_loaded_paths_and_open_transactions(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    a, b = cert_dir.add("a"), cert_dir.add("b")
    proxy = start_haproxy(cert_dir.path)
    assert show_ssl_certs(proxy.socket) == ([str(a), str(b)], [])
    open_transaction(proxy, b, staple(responder, cert_dir.leaves["b"]))
    assert show_ssl_certs(proxy.socket) == ([str(a), str(b)], [str(b)])


# -- the harness itself --------------------------------------------------------------------


def test_restart_rereads_ocsp_files_and_crt_list(
    tmp_path: Path, cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    path = cert_dir.add("site")
    crt_list = tmp_path / "crt-list.txt"
    crt_list.write_text(f"{path}\n")
    proxy = start_haproxy(crt_list, crt_list=True)
    assert served(proxy, "site") is None
    der = staple(responder, cert_dir.leaves["site"])
    cert_dir.staple("site").write_bytes(der)

    proxy.restart()

    assert served(proxy, "site") == der


# -- replies that are not success, though they say so ---------------------------------------


def test_content_will_be_ignored_in_a_commit_is_a_failure(
    tmp_path: Path, cert_dir: CertDir, responder: Responder
) -> None:
    """3.2+ commit a staple they refuse with ``Content will be ignored.`` and ``Success!``."""
    from test_haproxy_readers import scripted

    path = str(cert_dir.add("site"))
    der = staple(responder, cert_dir.leaves["site"])
    b64 = base64.b64encode(der).decode()
    loaded = "Loading: OCSP single response: Certificate ID does not match certificate and "
    replies = {
        "show version": "3.2.0-e134140d2",
        "show cli level": "admin",
        "show ssl ocsp-updates": "OCSP Certid | Path | Next Update | Last Update | Successes "
        "| Failures | Last Update Status | Last Update Status (str)",
        f"set ssl ocsp-response {b64}": NO_SLOT,
        f"show ssl ocsp-response base64 {response_certid_key(der)}": "",
        "show ssl cert": f"# filename\n{path}",
        f"show ssl cert {path}": f"Serial: {cert_dir.leaves['site'].cert.serial_number:X}",
        f"set ssl cert {path}.ocsp <<": f"Transaction created for certificate {path}!",
        f"commit ssl cert {path}": f"Committing {path}.\n{loaded}issuer. Content will be "
        "ignored.\nSuccess!",
        f"abort ssl cert {path}": "No ongoing transaction!",
    }
    with scripted(tmp_path / "ignored.sock", replies) as address:
        (result,) = push_staples(address, [PushItem(path, der, None)])
    assert (result.ok, result.method) == (False, "transaction")
    assert result.error == (
        f"HAProxy answered: Committing {path}. {loaded}issuer. Content will be ignored. Success!"
    )


def test_a_staple_too_close_to_expiry_is_never_pushed(
    cert_dir: CertDir, responder: Responder, start_haproxy: StartHAProxy
) -> None:
    cert_dir.add("slot")
    cert_dir.staple("slot").write_bytes(b"")
    cert_dir.add("first")
    proxy = start_haproxy(cert_dir.path)
    short = {name: staple(responder, cert_dir.leaves[name], "short") for name in ("slot", "first")}

    results = push_staples(proxy.socket, [item(cert_dir, n, d) for n, d in short.items()])

    for result, der in zip(results, short.values(), strict=True):
        next_update = ocsp.load_der_ocsp_response(der).next_update_utc
        assert next_update is not None
        assert (result.ok, result.method) == (False, "update")
        assert result.error == (
            f"the OCSP response's nextUpdate ({next_update:%Y-%m-%d %H:%M:%S} UTC) is less "
            "than 300 s away: HAProxy would not serve it"
        )
    assert served(proxy, "slot") is None
    assert served(proxy, "first") is None
