"""nginx as a target: its configuration, its master process, and what it staples.

- ``config.read_nginx_config(path)``: the server blocks, certificates, staple files,
  pid file, problems and warnings of an nginx configuration (reads files only).
- ``stapling``: which ``ssl_stapling_file`` ocsptool keeps, and the traps (pure).
- ``control``: is nginx running, ``nginx -t``, one reload, and waiting for its workers.
- ``served``: the OCSP response nginx staples in a real TLS handshake (pyOpenSSL,
  the ``nginx`` extra).
"""

from __future__ import annotations

from ocsptool.nginx.config import DEFAULT_CONFIG, read_nginx_config
from ocsptool.nginx.errors import (
    HandshakeFailed,
    NginxConfigError,
    NginxError,
    NginxNotRunning,
    ReloadFailed,
    ReloadRefused,
    TLSClientMissing,
)
from ocsptool.nginx.model import Certificate, Listen, NginxConfig, ServerBlock, StapleFile
from ocsptool.nginx.stapling import Findings, findings, staple_files

__all__ = [
    "DEFAULT_CONFIG",
    "Certificate",
    "Findings",
    "HandshakeFailed",
    "Listen",
    "NginxConfig",
    "NginxConfigError",
    "NginxError",
    "NginxNotRunning",
    "ReloadFailed",
    "ReloadRefused",
    "ServerBlock",
    "StapleFile",
    "TLSClientMissing",
    "findings",
    "read_nginx_config",
    "staple_files",
]
