"""Where the Kubernetes API is and how to authenticate to it: a frozen ``ApiConfig``.

Found the way controller-runtime's ``GetConfig`` finds it, so operators get no surprise:

1. ``--kubeconfig FILE`` (it must exist);
2. else ``$KUBECONFIG`` (a ``:``-separated list, merged the way kubectl merges it: the
   first file to name a cluster, user or context wins; files that do not exist are
   skipped, but at least one must exist);
3. else the in-cluster service account: ``$KUBERNETES_SERVICE_HOST`` and
   ``$KUBERNETES_SERVICE_PORT`` with ``token``, ``ca.crt`` and ``namespace`` under
   /var/run/secrets/kubernetes.io/serviceaccount;
4. else ``~/.kube/config``, when it exists.

A kubeconfig user may authenticate with ``token``, ``tokenFile`` or a client certificate
(``client-certificate(-data)`` and ``client-key(-data)``). ``exec`` plugins,
``auth-provider`` and basic auth are refused with a one-line error saying so. YAML
kubeconfigs need PyYAML (the ``kubernetes`` extra); a JSON one, and the in-cluster
configuration, need nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocsptool import files
from ocsptool.kubernetes.errors import KubeConfigError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")
EXTRA_MISSING = "a YAML kubeconfig needs PyYAML: pip install 'ocsptool[kubernetes]'"
#: A kubeconfig, a CA bundle, a token: none is anywhere near this.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: kubectl's namespace when a context names none.
FALLBACK_NAMESPACE = "default"


@dataclass(frozen=True)
class ApiConfig:
    """One API server and the credentials to use it."""

    #: ``https://host:port`` (no trailing slash), or with a path prefix behind a proxy.
    server: str
    #: The default namespace: the service account's in a pod, else the context's.
    namespace: str
    #: Where this came from, for messages: ``kubeconfig FILE (context NAME)``, ``in-cluster``.
    origin: str
    #: PEM CA certificates to trust for the server; None: the system's trust store.
    ca_pem: bytes | None = None
    insecure: bool = False
    #: The name to verify the server certificate against (kubeconfig ``tls-server-name``).
    tls_server_name: str | None = None
    #: kubeconfig ``proxy-url``; None: ``$HTTPS_PROXY``/``$NO_PROXY`` apply.
    proxy_url: str | None = None
    token: str | None = field(default=None, repr=False)
    #: Where ``token`` was read; the client re-reads it (service account tokens rotate).
    token_file: Path | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = field(default=None, repr=False)


def load_config(
    kubeconfig: Path | None = None,
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    home_config: Path | None = None,
) -> ApiConfig:
    """The API configuration, from the first place that has one (see the module doc)."""
    env = os.environ if environ is None else environ
    if kubeconfig is not None:
        return from_kubeconfig([kubeconfig], context=context, required=True)
    listed = env.get("KUBECONFIG", "")
    if listed:
        paths = [Path(p) for p in listed.split(os.pathsep) if p]
        return from_kubeconfig(paths, context=context, origin="$KUBECONFIG")
    if env.get("KUBERNETES_SERVICE_HOST") and env.get("KUBERNETES_SERVICE_PORT"):
        return in_cluster(env, service_account_dir)
    home = home_config if home_config is not None else DEFAULT_KUBECONFIG.expanduser()
    if home.exists():
        return from_kubeconfig([home], context=context, required=True)
    raise KubeConfigError(
        "kubernetes: no API server configured: give --kubeconfig FILE, set KUBECONFIG, "
        "or run in a pod with a service account"
    )


def in_cluster(env: Mapping[str, str], directory: Path = SERVICE_ACCOUNT_DIR) -> ApiConfig:
    """The pod's service account: the API at ``$KUBERNETES_SERVICE_HOST:PORT``."""
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    port = env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeConfigError("kubernetes: not in a pod (KUBERNETES_SERVICE_HOST/PORT are not set)")
    if not port.isdigit():
        raise KubeConfigError(f"kubernetes: KUBERNETES_SERVICE_PORT={port!r} is not a port")
    token_file = directory / "token"
    token = read_text(token_file, "service account token").strip()
    if not token:
        raise KubeConfigError(f"{token_file}: empty service account token")
    ca_pem = _read(directory / "ca.crt", "service account CA")
    namespace = env.get("POD_NAMESPACE", "")
    if not namespace:
        try:
            namespace = read_text(directory / "namespace", "namespace").strip()
        except KubeConfigError:
            namespace = ""
    bracketed = f"[{host}]" if ":" in host else host
    return ApiConfig(
        server=f"https://{bracketed}:{port}",
        namespace=namespace or FALLBACK_NAMESPACE,
        origin=f"in-cluster service account ({directory})",
        ca_pem=ca_pem,
        token=token,
        token_file=token_file,
    )


