"""Why the Kubernetes API could not be used: each is a one-line ``OcspToolError``."""

from __future__ import annotations

from ocsptool.errors import OcspToolError, UsageError


class KubeConfigError(UsageError):
    """No usable API configuration: a bad kubeconfig, a missing service account file."""


class KubeApiError(OcspToolError):
    """The API server could not be used for one request. ``status`` is the HTTP code
    (0 when no answer came: timeout, refused connection, TLS failure)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Unreachable(KubeApiError):
    """No answer: the connection failed, timed out, or TLS verification failed."""


class Unauthorized(KubeApiError):
    """401: the API server does not accept the credentials."""


class Forbidden(KubeApiError):
    """403: RBAC does not allow the verb; the message names the Role rule that would."""

    def __init__(self, message: str, *, verb: str, namespace: str, user: str | None) -> None:
        super().__init__(message, status=403, reason="Forbidden")
        self.verb = verb
        self.namespace = namespace
        self.user = user


class SecretGone(KubeApiError):
    """404: the Secret (or the namespace) was deleted mid-run."""


class SecretConflict(KubeApiError):
    """409: the Secret changed since it was read (its ``resourceVersion`` moved on)."""


class NotTlsSecret(OcspToolError):
    """A Secret that is not ``kubernetes.io/tls``: ocsptool never reads its data."""
