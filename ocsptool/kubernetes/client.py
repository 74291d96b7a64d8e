"""A small client for the three calls ocsptool makes to the Kubernetes API.

- ``list_tls_secrets``: the ``kubernetes.io/tls`` Secrets of one namespace, in pages
  (``limit``/``continue``), filtered on the server by ``fieldSelector=type=...`` and the
  label selector: 1,000 Secrets are 4 requests, not 1,000.
- ``get_secret``: one Secret, to decide again after a conflict.
- ``patch_secret_key``: one data key, as a JSON merge patch carrying
  ``metadata.resourceVersion``, so a Secret changed since it was read answers 409 and
  nothing is written. The answer is asked for as metadata only, so the key material never
  comes back over the wire.

The first two hand Secrets over without ``tls.key``: the API sends it (a Secret has no
field projection), the client drops it, undecoded, from each answer once it is parsed.

Every failure is a one-line ``KubeApiError`` (``errors``): 401, 403 with the Role rule to
add, 404, 409, timeouts, TLS failures, oversized answers. No retries: the caller decides
(only a kept-alive connection the server closed meanwhile is opened again, once).

The transport is the standard library's ``http.client``, one kept-alive connection per
thread, to the API server only: a run with nothing due lists its Secrets without importing
an HTTP library (``requests`` alone costs about as much to import as listing 1,000 Secrets
takes).
TLS: one ``ssl.SSLContext`` built from the ``ApiConfig`` (its CA, never the public ones;
its client certificate; ``tls-server-name``). Proxies: kubeconfig ``proxy-url``, else
``$HTTPS_PROXY``/``$HTTP_PROXY`` unless ``$NO_PROXY`` exempts the server; an ``http://``
proxy, through a CONNECT tunnel (the server is still verified end to end). Responses are
not compressed (no ``Accept-Encoding``): on a cluster's network a page is quicker plain.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import ssl
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ocsptool.kubernetes import TLS_TYPE
from ocsptool.kubernetes.errors import (
    Forbidden,
    KubeApiError,
    KubeConfigError,
    SecretConflict,
    SecretGone,
    Unauthorized,
    Unreachable,
)
from ocsptool.kubernetes.names import check_data_key, check_namespace
from ocsptool.limits import Timeouts

if TYPE_CHECKING:
    from ocsptool.kubernetes.config import ApiConfig

#: ``observe(method, path, status, body)``: each answer as received (debugging, tests).
Observer = Callable[[str, str, int, bytes], None]

#: 250 Secrets a page: 1,000 are 4 requests; a page of typical TLS Secrets (~8 KiB each
#: with their managedFields) is ~2 MiB.
PAGE_SIZE = 250
#: No answer may be larger: 250 Secrets of 256 KiB. A Secret is at most 1 MiB.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: A page of 250 Secrets from a loaded API server can take a while; a patch is quick.
TIMEOUTS = Timeouts(connect=5.0, read=30.0, total=60.0)
#: Service account tokens rotate; client-go re-reads the file after a minute too.
TOKEN_REREAD_SECONDS = 60.0
#: Ask for the patched Secret's metadata only (its keys stay on the server).
_METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
_USER = re.compile(r'User "([^"]*)"')
_SERVICE_ACCOUNT = re.compile(r"system:serviceaccount:([^:]+):(.+)")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class KubeClient:
    """One API server, as ``ApiConfig`` describes it."""

    def __init__(
        self,
        config: ApiConfig,
        *,
        timeouts: Timeouts = TIMEOUTS,
        page_size: int = PAGE_SIZE,
        max_bytes: int = MAX_RESPONSE_BYTES,
        observe: Observer | None = None,
    ) -> None:
        self.config = config
        self.timeouts = timeouts
        self.page_size = page_size
        self.max_bytes = max_bytes
        self.observe = observe
        url = urllib.parse.urlsplit(config.server)
        tls = url.scheme == "https"
        self._host = url.hostname or ""
        self._port = url.port or (443 if tls else 80)
        self._prefix = url.path.rstrip("/")
        self._context = ssl_context(config) if tls else None
        self._proxy = _proxy(config, url)
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        # A client dropped without close() closes its connections when it is collected.
        weakref.finalize(self, _close_all, self._open, self._lock)
        self._token = config.token
        self._token_read = time.monotonic()

    def close(self) -> None:
        _close_all(self._open, self._lock)
        self._local = threading.local()

    # -- the three calls ----------------------------------------------------------------

    def list_tls_secrets(
        self, namespace: str, *, selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Each ``kubernetes.io/tls`` Secret of ``namespace`` (raw API objects), a page
        at a time. Other types are filtered out by the server and never yielded."""
        check_namespace(namespace)
        params = {"limit": str(self.page_size), "fieldSelector": f"type={TLS_TYPE}"}
        if selector:
            params["labelSelector"] = selector
        seen: set[str] = set()
        while True:
            body = self._call(
                "GET", f"/api/v1/namespaces/{namespace}/secrets", "list", namespace, params=params
            )
            items = body.get("items")
            if not isinstance(items, list):
                raise KubeApiError(
                    f"kubernetes namespace {namespace!r}: the list answer has no items"
                )
            for item in items:
                _drop_private_key(item)
            for item in items:
                if isinstance(item, dict) and item.get("type") == TLS_TYPE:
                    yield item
            metadata = body.get("metadata")
            token = metadata.get("continue") if isinstance(metadata, dict) else None
            if not token:
                return
            if not isinstance(token, str) or token in seen:
                raise KubeApiError(
                    f"kubernetes namespace {namespace!r}: the API server repeated a page"
                )
            seen.add(token)
            params["continue"] = token

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        """One Secret (raw API object); ``SecretGone`` when it no longer exists."""
        check_namespace(namespace)
        path = f"/api/v1/namespaces/{namespace}/secrets/{_secret_name(name)}"
        secret = self._call("GET", path, "get", namespace, name=name)
        _drop_private_key(secret)
        return secret

    def patch_secret_key(
        self, namespace: str, name: str, key: str, value: bytes, *, resource_version: str
    ) -> str:
        """Set one data key, only if the Secret is still at ``resource_version``.

        Returns the new resourceVersion. ``SecretConflict`` (409) when the Secret changed
        since it was read; ``SecretGone`` (404) when it was deleted. Nothing else of the
        Secret is in the patch, so no other key can change.
        """
        check_namespace(namespace)
        check_data_key(key)
        if not resource_version:
            raise KubeApiError(f"kubernetes secret {namespace}/{name}: no resourceVersion")
        patch = {
            "metadata": {"resourceVersion": resource_version},
            "data": {key: base64.b64encode(value).decode("ascii")},
        }
        body = self._call(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/secrets/{_secret_name(name)}",
            "patch",
            namespace,
            name=name,
            params={"fieldManager": "ocsptool"},
            data=json.dumps(patch).encode(),
            content_type="application/merge-patch+json",
            accept=_METADATA_ONLY,
        )
        metadata = body.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        if not isinstance(version, str):
            raise KubeApiError(
                f"kubernetes secret {namespace}/{name}: the patch answer has no resourceVersion"
            )
        return version

    # -- one request ----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        verb: str,
        namespace: str,
        *,
        name: str | None = None,
        params: dict[str, str] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        from ocsptool import __version__

        headers = {"Accept": accept, "User-Agent": f"ocsptool/{__version__}"}
        token = self._current_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        target = self._prefix + path
        if params:
            target += "?" + urllib.parse.urlencode(params)
        where = _where(namespace, name)
        deadline = time.monotonic() + self.timeouts.total
        server = self.config.server
        try:
            status, body = self._exchange(
                method, target, data=data, headers=headers, deadline=deadline, where=where
            )
        except ssl.SSLError as e:
            raise Unreachable(f"{where}: {server}: TLS failed: {_tls_cause(e)}") from None
        except TimeoutError:
            raise Unreachable(
                f"{where}: {server} did not answer in time "
                f"({self.timeouts.connect:g}s to connect, {self.timeouts.read:g}s to read)"
            ) from None
        except (OSError, http.client.HTTPException) as e:
            how = f"through the proxy {_safe(self._proxy[0])}, " if self._proxy else ""
            raise Unreachable(
                f"{where}: cannot connect to {server} ({how}{_connect_cause(e)})"
            ) from None
        if self.observe is not None:
            self.observe(method, target, status, body)
        if status >= 300:
            raise self._error(status, body, verb, namespace, name)
        try:
            parsed = json.loads(body)
        except ValueError:
            raise KubeApiError(
                f"{where}: the API server answered {status} with no JSON", status=status
            ) from None
        if not isinstance(parsed, dict):
            raise KubeApiError(f"{where}: the API server answered {status} with no object")
        return parsed

    def _exchange(
        self,
        method: str,
        target: str,
        *,
        data: bytes | None,
        headers: dict[str, str],
        deadline: float,
        where: str,
    ) -> tuple[int, bytes]:
        """One request on this thread's connection: (status, body). A kept-alive
        connection the server closed since its last answer is opened again, once."""
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, target, body=data, headers=headers)
                response = connection.getresponse()
                body = self._read(response, deadline, where)
                response.close()  # read to the end: the connection serves the next one
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop(connection)
                if reused and attempt == 1:
                    continue
                raise
            except BaseException:
                self._drop(connection)
                raise
            if response.will_close:
                self._drop(connection)
            return response.status, body
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection (and whether it served a request before)."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        host, port = (self._proxy[1], self._proxy[2]) if self._proxy else (self._host, self._port)
        read = self.timeouts.read
        if self._context is not None:
            server_name = self.config.tls_server_name or self._host
            connection = _TlsConnection(
                host,
                port,
                self.timeouts.connect,
                read,
                context=self._context,
                server_name=server_name,
            )
        else:
            connection = _PlainConnection(host, port, self.timeouts.connect, read)
        if self._proxy:
            connection.set_tunnel(self._host, self._port, headers=self._proxy[3])
        self._local.connection = connection
        with self._lock:
            self._open.append(connection)
        return connection, False

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None
        with self._lock, contextlib.suppress(ValueError):
            self._open.remove(connection)

    def _read(self, response: http.client.HTTPResponse, deadline: float, where: str) -> bytes:
        """The body, refusing more than ``max_bytes`` and a drip past the deadline."""
        chunks: list[bytes] = []
        got = 0
        while chunk := response.read1(1 << 16):
            got += len(chunk)
            if got > self.max_bytes:
                raise KubeApiError(
                    f"{where}: the API server's answer is over {self.max_bytes} bytes; "
                    "narrow it with --selector"
                )
            if time.monotonic() > deadline:
                raise Unreachable(
                    f"{where}: {self.config.server} took over {self.timeouts.total:g}s to answer"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _current_token(self) -> str | None:
        source = self.config.token_file
        if source is None or time.monotonic() - self._token_read < TOKEN_REREAD_SECONDS:
            return self._token
        from ocsptool.kubernetes.config import read_text

        try:
            fresh = read_text(source, "token file").strip()
        except KubeConfigError:
            fresh = ""
        if fresh:  # a file being rotated may be briefly unreadable: keep the last token
            self._token = fresh
        self._token_read = time.monotonic()
        return self._token

    def _error(
        self, status: int, body: bytes, verb: str, namespace: str, name: str | None
    ) -> KubeApiError:
        message, reason = _status_message(body)
        where = _where(namespace, name)
        if status == 401:
            return Unauthorized(
                f"{where}: unauthorized (401): {self.config.server} rejects the credentials "
                f"of {self.config.origin}",
                status=401,
                reason=reason,
            )
        if status == 403:
            return forbidden(verb, namespace, message)
        if status == 404 and name is not None:
            return SecretGone(f"{where}: not found (deleted)", status=404, reason=reason)
        if status == 409:
            return SecretConflict(
                f"{where}: changed since it was read (409 Conflict); read it again",
                status=409,
                reason=reason,
            )
        if status == 410:
            return KubeApiError(
                f"{where}: the listing expired before its last page (410 Gone); run again",
                status=410,
                reason=reason,
            )
        detail = f": {message}" if message else ""
        return KubeApiError(
            f"{where}: the API server answered {status} {reason or ''}".rstrip() + detail,
            status=status,
            reason=reason,
        )


def forbidden(verb: str, namespace: str, server_message: str) -> Forbidden:
    """The one line for a 403: who may not do what where, and the Role rule that allows it."""
    found = _USER.search(server_message)
    user = found.group(1) if found else None
    if user is None:
        who, subject = "ocsptool", "ocsptool's user"
    else:
        account = _SERVICE_ACCOUNT.fullmatch(user)
        who = f'User "{user}"'
        subject = (
            f'ServiceAccount "{account.group(2)}" of namespace "{account.group(1)}"'
            if account
            else who
        )
    message = (
        f'kubernetes namespace "{namespace}": forbidden: {who} cannot {verb} secrets; '
        f'add to a Role in namespace "{namespace}" bound to {subject}: '
        f'rules: - apiGroups: [""] resources: ["secrets"] verbs: ["{verb}"]'
    )
    return Forbidden(message, verb=verb, namespace=namespace, user=user)


def _drop_private_key(item: object) -> None:
    """tls.key comes with every Secret the API serves; drop it (never decoded) as soon as
    the answer is parsed, so no caller ever holds it."""
    if isinstance(item, dict):
        data = item.get("data")
        if isinstance(data, dict):
            data.pop("tls.key", None)


def _where(namespace: str, name: str | None) -> str:
    if name is None:
        return f'kubernetes namespace "{namespace}"'
    return f"kubernetes secret {namespace}/{name}"


def _secret_name(name: str) -> str:
    if not _DNS_SUBDOMAIN.fullmatch(name):
        raise KubeApiError(f"kubernetes: {name!r} is not a Secret name")
    return name


def _status_message(body: bytes) -> tuple[str, str]:
    """The message and reason of a ``Status`` answer, on one line; else a bit of the body."""
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict):
        message = status.get("message")
        reason = status.get("reason")
        return (
            _one_line(message) if isinstance(message, str) else "",
            reason if isinstance(reason, str) else "",
        )
    return _one_line(body[:200].decode("utf-8", errors="replace")), ""


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 300 else line[:297] + "..."