def from_kubeconfig(
    paths: list[Path],
    *,
    context: str | None = None,
    required: bool = False,
    origin: str | None = None,
) -> ApiConfig:
    """The current (or named) context of one kubeconfig, or of several merged."""
    merged: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {
        "clusters": {},
        "users": {},
        "contexts": {},
    }
    current: str | None = None
    loaded: list[Path] = []
    for path in paths:
        if not required and not path.exists():
            continue
        document = _load_document(path)
        loaded.append(path)
        if current is None and isinstance(document.get("current-context"), str):
            current = document["current-context"] or None
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for name, body in _named(document, section, inner, path):
                merged[section].setdefault(name, (path, body))
    if not loaded:
        shown = os.pathsep.join(map(str, paths))
        raise KubeConfigError(f"{origin or shown}: no kubeconfig file exists ({shown})")
    where = origin or str(loaded[0])
    wanted = context or current
    if not wanted:
        raise KubeConfigError(f"{where}: no current-context; set one or give a context")
    if wanted not in merged["contexts"]:
        raise KubeConfigError(f"{where}: context {wanted!r} not found")
    ctx_path, ctx = merged["contexts"][wanted]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not isinstance(cluster_name, str) or cluster_name not in merged["clusters"]:
        raise KubeConfigError(f"{ctx_path}: context {wanted!r}: cluster {cluster_name!r} not found")
    cluster_path, cluster = merged["clusters"][cluster_name]
    user: dict[str, Any] = {}
    user_path = ctx_path
    if user_name:
        if not isinstance(user_name, str) or user_name not in merged["users"]:
            raise KubeConfigError(f"{ctx_path}: context {wanted!r}: user {user_name!r} not found")
        user_path, user = merged["users"][user_name]
    namespace = ctx.get("namespace") or FALLBACK_NAMESPACE
    if not isinstance(namespace, str):
        raise KubeConfigError(f"{ctx_path}: context {wanted!r}: namespace is not a string")
    server = _string(cluster, "server", cluster_path, f"cluster {cluster_name!r}")
    if not server:
        raise KubeConfigError(f"{cluster_path}: cluster {cluster_name!r} has no server")
    if not server.startswith(("https://", "http://")):
        raise KubeConfigError(
            f"{cluster_path}: cluster {cluster_name!r}: server {server!r} is not an http(s) URL"
        )
    cluster_where = (cluster_path, f"cluster {cluster_name!r}")
    user_where = (user_path, f"user {user_name!r}")
    token, token_file = _token(user, *user_where)
    cert = _data_or_file(user, "client-certificate", *user_where)
    key = _data_or_file(user, "client-key", *user_where)
    if (cert is None) != (key is None):
        raise KubeConfigError(
            f"{user_path}: user {user_name!r}: a client certificate needs both "
            "client-certificate and client-key"
        )
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise KubeConfigError(
            f"{cluster_path}: cluster {cluster_name!r}: insecure-skip-tls-verify is not a boolean"
        )
    return ApiConfig(
        server=server.rstrip("/"),
        namespace=namespace,
        origin=f"kubeconfig {where} (context {wanted})",
        ca_pem=_data_or_file(cluster, "certificate-authority", *cluster_where),
        insecure=insecure,
        tls_server_name=_string(cluster, "tls-server-name", *cluster_where) or None,
        proxy_url=_string(cluster, "proxy-url", *cluster_where) or None,
        token=token,
        token_file=token_file,
        client_cert_pem=cert,
        client_key_pem=key,
    )


