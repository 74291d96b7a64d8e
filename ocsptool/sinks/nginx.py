"""The nginx consumer: one nginx instance, named ``nginx:<its configuration>``.

nginx reads each ``ssl_stapling_file`` only when it loads its configuration, so by the
time ``publish`` is called the file sink has written every staple this nginx lacks to
its block's file, and what is left is to make nginx serve them, once per run:

1. nginx is not running (its ``pid`` file names no live master): the files are all it
   needs, it reads them when it starts; one note says so, and every staple counts as
   delivered (nothing to retry, not an error);
2. nginx already serves every one of these staples (a handshake per certificate: a
   staple fetched again with the same bytes, or adopted from disk): nothing to do;
3. else one reload (``ocsptool.nginx.control.reload_nginx``: ``nginx -t``, then SIGHUP
   to the master, or the operator's command such as ``systemctl reload nginx``), which
   returns once only new workers serve. A refused reload raises with nginx's own reason:
   the run exits 1 and every staple stays pending, retried on the next run, while nginx
   serves the previous ones;
4. then a TLS handshake per server name of each staple's blocks proves nginx serves
   exactly the bytes written (retried while workers start); anything else fails that
   certificate's delivery, with what nginx served.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.plural import plural
from ocsptool.sinks import Delivery, DeliveryState, Publication, SinkOptions

if TYPE_CHECKING:
    from ocsptool.nginx import NginxConfig
    from ocsptool.nginx.served import Probe

#: The consumer address of an nginx: this, then its configuration's absolute path.
PREFIX = "nginx:"

#: Delivery methods (the sink's own vocabulary).
NOT_RUNNING = "not-running"
ALREADY_SERVED = "served"
RELOADED = "reloaded"

#: Handshakes in flight at once when proving what nginx serves after a reload.
PROBE_THREADS = 8


def address_of(config: Path | str) -> str:
    """The consumer address of the nginx started with ``-c config``."""
    return PREFIX + os.path.abspath(config)


def is_nginx(address: str) -> bool:
    return address.startswith(PREFIX)


def config_of(address: str) -> str:
    """The configuration of an nginx consumer address."""
    return address.removeprefix(PREFIX)


class NginxSink:
    def __init__(self, address: str, options: SinkOptions | None = None) -> None:
        options = options or SinkOptions()
        self.name = address
        self.config = Path(config_of(address))
        self.label = f"nginx {self.config}"
        self.timeout = options.timeout
        self.command = options.nginx_reload
        #: One-line notes on this nginx as a whole (the run says them once).
        self.notes: list[str] = []

    def publish(self, items: Sequence[Publication]) -> list[Delivery]:
        from ocsptool.nginx import NginxError, NginxNotRunning, read_nginx_config
        from ocsptool.nginx.control import master_pid

        conf = read_nginx_config(self.config)  # NginxConfigError: one line, all retried
        probes = probes_of(conf)
        served = [i for i in items if (i.key, _path(i.staple_path)) in probes]
        deliveries = [
            Delivery(
                i.key,
                DeliveryState.NOT_SERVED,
                "staples it from no file (no ssl_stapling_file names it any more)",
            )
            for i in items
            if (i.key, _path(i.staple_path)) not in probes
        ]
        if not served:
            return deliveries
        try:
            master_pid(conf.pid_path)
        except NginxNotRunning as e:
            files = plural(len(served), "staple file", "staple files")
            self.notes.append(
                f"{self.label}: {e}; {files} written, which nginx reads when it starts"
            )
            return deliveries + [_done(i, NOT_RUNNING) for i in served]
        except NginxError as e:
            raise NginxError(f"{self.label}: {e}") from None
        found = {i.key: probes[i.key, _path(i.staple_path)] for i in served}
        if self._already_served(served, found):
            return deliveries + [_done(i, ALREADY_SERVED) for i in served]
        self._reload(conf)
        return deliveries + self._prove(served, found)

    # -- the steps --------------------------------------------------------------------

    def _already_served(
        self, items: Sequence[Publication], probes: dict[str, tuple[Probe, ...]]
    ) -> bool:
        """Whether nginx staples every item's bytes already: one handshake per item, on
        its first name, stopping at the first that differs (then it needs a reload)."""
        from ocsptool.nginx import NginxError
        from ocsptool.nginx.served import served_staple

        for item in items:
            first = probes[item.key][:1]
            if not first:
                return False  # nothing a handshake can ask: only a reload makes it sure
            probe = first[0]
            try:
                staple = served_staple(
                    probe.host, probe.port, probe.servername, timeout=min(2.0, self.timeout)
                )
            except NginxError:  # refused, timed out, no TLS client: reload and prove
                return False
            if staple != item.der:
                return False
        return True

    def _reload(self, conf: NginxConfig) -> None:
        """One reload; ``NginxError`` with nginx's reason (the run's problem) if refused."""
        from ocsptool.nginx import NginxError
        from ocsptool.nginx.control import check_command, nginx_binary, reload_nginx

        check = None
        if self.command is None and (binary := nginx_binary()) is not None:
            check = check_command(binary, conf.path)
        try:
            reload_nginx(
                conf.pid_path,
                check=check,
                command=self.command,
                error_logs=conf.error_logs,
                timeout=max(30.0, 3 * self.timeout),
            )
        except NginxError as e:
            raise NginxError(f"{self.label}: {e}") from None

    def _prove(
        self, items: Sequence[Publication], probes: dict[str, tuple[Probe, ...]]
    ) -> list[Delivery]:
        """A handshake per server name: nginx staples exactly each item's bytes."""
        from concurrent.futures import ThreadPoolExecutor

        from ocsptool.nginx.errors import TLSClientMissing
        from ocsptool.nginx.served import wait_until_served

        deadline = time.monotonic() + self.timeout

        def prove(job: tuple[Publication, Probe]) -> str | None:
            item, probe = job
            left = max(1.0, deadline - time.monotonic())  # workers may still be starting
            try:
                check = wait_until_served(
                    probe.host, probe.port, probe.servername, item.der, timeout=left
                )
            except TLSClientMissing as e:
                return f"nginx was reloaded, but {e}"
            return check.problem

        jobs = [(item, probe) for item in items for probe in probes[item.key]]
        with ThreadPoolExecutor(max(1, min(PROBE_THREADS, len(jobs))), "nginx-probe") as pool:
            answers = list(pool.map(prove, jobs))
        problems: dict[str, list[str]] = {}
        for (item, _probe), problem in zip(jobs, answers, strict=True):
            if problem is not None:
                problems.setdefault(item.key, []).append(problem)
        deliveries = []
        for item in items:
            if not probes[item.key]:
                self.notes.append(
                    f"{item.key}: {self.label} was reloaded, but no handshake can prove it "
                    "staples it: its server blocks have no exact server_name (only _, "
                    "wildcards or regular expressions) or no TLS listen on TCP"
                )
            why = "; ".join(dict.fromkeys(problems.get(item.key, ())))
            if why:
                deliveries.append(Delivery(item.key, DeliveryState.FAILED, why, RELOADED))
            else:
                deliveries.append(_done(item, RELOADED))
        return deliveries


def probes_of(conf: NginxConfig) -> dict[tuple[str, str], tuple[Probe, ...]]:
    """Per (certificate, staple file), both absolute: the handshakes that prove nginx
    serves the file's response (``ocsptool.nginx.served.probes``)."""
    from ocsptool.nginx.served import probes

    found: dict[tuple[str, str], tuple[Probe, ...]] = {}
    for staple in conf.staple_files:
        key = (_path(staple.certificate.path), _path(staple.path))
        found[key] = found.get(key, ()) + probes(staple)
    return found


def _path(path: Path | str | None) -> str:
    """The staple file as nginx's configuration names it (none: a staple with no file)."""
    return os.path.abspath(path) if path is not None else ""


def _done(item: Publication, method: str) -> Delivery:
    return Delivery(item.key, DeliveryState.PUBLISHED, None, method)