def _tls_cause(error: Exception) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        for hint in ("Hostname mismatch", "self-signed certificate", "unable to get local issuer"):
            if hint.lower() in text.lower():
                return f"certificate verify failed ({hint.lower()}); check certificate-authority"
        return "certificate verify failed; check certificate-authority"
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "the server does not speak TLS there"
    return _one_line(text.rsplit(":", 1)[-1].strip(" ')\"")) or "handshake failed"


def _connect_cause(error: Exception) -> str:
    text = str(error)
    for cause in ("Connection refused", "Name or service not known", "No route to host"):
        if cause in text:
            return cause.lower()
    if text.startswith("Tunnel connection failed"):
        return "the proxy refused the tunnel: " + text.partition(": ")[2].strip()
    if isinstance(error, http.client.HTTPException):
        return f"a broken answer: {type(error).__name__}"
    return "connection failed"


def _close_all(opened: list[http.client.HTTPConnection], lock: threading.Lock) -> None:
    with lock:
        connections = list(opened)
        opened.clear()
    for connection in connections:
        connection.close()


class _PlainConnection(http.client.HTTPConnection):
    """``http.client``'s connection, with a read timeout of its own once connected."""

    def __init__(self, host: str, port: int, connect: float, read: float) -> None:
        super().__init__(host, port, timeout=connect)
        self.read_timeout = read

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _TlsConnection(_PlainConnection):
    """TLS to the API server (through the tunnel, when there is a proxy), verified with
    the configuration's context, against ``server_name`` (kubeconfig tls-server-name)."""

    default_port = http.client.HTTPS_PORT

    def __init__(
        self,
        host: str,
        port: int,
        connect: float,
        read: float,
        *,
        context: ssl.SSLContext,
        server_name: str,
    ) -> None:
        super().__init__(host, port, connect, read)
        self.context = context
        self.server_name = server_name

    def connect(self) -> None:
        super().connect()  # TCP (and the CONNECT tunnel)
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name)