def _load_document(path: Path) -> dict[str, Any]:
    raw = _read(path, "kubeconfig")
    text = raw.decode("utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        try:
            document: Any = json.loads(text)
        except ValueError as e:
            raise KubeConfigError(f"{path}: not valid JSON ({e})") from None
    else:
        try:
            import yaml
        except ImportError:
            raise KubeConfigError(f"{path}: {EXTRA_MISSING}") from None
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            document = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise KubeConfigError(f"{path}: not valid YAML{at}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise KubeConfigError(f"{path}: not a kubeconfig (expected a mapping at the top)")
    return document


def _named(
    document: dict[str, Any], section: str, inner: str, path: Path
) -> list[tuple[str, dict[str, Any]]]:
    entries = document.get(section) or []
    if not isinstance(entries, list):
        raise KubeConfigError(f"{path}: {section} is not a list")
    found: list[tuple[str, dict[str, Any]]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeConfigError(f"{path}: an entry of {section} has no name")
        body = entry.get(inner) or {}
        if not isinstance(body, dict):
            raise KubeConfigError(f"{path}: {inner} {entry['name']!r} is not a mapping")
        found.append((entry["name"], body))
    return found


def _string(body: dict[str, Any], key: str, path: Path, what: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KubeConfigError(f"{path}: {what}: {key} is not a string")
    return value


def _token(user: dict[str, Any], path: Path, what: str) -> tuple[str | None, Path | None]:
    for unsupported, how in (
        ("exec", "an exec credential plugin"),
        ("auth-provider", "an auth-provider"),
        ("username", "basic auth"),
    ):
        if user.get(unsupported):
            raise KubeConfigError(
                f"{path}: {what} uses {how}, which ocsptool does not run; "
                "give it a token, a tokenFile or a client certificate"
            )
    token = _string(user, "token", path, what)
    if token:
        return token.strip(), None
    token_path = _string(user, "tokenFile", path, what)
    if not token_path:
        return None, None
    resolved = _relative(token_path, path)
    token = read_text(resolved, "token file").strip()
    if not token:
        raise KubeConfigError(f"{resolved}: empty token file")
    return token, resolved


def _data_or_file(body: dict[str, Any], key: str, path: Path, what: str) -> bytes | None:
    """``KEY-data`` (base64 PEM) or ``KEY`` (a file path, relative to the kubeconfig)."""
    data = _string(body, f"{key}-data", path, what)
    if data:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise KubeConfigError(f"{path}: {what}: {key}-data is not base64") from None
    name = _string(body, key, path, what)
    if not name:
        return None
    return _read(_relative(name, path), key)


def _relative(name: str, kubeconfig: Path) -> Path:
    """kubectl resolves relative paths against the kubeconfig's directory."""
    target = Path(name).expanduser()
    return target if target.is_absolute() else kubeconfig.parent / target


def _read(path: Path, what: str) -> bytes:
    try:
        data = files.read_regular(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise KubeConfigError(f"{path}: {what} not found") from None
    except PermissionError:
        raise KubeConfigError(f"{path}: permission denied reading the {what}") from None
    except OSError as e:
        raise KubeConfigError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise KubeConfigError(f"{path}: {what} larger than {MAX_CONFIG_BYTES} bytes")
    return data


def read_text(path: Path, what: str) -> str:
    try:
        return _read(path, what).decode("utf-8")
    except UnicodeDecodeError:
        raise KubeConfigError(f"{path}: {what} is not UTF-8 text") from None
