"""One error hierarchy for the core. ``cli`` turns these into one-line messages."""

from __future__ import annotations


class OcspToolError(Exception):
    """Base of every error ocsptool reports to a user as one line."""


class UsageError(OcspToolError):
    """Bad options, paths or configuration (exit 2)."""


class ConfigError(UsageError):
    """A config file with an unknown key or a bad value."""


class LockHeld(OcspToolError):
    """Another run holds the lock (exit 75)."""


class StateError(OcspToolError):
    """The state file cannot be used (e.g. written by a newer ocsptool)."""


class CertificateError(OcspToolError):
    """A certificate file cannot be used: unreadable, no certificate, no issuer..."""


class FetchError(OcspToolError):
    """The responder could not be reached or did not answer with a response."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ResponseRejected(OcspToolError):
    """The responder answered, but the response fails verification."""


class StatusUnknown(ResponseRejected):
    """The responder answered properly but does not know the certificate."""


class WriteError(OcspToolError):
    """A staple or the state could not be written (permissions, full disk)."""


class HAProxyError(OcspToolError):
    """The HAProxy runtime API could not be used at all."""
