"""A real Kubernetes API server for tests: Debian's etcd and kube-apiserver on loopback.

``KubeApiServer(binary)`` starts etcd and kube-apiserver on free loopback ports in a
temporary directory, with RBAC on, a static token file (an administrator in
``system:masters``, a ``job`` user with no rights until a test binds a Role to it, a
``nobody`` user) and a client CA for certificate authentication; it waits for ``/readyz``::

    with KubeApiServer(apiserver_binary(cache)) as server:
        ns = server.admin.namespace()  # a fresh namespace
        server.admin.tls_secret(ns, "site", leaf)  # tls.crt = leaf + chain, tls.key
        server.admin.allow(ns, "job", verbs=("list", "patch"))
        path = server.kubeconfig(tmp / "config", user="job", namespace=ns)

No kubelet, no controller-manager: namespaces are never deleted (each test takes a fresh
one), ServiceAccounts get tokens only through the TokenRequest API
(``admin.service_account_token``). About 3.5 s to ready; ~310 MB for kube-apiserver,
~45 MB for etcd. ``apiserver_binary`` unpacks the xz release once into a cache directory
(keyed by the archive's hash) with the standard library's ``lzma``: no ``xz`` needed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import lzma
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ocsptool.testing.haproxy import free_port
from ocsptool.testing.pki import Leaf, key_pem
from ocsptool.testing.processes import stop_process

TLS_TYPE = "kubernetes.io/tls"
ARCHIVE_GLOB = "kube-apiserver-v*.xz"
#: Where the project keeps the archive: ``<project>/../shared/kubernetes/``.
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "kubernetes"
ADMIN = "admin"
JOB = "job"
NOBODY = "nobody"


def apiserver_archive() -> Path | None:
    """The kube-apiserver to test with: ``$OCSPTOOL_KUBE_APISERVER`` (an ``.xz`` archive
    or a binary), else the newest ``../shared/kubernetes/kube-apiserver-v*.xz``."""
    configured = os.environ.get("OCSPTOOL_KUBE_APISERVER")
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    found = sorted(SHARED.glob(ARCHIVE_GLOB))
    return found[-1] if found else None


def etcd_binary() -> str | None:
    """Debian's etcd (``apt-get install etcd-server``), or None."""
    found = shutil.which("etcd")
    if found:
        return found
    return "/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None