#: A proxy: (its URL, host, port, the CONNECT request's headers).
Proxy = tuple[str, str, int, dict[str, str]]


def _proxy(config: ApiConfig, server: urllib.parse.SplitResult) -> Proxy | None:
    """The proxy to reach the server through: kubeconfig ``proxy-url``, else the
    environment's (``HTTPS_PROXY`` for an https server) unless ``NO_PROXY`` exempts it."""
    url = config.proxy_url
    if not url:
        if not any(name.lower().endswith("_proxy") for name in os.environ):
            return None  # (and urllib.request, which reads them, need not be imported)
        from urllib.request import getproxies_environment, proxy_bypass

        url = getproxies_environment().get(server.scheme)
        if not url or proxy_bypass(server.netloc):  # $NO_PROXY
            return None
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme != "http" or not parsed.hostname:
        raise KubeConfigError(
            f"{config.origin}: proxy {_safe(url)}: only an http:// proxy is supported "
            "(its CONNECT tunnel carries TLS to the API server)"
        )
    headers = {}
    if parsed.username is not None:
        credentials = f"{urllib.parse.unquote(parsed.username)}:"
        credentials += urllib.parse.unquote(parsed.password or "")
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return url, parsed.hostname, parsed.port or 80, headers


def _safe(url: str) -> str:
    """A proxy URL for messages: never its password."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return parsed._replace(netloc=netloc).geturl()


def ssl_context(config: ApiConfig) -> ssl.SSLContext:
    """The TLS context of ``config``: its CA (else the system's), its client certificate."""
    where = config.origin
    try:
        if config.ca_pem is not None:
            context = ssl.create_default_context(cadata=config.ca_pem.decode("ascii", "replace"))
        else:
            context = ssl.create_default_context()
    except (ssl.SSLError, ValueError):
        raise KubeConfigError(f"{where}: the certificate authority is not PEM") from None
    if config.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.client_cert_pem is not None and config.client_key_pem is not None:
        _load_client_cert(context, config.client_cert_pem, config.client_key_pem, where)
    return context


def _load_client_cert(context: ssl.SSLContext, cert: bytes, key: bytes, where: str) -> None:
    """ssl loads a client certificate from files only: a private directory, read once,
    removed at once (the context keeps the key; no file outlives this call)."""
    import tempfile

    directory = tempfile.mkdtemp(prefix="ocsptool-kube-")
    cert_file = os.path.join(directory, "client.crt")
    key_file = os.path.join(directory, "client.key")
    try:
        for path, data in ((cert_file, cert), (key_file, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError:
        raise KubeConfigError(
            f"{where}: the client certificate and key do not load (not PEM, or not a pair)"
        ) from None
    finally:
        for path in (cert_file, key_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.rmdir(directory)
