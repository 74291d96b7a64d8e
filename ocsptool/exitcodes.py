"""Exit codes: one table, used everywhere. Documented in ``--help`` and the README."""

from __future__ import annotations

OK = 0  # every certificate with an OCSP responder has a valid staple, or was not due
FAILURE = 1  # at least one certificate failed (each named on stderr), or a staple says revoked
USAGE = 2  # bad options, paths or config file
LOCKED = 75  # another run holds the lock (EX_TEMPFAIL): try again later
INTERRUPTED = 130  # SIGINT or SIGTERM, as a shell reports it

# `ocsptool check` follows the Nagios/Icinga plugin convention instead:
CHECK_OK = 0
CHECK_WARNING = 1
CHECK_CRITICAL = 2
CHECK_UNKNOWN = 3  # includes usage errors, so they are never mistaken for CRITICAL

TABLE = f"""\
\b
Exit codes:
  {OK}   success: every certificate with an OCSP URL has a valid staple, or was not due
  {FAILURE}   a certificate failed (named on stderr), or a staple says REVOKED
  {USAGE}   usage or configuration error
  {LOCKED}  another ocsptool run holds the lock; nothing was done
"""


def of_error(error: Exception) -> int:
    """The exit code for one of our errors (the core raises, the CLI exits)."""
    from ocsptool.errors import LockHeld, UsageError

    if isinstance(error, LockHeld):
        return LOCKED
    if isinstance(error, UsageError):
        return USAGE
    return FAILURE
