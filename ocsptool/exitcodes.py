"""Exit codes: one table, used everywhere. Documented in ``--help`` and the README."""

from __future__ import annotations

OK = 0  # every certificate with an OCSP responder has a valid staple, or was not due
FAILURE = 1  # at least one certificate failed (each named on stderr), or a staple says revoked
USAGE = 2  # bad options, paths or config file
STORE = 69  # the shared store failed (EX_UNAVAILABLE); every staple was fetched directly
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
  {FAILURE}   a certificate failed (named on stderr), a staple says REVOKED, or none was found
      (also when --metrics could not be written: after the staples were)
  {USAGE}   usage or configuration error, or a state this user may not use (named, with the fix)
  {STORE}  the --store failed (named on stderr); every staple was fetched directly
  {LOCKED}  another ocsptool run holds the lock; nothing was done
"""

#: The group's --help: what every command shares, and where check differs.
GROUP_CODES = f"""\
\b
Exit codes (each command's --help has its own table):
  {OK}   success
  {FAILURE}   a certificate has a problem or failed (named on stderr), or none was found
  {USAGE}   usage or configuration error
  {STORE}  the --store failed (named on stderr); every staple was fetched directly
  {LOCKED}  another ocsptool run holds the lock (refresh, renew); nothing was done
  `ocsptool check` uses the Nagios codes instead: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

RENEW_CODES = f"""\
\b
Exit codes:
  {OK}   every CERT got a fresh, verified staple
  {FAILURE}   a CERT failed (named on stderr), has no OCSP URL, or a staple says REVOKED
  {USAGE}   usage or configuration error, or a state this user may not use (named, with the fix)
  {STORE}  the --store failed (named on stderr); every staple was fetched directly
  {LOCKED}  another ocsptool run holds the lock; nothing was done
"""


STATUS_CODES = """\
\b
Exit codes:
  0   no certificate has a problem (certificates without an OCSP URL never do)
  1   at least one certificate has a problem: revoked, missing/invalid/expired staple,
      failing refreshes, a HAProxy serving something else (--live), an unreadable file,
      an expired certificate; or no certificate was found at all
  2   usage or configuration error, or a state this user may not read (named, with the fix)
"""

CHECK_CODES = """\
\b
Exit codes (Nagios/Icinga plugin convention):
  0   OK
  1   WARNING: a problem `ocsptool status` shows, or the earliest nextUpdate within --warn
  2   CRITICAL: a revoked staple; a missing, invalid or expired staple on a Must-Staple
      certificate; an expired certificate; or the earliest nextUpdate within --crit
  3   UNKNOWN: usage errors (bad options, bad config file), no certificate found, a state
      file that is missing (no refresh has run yet), unreadable or corrupt, and anything
      that stopped the check; the line then starts "OCSP UNKNOWN -". Exit 2 always means
      CRITICAL here.
"""


def of_run(ok: bool, store_failed: bool) -> int:
    """The exit code of a refresh or renew run: a failed certificate (1) comes before a
    failed store (69), which comes before success."""
    if not ok:
        return FAILURE
    return STORE if store_failed else OK


def of_error(error: Exception) -> int:
    """The exit code for one of our errors (the core raises, the CLI exits)."""
    from ocsptool.errors import LockHeld, UsageError

    if isinstance(error, LockHeld):
        return LOCKED
    if isinstance(error, UsageError):
        return USAGE
    return FAILURE
