"""The HAProxy keywords the reader knows, with how many words each takes (2.6 to 3.4).

Taken from HAProxy's own keyword tables at v2.6.0, v2.8.0, v3.0.0, v3.2.0 and v3.4.0
(``bind_kws`` in ``src/cfgparse*.c``, ``src/listener.c``, ``src/cli.c``, ``src/ech.c``;
``ssl_crtlist_kws``/``ssl_bind_kws``; ``ckch_conf_kws`` in ``src/ssl_ckch.c``): the union of
every version, each keyword with the number of arguments it takes (the same in every
version that has it). HAProxy refuses to start on a keyword it does not know, so a word
not in these tables is reported, never guessed at.

``SINCE`` is the seam for the versions: the first release that has an option which names
or changes where a staple file is read (a ``LoadedCert`` records which one did, and
where). The reader has no version number: it reads a configuration as the first release
that accepts it would.
"""

from __future__ import annotations

#: ``bind`` (and peers ``default-bind``) options -> number of arguments.
BIND_OPTIONS: dict[str, int] = dict.fromkeys(
    (
        "accept-proxy", "allow-0rtt", "defer-accept", "force-sslv3", "force-tlsv10",
        "force-tlsv11", "force-tlsv12", "force-tlsv13", "generate-certificates", "no-alpn",
        "no-ca-names", "no-sslv3", "no-strict-sni", "no-tls-tickets", "no-tlsv10",
        "no-tlsv11", "no-tlsv12", "no-tlsv13", "prefer-client-ciphers", "quic-force-retry",
        "ssl", "strict-sni", "tfo", "tls-tickets", "transparent", "v4v6", "v6only",
    ),
    0,
) | dict.fromkeys(
    (
        "accept-netscaler-cip", "alpn", "backlog", "ca-file", "ca-ignore-err",
        "ca-sign-file", "ca-sign-pass", "ca-verify-file", "cc", "ciphers", "ciphersuites",
        "client-sigalgs", "crl-file", "crt", "crt-ignore-err", "crt-list", "curves",
        "default-crt", "ecdhe", "ech", "expose-fd", "gid", "group", "guid-prefix", "id",
        "idle-ping", "interface", "ktls", "label", "level", "maxconn", "mode", "mss",
        "name", "namespace", "nbconn", "nice", "npn", "process", "proto", "quic-cc-algo",
        "quic-socket", "severity-output", "shards", "sigalgs", "ssl-max-ver",
        "ssl-min-ver", "tcp-md5sig", "tcp-ss", "tcp-ut", "thread", "tls-ticket-keys",
        "uid", "user", "verify",
    ),
    1,
)  # fmt: skip

#: SSL options of a crt-list line's ``[...]`` and of ``ssl-f-use`` -> number of arguments
#: (``ocsp-update`` was one of them in 2.8; from 3.0 it is a certificate keyword).
CRT_LIST_SSL_OPTIONS: dict[str, int] = dict.fromkeys(
    ("allow-0rtt", "no-alpn", "no-ca-names"), 0
) | dict.fromkeys(
    (
        "alpn", "ca-file", "ca-verify-file", "ciphers", "ciphersuites", "client-sigalgs",
        "crl-file", "curves", "ecdhe", "ktls", "npn", "sigalgs", "ssl-min-ver",
        "ssl-max-ver", "verify",
    ),
    1,
)  # fmt: skip

#: Certificate keywords (``ckch_conf_kws``): crt-store ``load`` options, and on a crt-list
#: line (3.0+) or ``ssl-f-use`` (3.2+) after the SSL options. Each takes one argument.
CERT_OPTIONS = frozenset(
    (
        "alias", "crt", "key", "ocsp", "issuer", "sctl", "ocsp-update", "jwt", "acme",
        "domains", "ips", "generate-dummy", "keytype", "bits", "curves",
    )
)  # fmt: skip
#: The certificate keywords that name files: any of them turns HAProxy's lookup of
#: ``<crt>.key``/``.ocsp``/``.issuer``/``.sctl`` off for that certificate.
FILE_OPTIONS = frozenset(("key", "ocsp", "issuer", "sctl"))

#: ``ssl-load-extra-files`` words.
EXTRA_FILES = frozenset(("none", "all", "bundle", "sctl", "ocsp", "issuer", "key"))
ALL_EXTRA_FILES = frozenset(("bundle", "sctl", "ocsp", "issuer", "key"))

#: The first release with each option that names or moves a staple file (the keyword as
#: ``LoadedCert.staple_from`` spells it). Options every release has are not listed.
SINCE: dict[str, tuple[int, int]] = {
    "crt-store load": (3, 0),
    "crt-store load ocsp": (3, 0),
    "crt-list ocsp": (3, 0),
    "crt-list key": (3, 0),
    "crt-list issuer": (3, 0),
    "crt-list sctl": (3, 0),
    "ssl-f-use ocsp": (3, 2),
    "ssl-f-use key": (3, 2),
    "ssl-f-use issuer": (3, 2),
    "ssl-f-use sctl": (3, 2),
    "generate-dummy": (3, 4),
}
#: The options every release has (2.6+) that choose a staple file, or that there is none.
EVERY_RELEASE = frozenset(("ssl-load-extra-files", "ssl-load-extra-del-ext"))
