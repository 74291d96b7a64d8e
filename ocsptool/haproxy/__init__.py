"""HAProxy's runtime API (the stats socket): push staples and read what HAProxy serves.

- ``transport``: one interactive connection per socket (master CLI routed to ``@1``),
  windowed pipelining, one deadline per exchange, bounded replies; ``dialect``: every
  version difference; ``readers``: the parsers and readers; ``push``: push_staples and
  its read-back.
- ``names``: ``cli_word``, the one way a name goes into a command (escaped, or refused);
  ``peer``: who listens on a socket, and whether it may be sent a private key.
"""

from ocsptool.haproxy.addresses import AddressError, SockAddr, parse_address
from ocsptool.haproxy.certid import certid_key, response_certid_key
from ocsptool.haproxy.dialect import WINDOW, Dialect, dialect_for
from ocsptool.haproxy.errors import SocketLevelError, UnexpectedReply
from ocsptool.haproxy.names import UnsafeName, cli_word
from ocsptool.haproxy.push import (
    NO_SLOT,
    NOT_LOADED,
    UPDATED,
    Method,
    PushItem,
    PushResult,
    push_staples,
)
from ocsptool.haproxy.readers import (
    OcspUpdate,
    ServedStaple,
    loaded_certs,
    ocsp_updated_paths,
    ocsp_updates,
    show_ocsp_responses,
    show_ssl_certs,
)

__all__ = [
    "NOT_LOADED",
    "NO_SLOT",
    "UPDATED",
    "WINDOW",
    "AddressError",
    "Dialect",
    "Method",
    "OcspUpdate",
    "PushItem",
    "PushResult",
    "ServedStaple",
    "SockAddr",
    "SocketLevelError",
    "UnexpectedReply",
    "UnsafeName",
    "certid_key",
    "cli_word",
    "dialect_for",
    "loaded_certs",
    "ocsp_updated_paths",
    "ocsp_updates",
    "parse_address",
    "push_staples",
    "response_certid_key",
    "show_ocsp_responses",
    "show_ssl_certs",
]
