"""The errors of the nginx target, each a one-line message (``cli`` prints them as they are)."""

from __future__ import annotations

from ocsptool.errors import ConfigError, OcspToolError


class NginxConfigError(ConfigError):
    """The main nginx configuration cannot be read at all (exit 2)."""


class NginxError(OcspToolError):
    """nginx could not be driven: not running, reload refused or failed, no TLS client."""


class NginxNotRunning(NginxError):
    """No live nginx master behind the pid file."""


class ReloadRefused(NginxError):
    """nginx refused the new configuration (``nginx -t`` failed, or the master logged
    ``[emerg]`` and kept its old workers). ``reason`` is nginx's own words."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ReloadFailed(NginxError):
    """The reload could not be asked for or was not seen to happen (no permission to
    signal, the reload command failed, no new workers before the timeout)."""


class TLSClientMissing(NginxError):
    """The handshake check needs pyOpenSSL, which is not installed."""


class HandshakeFailed(NginxError):
    """A TLS handshake with nginx failed (refused, timed out, alert)."""