def apiserver_binary(archive: Path, cache: Path) -> Path:
    """The executable of ``archive``: itself when it is not ``.xz``; else unpacked once
    into ``cache`` under a name keyed by the archive's SHA-256 (atomic: a concurrent or
    killed unpack never leaves a torn binary)."""
    if archive.suffix != ".xz":
        return archive
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:16]
    target = cache / f"kube-apiserver-{digest}"
    if os.access(target, os.X_OK):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=cache, prefix=".kube-apiserver-")
    try:
        with lzma.open(archive) as source, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.chmod(temp, 0o755)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return target


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _rss_kib(pid: int) -> int:
    """The resident memory of a process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Admin:
    """The administrator (``system:masters``) of a ``KubeApiServer``: sets up what tests
    need and reads Secrets back, with plain HTTP calls (no code under test)."""

    def __init__(self, server: KubeApiServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = str(server.ca_file)
        self.session.headers["Authorization"] = f"Bearer {server.tokens[ADMIN]}"
        self._names = itertools.count(1)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        ok: Iterable[int] = (200, 201),
    ) -> dict[str, Any]:
        """One call; any status outside ``ok`` raises with the server's Status message."""
        response = self.session.request(
            method,
            self.server.url + path,
            data=None if body is None else json.dumps(body),
            params=params,
            headers={"Content-Type": content_type},
            timeout=30,
        )
        answer: dict[str, Any] = response.json()
        if response.status_code not in tuple(ok):
            raise RuntimeError(
                f"{method} {path}: {response.status_code} {answer.get('message', answer)}"
            )
        return answer

    # -- namespaces and Secrets -------------------------------------------------------

    def namespace(self, prefix: str = "t") -> str:
        """A fresh namespace (namespaces are never deleted here: no controller-manager)."""
        name = f"{prefix}-{next(self._names)}-{secrets.token_hex(3)}"
        self.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}})
        return name

    def create_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, bytes],
        *,
        type: str = TLS_TYPE,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name}
        if labels:
            metadata["labels"] = dict(labels)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": type,
            "metadata": metadata,
            "data": {key: _b64(value) for key, value in data.items()},
        }
        return self.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)

    def tls_secret(
        self,
        namespace: str,
        name: str,
        leaf: Leaf,
        *,
        chain: bool = True,
        ca: bytes | None = None,
        labels: Mapping[str, str] | None = None,
        extra: Mapping[str, bytes] | None = None,
    ) -> dict[str, Any]:
        """A ``kubernetes.io/tls`` Secret: tls.crt is the leaf and (``chain``) its chain,
        tls.key its key; ``ca`` goes into ca.crt (cert-manager's layout)."""
        data = {"tls.crt": leaf.bundle_pem(chain=chain, key=False), "tls.key": key_pem(leaf.key)}
        if ca is not None:
            data["ca.crt"] = ca
        data.update(extra or {})
        return self.create_secret(namespace, name, data, labels=labels)

    def secret(self, namespace: str, name: str) -> dict[str, Any]:
        """The Secret as stored (the raw API object)."""
        return self.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        """The Secret's data, decoded."""
        data = self.secret(namespace, name).get("data") or {}
        return {key: base64.b64decode(value) for key, value in data.items()}

    def patch_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, bytes] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Change a Secret behind the code under test's back (a merge patch)."""
        body: dict[str, Any] = {}
        if data:
            body["data"] = {key: _b64(value) for key, value in data.items()}
        if labels:
            body["metadata"] = {"labels": dict(labels)}
        return self.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/secrets/{name}",
            body=body,
            content_type="application/merge-patch+json",
        )

    def delete_secret(self, namespace: str, name: str) -> None:
        self.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/{name}")

    # -- RBAC and service accounts ------------------------------------------------------

    def allow(
        self,
        namespace: str,
        user: str,
        *,
        verbs: Sequence[str],
        role: str = "ocsptool-test",
        service_account: bool = False,
    ) -> None:
        """A Role granting ``verbs`` on secrets in ``namespace``, bound to ``user`` (a
        User, or with ``service_account`` a ServiceAccount ``namespace:name``)."""
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
        self.request(
            "POST",
            f"{rbac}/roles",
            body={
                "metadata": {"name": role},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": list(verbs)}],
            },
        )
        if service_account:
            account_namespace, _, account = user.partition(":")
            subject = {"kind": "ServiceAccount", "name": account, "namespace": account_namespace}
        else:
            subject = {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
        self.request(
            "POST",
            f"{rbac}/rolebindings",
            body={
                "metadata": {"name": role},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": role,
                },
                "subjects": [subject],
            },
        )

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A real token of a ServiceAccount (TokenRequest API; the account must exist)."""
        answer = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        token: str = answer["status"]["token"]
        return token

    # -- manifests ------------------------------------------------------------------------

    def serves(self, api_version: str, resource: str) -> bool:
        """Whether the server serves ``resource`` in ``api_version`` (discovery)."""
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        response = self.session.get(self.server.url + path, timeout=30)
        if response.status_code != 200:
            return False
        return any(r.get("name") == resource for r in response.json().get("resources", []))

    def create(
        self, manifest: Mapping[str, Any], resource: str, *, dry_run: bool = True
    ) -> dict[str, Any]:
        """POST one manifest to its collection (``resource`` is its plural), with
        server-side dry run (``?dryRun=All``) unless told otherwise."""
        api_version = manifest["apiVersion"]
        namespace = manifest.get("metadata", {}).get("namespace")
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        params = {"dryRun": "All"} if dry_run else None
        return self.request("POST", f"{base}{scope}/{resource}", body=manifest, params=params)


class KubeApiServer:
    """A real etcd + kube-apiserver pair on loopback (see the module doc)."""

    def __init__(self, apiserver: Path, *, etcd: str | None = None) -> None:
        found = etcd or etcd_binary()
        if found is None:
            raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
        self.apiserver = apiserver
        self.etcd = found
        self.dir = Path(tempfile.mkdtemp(prefix="ocsptool-kube-"))
        self.port = free_port()
        self.etcd_port = free_port()
        self.peer_port = free_port()
        self.tokens = {user: secrets.token_hex(16) for user in (ADMIN, JOB, NOBODY)}
        self._client_ca_key = ec.generate_private_key(ec.SECP256R1())
        self._client_ca = _client_ca(self._client_ca_key)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._admin: Admin | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The self-signed serving certificate the server wrote: the CA to trust."""
        return self.dir / "certs" / "apiserver.crt"

    @property
    def ca_pem(self) -> bytes:
        return self.ca_file.read_bytes()

    @property
    def admin(self) -> Admin:
        if self._admin is None:
            self._admin = Admin(self)
        return self._admin

    def start(self, timeout: float = 60.0) -> KubeApiServer:
        self._write_files()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{self.peer_port}"
        self._spawn(
            "etcd",
            [
                self.etcd,
                "--name=t",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=t={peer_url}",
                "--initial-cluster-state=new",
                "--log-level=warn",
            ],
            env,
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.port}",
                "--insecure-port=0",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--cert-dir={self.dir / 'certs'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-signing-key-file={self.dir / 'sa.key'}",
                f"--service-account-key-file={self.dir / 'sa.pub'}",
                f"--token-auth-file={self.dir / 'tokens.csv'}",
                f"--client-ca-file={self.dir / 'client-ca.crt'}",
                "--authorization-mode=RBAC",
                "--profiling=false",
            ],
            env,
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log = self._log_tail(name)
                    self.stop()
                    raise RuntimeError(f"{name} exited {process.returncode}: {log}")
            if time.monotonic() > deadline:
                logs = self._log_tail("kube-apiserver")
                self.stop()
                raise RuntimeError(f"kube-apiserver not ready after {timeout:g}s: {logs}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        for name in ("kube-apiserver", "etcd"):
            stop_process(self.processes.pop(name, None), 15)
        if self._admin is not None:
            self._admin.session.close()
            self._admin = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def memory_kib(self) -> dict[str, int]:
        """The resident memory of each process, in KiB."""
        return {name: _rss_kib(process.pid) for name, process in self.processes.items()}

    # -- credentials for the code under test --------------------------------------------

    def client_certificate(
        self, user: str, groups: Sequence[str] = (), *, valid: bool = True
    ) -> tuple[bytes, bytes]:
        """A client certificate (PEM) and key (PEM) for ``user``, signed by the server's
        client CA (``valid=False``: by a CA the server does not know)."""
        ca_key = self._client_ca_key if valid else ec.generate_private_key(ec.SECP256R1())
        ca = self._client_ca if valid else _client_ca(ca_key)
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
        names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(names))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    def kubeconfig(
        self,
        path: Path,
        *,
        user: str = JOB,
        namespace: str | None = None,
        ca: str = "data",
        auth: str = "token",
        server: str | None = None,
        tls_server_name: str | None = None,
        token: str | None = None,
        json_format: bool = False,
    ) -> Path:
        """A kubeconfig for ``user``, written as kubectl would (YAML; ``json_format``: JSON).

        ``ca``: ``data`` (certificate-authority-data), ``file`` (certificate-authority,
        a path relative to the kubeconfig), ``insecure`` (insecure-skip-tls-verify), or
        ``none`` (the system trust store, which does not trust this server).
        ``auth``: ``token``, ``token-file`` (tokenFile, relative), ``cert-data`` or
        ``cert-file`` (client-certificate(-data) + client-key(-data)), ``none``.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        cluster: dict[str, Any] = {"server": server or self.url}
        if ca == "data":
            cluster["certificate-authority-data"] = _b64(self.ca_pem)
        elif ca == "file":
            (path.parent / "ca.crt").write_bytes(self.ca_pem)
            cluster["certificate-authority"] = "ca.crt"
        elif ca == "insecure":
            cluster["insecure-skip-tls-verify"] = True
        if tls_server_name:
            cluster["tls-server-name"] = tls_server_name
        credentials: dict[str, Any] = {}
        secret = token or self.tokens.get(user, "")
        if auth == "token":
            credentials["token"] = secret
        elif auth == "token-file":
            (path.parent / f"{user}.token").write_text(secret + "\n")
            credentials["tokenFile"] = f"{user}.token"
        elif auth in ("cert-data", "cert-file"):
            cert, key = self.client_certificate(user)
            if auth == "cert-data":
                credentials["client-certificate-data"] = _b64(cert)
                credentials["client-key-data"] = _b64(key)
            else:
                (path.parent / f"{user}.crt").write_bytes(cert)
                (path.parent / f"{user}.key").write_bytes(key)
                credentials["client-certificate"] = f"{user}.crt"
                credentials["client-key"] = f"{user}.key"
        context: dict[str, Any] = {"cluster": "test", "user": user}
        if namespace:
            context["namespace"] = namespace
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": cluster}],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "test", "context": context}],
            "current-context": "test",
        }
        if json_format:
            path.write_text(json.dumps(document, indent=2))
        else:
            import yaml

            path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def service_account_dir(self, path: Path, token: str, namespace: str) -> Path:
        """A pod's /var/run/secrets/kubernetes.io/serviceaccount: token, ca.crt, namespace."""
        path.mkdir(parents=True, exist_ok=True)
        (path / "token").write_text(token)
        (path / "ca.crt").write_bytes(self.ca_pem)
        (path / "namespace").write_text(namespace)
        return path

    # -- internals --------------------------------------------------------------------------

    def _write_files(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.dir / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        (self.dir / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        (self.dir / "client-ca.crt").write_bytes(
            self._client_ca.public_bytes(serialization.Encoding.PEM)
        )
        lines = [
            f'{self.tokens[ADMIN]},{ADMIN},1,"system:masters"',
            f"{self.tokens[JOB]},{JOB},2",
            f"{self.tokens[NOBODY]},{NOBODY},3",
        ]
        (self.dir / "tokens.csv").write_text("\n".join(lines) + "\n")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with (self.dir / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.dir,
            )

    def _ready(self) -> bool:
        if not self.ca_file.exists():
            return False
        try:
            response = requests.get(
                f"{self.url}/readyz",
                headers={"Authorization": f"Bearer {self.tokens[ADMIN]}"},
                verify=str(self.ca_file),
                timeout=2,
            )
        except requests.RequestException:
            return False
        return response.status_code == 200 and response.text == "ok"

    def _log_tail(self, name: str) -> str:
        log = self.dir / f"{name}.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return " | ".join(text.strip().splitlines()[-5:])


def _client_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocsptool test client CA")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
