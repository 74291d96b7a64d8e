"""Every setting of every command, in one table: ``Options``' fields.

Each field says, in its ``setting(...)``, everything about one setting: its flags, its
environment variable, its config-file key and what a value there may be, its kind (which
``cli`` turns into a click option), the commands that take it, and its help. From this one
table ``cli`` makes the click options, ``config`` the config-file keys, and
``Options.run_settings`` the core's ``Settings``. A new setting is one field here.

Precedence (click does it): flags, then environment variables, then the config file, then
the defaults below.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocsptool.kubernetes import DEFAULT_SECRET_KEY
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts
from ocsptool.pacing import DEFAULT_JOBS_PER_HOST
from ocsptool.scan import DEFAULT_EXTENSIONS

if TYPE_CHECKING:
    from ocsptool.inventory import Inputs
    from ocsptool.kubernetes.selection import Selection
    from ocsptool.responders import Overrides

#: The commands that take certificates from the inventory (every way of naming them).
SOURCES = ("refresh", "renew", "status", "check", "show")
#: The commands that fetch from responders.
FETCHING = ("refresh", "renew")
#: The commands that write a report for people (-v, -q, --json).
REPORTING = ("refresh", "renew", "status")
#: The commands that keep or read the state.
STATEFUL = ("refresh", "renew", "status", "check")

JOBS_RANGE = (1, 256)
TIMEOUT_RANGE = (0.1, 300.0)


class BadValue(Exception):
    """A config-file value that is not what the setting takes (the message says what is)."""


@dataclass(frozen=True)
class Setting:
    """One setting's definition (the metadata of one ``Options`` field)."""

    #: Command-line flags (``("-s", "--haproxy-socket")``); the parameter is the field.
    flags: tuple[str, ...]
    commands: tuple[str, ...]
    #: Help, the same for every command or per command.
    help: str | Mapping[str, str]
    #: The value's kind, which ``cli`` turns into a click type or callback: ``text``,
    #: ``file`` (a file path), ``path`` (file or directory), ``str-path``, ``jobs``,
    #: ``seconds``, ``flag``, ``count``, ``duration``, ``hook``, ``table``, ``state`` (a
    #: file path whose access ``owner.state_problem`` checks, naming the fix).
    kind: str = "text"
    multiple: bool = False
    metavar: str | None = None
    env: str | None = None
    #: The config-file key, and how a value there is checked and converted (relative
    #: paths are taken from the file's directory).
    key: str | None = None
    convert: Callable[[Any, Path], Any] | None = None
    #: The commands the config file's value applies to (default: ``commands``).
    file_commands: tuple[str, ...] | None = None
    #: A problem with a given value (one line), checked as it is parsed.
    check: Callable[[Any], str | None] | None = None
    #: Not shown in --help (the config file feeds it).
    hidden: bool = False
    #: The commands that take it as their PATH... argument instead of an option.
    argument: tuple[str, ...] = ()

    def help_for(self, command: str) -> str:
        if isinstance(self.help, str):
            return self.help
        return self.help[command]


def setting(default: Any = None, **definition: Any) -> Any:
    """A field of ``Options`` with its ``Setting`` (``default``: its built-in default)."""
    return field(default=default, metadata={"setting": Setting(**definition)})


# -- config-file values ------------------------------------------------------------------


def _strings(value: Any, _base: Path) -> tuple[str, ...]:
    """A list of non-empty strings; a single string is taken as a list of one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadValue("expected a list of non-empty strings")
    return tuple(value)


def _paths(value: Any, base: Path) -> tuple[str, ...]:
    return tuple(os.path.join(base, v) for v in _strings(value, base))


def _path_list(value: Any, base: Path) -> tuple[Path, ...]:
    return tuple(Path(p) for p in _paths(value, base))


def _path(value: Any, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise BadValue("expected a file path (a non-empty string)")
    return base / value


def _unquoted(value: Any, what: str) -> None:
    """``jobs = "8"``: say that TOML wants the number without quotes."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return
        raise BadValue(f"a number is written without quotes ({what} = {value})")


def _jobs(value: Any, _base: Path) -> int:
    low, high = JOBS_RANGE
    _unquoted(value, "jobs")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadValue(f"expected a whole number from {low} to {high}")
    return value


def _timeout(value: Any, _base: Path) -> float:
    low, high = TIMEOUT_RANGE
    _unquoted(value, "timeout")
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadValue(f"expected a number of seconds from {low} to {high:g}")
    return float(value)


def _store(value: Any, _base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise BadValue("expected a store URL such as 'redis://HOST:PORT/DB'")
    return value


def _command(value: Any, _base: Path) -> str | tuple[str, ...]:
    """A string for the shell, or a list run as argv."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise BadValue("expected a command: a string for the shell or a list of strings (argv)")


def _reload_command(value: Any, base: Path) -> str | tuple[str, ...]:
    command = _command(value, base)
    problem = reload_problem(command)
    if problem is not None:
        raise BadValue(problem)
    return command


def _jobs_per_host(value: Any, _base: Path) -> int:
    from ocsptool.pacing import jobs_per_host_problem

    problem = jobs_per_host_problem(value)
    if problem is not None:
        raise BadValue(problem)
    return int(value)


def _ca_bundle(value: Any, base: Path) -> Path:
    path = _path(value, base)
    problem = ca_bundle_problem(path)
    if problem is not None:
        raise BadValue(problem)
    return path


def _proxy(value: Any, _base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise BadValue('expected a URL in quotes, e.g. proxy = "http://proxy.example:3128"')
    problem = proxy_problem(value)
    if problem is not None:
        raise BadValue(problem)
    return value


def _overrides(value: Any, _base: Path) -> Any:
    """The ``responder_overrides`` table (a ``ConfigError`` names the entry itself)."""
    from ocsptool.responders import parse_overrides

    return parse_overrides(value)


def _bool(value: Any, _base: Path) -> bool:
    if not isinstance(value, bool):
        raise BadValue("expected true or false")
    return value


def _text(value: Any, _base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise BadValue("expected a non-empty string")
    return value


def _namespaces(value: Any, base: Path) -> tuple[str, ...]:
    names = _strings(value, base)
    problem = namespaces_problem(names)
    if problem is not None:
        raise BadValue(problem)
    return names


def _secret_key(value: Any, base: Path) -> str:
    key = _text(value, base)
    problem = secret_key_problem(key)
    if problem is not None:
        raise BadValue(problem)
    return key


# -- checks of a given value ---------------------------------------------------------------


def ca_bundle_problem(path: Path) -> str | None:
    from ocsptool.fetch import ca_bundle_problem as problem

    why = problem(path)
    return None if why is None else f"{path}: {why}"


def proxy_problem(url: str) -> str | None:
    from ocsptool.fetch import proxy_problem as problem

    return problem(url)


def url_problem(url: str) -> str | None:
    from ocsptool.errors import FetchError
    from ocsptool.fetch import check_url

    try:
        check_url(url)
    except FetchError as e:
        return str(e)
    return None


def reload_problem(command: str | tuple[str, ...]) -> str | None:
    """Why a reload command cannot be run as argv (unbalanced quotes, no words), or None."""
    try:
        words = _argv(command)
    except ValueError as e:
        return f"cannot split {command!r} into words: {e}"
    return None if words else "expected a command, e.g. 'systemctl reload nginx'"


def namespaces_problem(names: tuple[str, ...]) -> str | None:
    if not names:
        return None
    from ocsptool.kubernetes.errors import KubeConfigError
    from ocsptool.kubernetes.names import check_namespace

    try:
        for name in names:
            check_namespace(name)
    except KubeConfigError as e:
        return str(e).removeprefix("kubernetes: ")
    return None


def secret_key_problem(key: str) -> str | None:
    if key == DEFAULT_SECRET_KEY:  # every run checks the default: no import for it
        return None
    from ocsptool.kubernetes.errors import KubeConfigError
    from ocsptool.kubernetes.names import check_data_key

    try:
        check_data_key(key)
    except KubeConfigError as e:
        return str(e).removeprefix("kubernetes: ")
    return None


def overrides_problem(value: object) -> str | None:
    from ocsptool.responders import Overrides

    return None if isinstance(value, Overrides) else "set responder_overrides in the config file"


# -- the table -----------------------------------------------------------------------------

_STORE_HELP = (
    "The fleet's shared staple store: redis://HOST:PORT/DB, rediss://HOST:PORT/DB or "
    "unix:///path/redis.sock?db=N (needs the redis extra). "
)
_FETCH_STORE = (
    "A due certificate is taken from the store when it holds a fresher verified staple, "
    "else fetched once for the fleet and published there; a store that fails is given "
    "up for the run (exit 69)."
)
_FETCH_TIMEOUT = "Seconds to wait for a responder (connect 5 s at most) or HAProxy."
_GATEWAY_KEYS = (
    "Istio and kgateway read tls.ocsp-staple; Envoy Gateway's proposal ocsp.staple; "
    "nghttpx-ingress tls.ocsp-resp"
)
_LIVE_TIMEOUT = "Seconds to wait for HAProxy (--live)."


@dataclass(frozen=True)
class Settings:
    """The core's settings for a run, made from ``Options`` (``Options.run_settings``):
    what ``refresh``, ``renew``, ``status`` and ``check`` pass to the core."""

    paths: tuple[str, ...]
    state_path: Path
    sockets: tuple[str, ...] = ()
    jobs: int = 8
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_response_bytes: int = MAX_RESPONSE_BYTES
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    excludes: tuple[str, ...] = ()
    haproxy_timeout: float = 10.0
    #: The fleet's shared staple store (``redis://...``), or None.
    store: str | None = None
    #: The on-change hook: a shell string or an argv tuple (killed after the read timeout).
    on_change: str | tuple[str, ...] | None = None
    #: HAProxy configurations (one per instance): their certificates, routed to their sockets.
    haproxy_configs: tuple[Path, ...] = ()
    #: Requests in flight per responder host (under ``jobs``).
    jobs_per_host: int = DEFAULT_JOBS_PER_HOST
    #: ``responder_overrides`` from the config file: an issuer's URL replaces the leaf's.
    responder_overrides: Overrides | None = None
    #: ``renew --responder``: ask this URL instead of the certificates' own.
    responder: str | None = None
    #: CA certificates for https:// responders, and a forward proxy (``fetch.new_session``).
    ca_bundle: Path | None = None
    proxy: str | None = None
    #: Load a renewed certificate into HAProxy with its staple (``--update-certs``).
    update_certs: bool = False
    #: nginx configurations (one per instance): their staple files, then one reload each.
    nginx_configs: tuple[Path, ...] = ()
    #: How to reload nginx (argv, e.g. ``systemctl reload nginx``); None: SIGHUP to the
    #: master named by the configuration's ``pid``, after ``nginx -t``.
    nginx_reload: tuple[str, ...] | None = None
    #: ``--kubernetes``: the TLS Secrets served (None: none).
    kubernetes: Selection | None = None

    @property
    def inputs(self) -> Inputs:
        """What names this run's certificates (``sources.discover`` reads them)."""
        from ocsptool.inventory import Inputs

        return Inputs(
            paths=self.paths,
            sockets=self.sockets,
            haproxy_configs=self.haproxy_configs,
            nginx_configs=self.nginx_configs,
            extensions=self.extensions,
            excludes=self.excludes,
            kubernetes=self.kubernetes,
        )

    @property
    def discovery_cache(self) -> Path:
        """``<state>.discovery``: a configuration's reading, kept for the next run."""
        return self.state_path.with_name(self.state_path.name + ".discovery")


@dataclass(frozen=True)
class Options:
    """A command's options, typed, built once from what click parsed: the table."""

    paths: tuple[str, ...] = setting(
        (),
        flags=("--path",),
        commands=SOURCES,
        argument=("refresh", "status", "check"),
        hidden=True,
        kind="str-path",
        multiple=True,
        key="paths",
        convert=_paths,
        help="A certificate file or directory of the inventory (config key paths).",
    )
    #: ``renew CERT...`` and ``show CERT``: the certificates named, among the inventory's.
    certs: tuple[str, ...] = ()
    state: Path | None = setting(
        flags=("--state",),
        commands=STATEFUL,
        kind="state",
        env="OCSPTOOL_STATE",
        key="state",
        convert=_path,
        help="The JSON state file. Default: $STATE_DIRECTORY/state.json under systemd, "
        "/var/lib/ocsptool/state.json as root, else ~/.local/state/ocsptool/state.json.",
    )
    sockets: tuple[str, ...] = setting(
        (),
        flags=("-s", "--haproxy-socket"),
        commands=SOURCES,
        multiple=True,
        metavar="ADDR",
        env="OCSPTOOL_HAPROXY_SOCKET",
        key="haproxy_sockets",
        convert=_strings,
        help="HAProxy runtime API: a Unix socket path, ipv4@HOST:PORT or ipv6@[HOST]:PORT. "
        "Repeatable (the variable takes several, space-separated).",
    )
    haproxy_configs: tuple[Path, ...] = setting(
        (),
        flags=("--haproxy-config",),
        commands=SOURCES,
        kind="path",
        multiple=True,
        metavar="FILE",
        env="OCSPTOOL_HAPROXY_CONFIG",
        key="haproxy_configs",
        convert=_path_list,
        help="A HAProxy configuration (file or directory of *.cfg), one per instance "
        "(repeatable; the variable takes several, space-separated): staple every "
        "certificate it loads, push through its socket.",
    )
    nginx_configs: tuple[Path, ...] = setting(
        (),
        flags=("--nginx-config",),
        commands=SOURCES,
        kind="path",
        multiple=True,
        metavar="FILE",
        env="OCSPTOOL_NGINX_CONFIG",
        key="nginx_configs",
        convert=_path_list,
        help="An nginx configuration (nginx.conf), one per instance (repeatable; the "
        "variable takes several, space-separated): keep every ssl_stapling_file of its "
        "server blocks, then reload nginx once when one changed.",
    )
    nginx_reload: str | tuple[str, ...] | None = setting(
        flags=("--nginx-reload",),
        commands=FETCHING,
        kind="hook",
        metavar="CMD",
        env="OCSPTOOL_NGINX_RELOAD",
        key="nginx_reload",
        convert=_reload_command,
        check=reload_problem,
        help="Reload nginx with CMD, e.g. 'systemctl reload nginx' (split into words, no "
        "shell; a list in the config file), instead of 'nginx -t' and a SIGHUP to the "
        "master its pid file names. Run once, only after a run that changed a staple file "
        "nginx does not serve yet.",
    )
    kubernetes: bool = setting(
        False,
        flags=("--kubernetes",),
        commands=SOURCES,
        kind="flag",
        key="kubernetes",
        convert=_bool,
        help="Also staple the TLS Secrets (kubernetes.io/tls) of each --namespace: the "
        "staple goes into each Secret under --secret-key, conditionally (never tls.crt, "
        "tls.key or another key). The API is found as kubectl finds it: --kubeconfig, "
        "else KUBECONFIG, else the pod's service account. Needs get, list and patch on "
        "secrets (contrib/kubernetes/role.yaml).",
    )
    namespaces: tuple[str, ...] = setting(
        (),
        flags=("-n", "--namespace"),
        commands=SOURCES,
        multiple=True,
        metavar="NS",
        key="namespaces",
        convert=_namespaces,
        check=namespaces_problem,
        help="A namespace whose TLS Secrets are served (repeatable; --kubernetes). "
        "Default: the service account's namespace in a pod, else the kubeconfig context's.",
    )
    selector: str | None = setting(
        flags=("--selector",),
        commands=SOURCES,
        metavar="LABELS",
        key="selector",
        convert=_text,
        help="Only the TLS Secrets with these labels, as kubectl -l takes them "
        "(app=web,tier!=dev; --kubernetes).",
    )
    secret_key: str = setting(
        DEFAULT_SECRET_KEY,
        flags=("--secret-key",),
        commands=SOURCES,
        metavar="KEY",
        key="secret_key",
        convert=_secret_key,
        check=secret_key_problem,
        help=f"The Secret data key the staple goes under (--kubernetes): {_GATEWAY_KEYS}.",
    )
    kubeconfig: Path | None = setting(
        flags=("--kubeconfig",),
        commands=SOURCES,
        kind="file",
        metavar="FILE",
        key="kubeconfig",
        convert=_path,
        help="The kubeconfig to use (--kubernetes; its current context). Default: "
        "KUBECONFIG, else the pod's service account, else ~/.kube/config.",
    )
    jobs: int = setting(
        8,
        flags=("-j", "--jobs"),
        commands=FETCHING,
        kind="jobs",
        env="OCSPTOOL_JOBS",
        key="jobs",
        convert=_jobs,
        help="Responder requests in flight at once.",
    )
    jobs_per_host: int = setting(
        4,
        flags=("--jobs-per-host",),
        commands=FETCHING,
        kind="jobs",
        env="OCSPTOOL_JOBS_PER_HOST",
        key="jobs_per_host",
        convert=_jobs_per_host,
        help="Requests in flight at once to one responder host (under --jobs).",
    )
    timeout: float = setting(
        10.0,
        flags=("--timeout",),
        commands=STATEFUL,
        kind="seconds",
        env="OCSPTOOL_TIMEOUT",
        key="timeout",
        convert=_timeout,
        help={
            "refresh": _FETCH_TIMEOUT,
            "renew": _FETCH_TIMEOUT,
            "status": _LIVE_TIMEOUT,
            "check": _LIVE_TIMEOUT,
        },
    )
    ca_bundle: Path | None = setting(
        flags=("--ca-bundle",),
        commands=FETCHING,
        kind="file",
        metavar="FILE",
        env="OCSPTOOL_CA_BUNDLE",
        key="ca_bundle",
        convert=_ca_bundle,
        check=ca_bundle_problem,
        help="CA certificates (PEM) trusted for https:// responders, e.g. a private CA's. "
        "Wins over REQUESTS_CA_BUNDLE.",
    )
    proxy: str | None = setting(
        flags=("--proxy",),
        commands=FETCHING,
        metavar="URL",
        env="OCSPTOOL_PROXY",
        key="proxy",
        convert=_proxy,
        check=proxy_problem,
        help="Send responder (and caIssuers) requests through this forward proxy, "
        "http://HOST:PORT. Wins over HTTPS_PROXY and HTTP_PROXY.",
    )
    responder_overrides: Overrides | None = setting(
        flags=("--responder-overrides",),
        commands=FETCHING,
        kind="table",
        hidden=True,
        key="responder_overrides",
        convert=_overrides,
        check=overrides_problem,
        help="The config file's responder_overrides table (not a command-line option).",
    )
    extensions: tuple[str, ...] = setting(
        (),
        flags=("--ext",),
        commands=SOURCES,
        multiple=True,
        metavar="EXT",
        env="OCSPTOOL_EXT",
        key="extensions",
        convert=_strings,
        help="File endings scanned in directories (repeatable). Default: .pem .crt",
    )
    excludes: tuple[str, ...] = setting(
        (),
        flags=("--exclude",),
        commands=SOURCES,
        multiple=True,
        metavar="GLOB",
        env="OCSPTOOL_EXCLUDE",
        key="exclude",
        convert=_strings,
        help="Skip files and directories whose name matches GLOB (repeatable).",
    )
    metrics: Path | None = setting(
        flags=("--metrics",),
        commands=("refresh", "status", "check"),
        file_commands=("refresh",),  # the timer writes them, not every monitoring check
        kind="file",
        metavar="FILE",
        env="OCSPTOOL_METRICS",
        key="metrics",
        convert=_path,
        help="Also write Prometheus metrics to FILE (node_exporter textfile collector, "
        "e.g. /var/lib/prometheus/node-exporter/ocsptool.prom), atomically.",
    )
    store: str | None = setting(
        flags=("--store",),
        commands=("refresh", "renew", "status"),
        metavar="URL",
        env="OCSPTOOL_STORE",
        key="store",
        convert=_store,
        help={
            "refresh": _STORE_HELP + _FETCH_STORE,
            "renew": _STORE_HELP + _FETCH_STORE,
            "status": _STORE_HELP + "status shows where each staple came from (the "
            "responder, or the store and the node that fetched it) from the state; it does "
            "not connect to the store.",
        },
    )
    on_change: str | tuple[str, ...] | None = setting(
        flags=("--on-change",),
        commands=FETCHING,
        kind="hook",
        metavar="CMD",
        env="OCSPTOOL_ON_CHANGE",
        key="on_change",
        convert=_command,
        help="Run CMD (through /bin/sh) once after a run that changed a staple file, with "
        "the changed staple paths in the file OCSPTOOL_CHANGED_FILE names, each followed by "
        "a NUL byte (also in OCSPTOOL_CHANGED, one a line, except names with control "
        "characters); never after a run that changed nothing. Killed after --timeout; a "
        "failing CMD fails the run (exit 1).",
    )
    force: bool = setting(
        False,
        flags=("--force",),
        commands=("refresh",),
        kind="flag",
        help="Fetch every certificate now, whatever the schedule (after a CA incident or a "
        "revocation); each response is still checked against the staple held.",
    )
    dry_run: bool = setting(
        False,
        flags=("--dry-run",),
        commands=("renew",),
        kind="flag",
        help="Fetch and verify, then print what the responder sent (status, times, "
        "signer, HTTP cache headers); write, push and record nothing. Takes no lock.",
    )
    responder: str | None = setting(
        flags=("--responder",),
        commands=("renew",),
        metavar="URL",
        check=url_problem,
        help="Ask this OCSP URL instead of the certificate's own (debugging a CA's "
        "responder); the response is verified as usual.",
    )
    update_certs: bool = setting(
        False,
        flags=("--update-certs",),
        commands=FETCHING,
        kind="flag",
        key="update_certs",
        convert=_bool,
        help="When HAProxy still holds an older certificate than the file (renewed on "
        "disk), load the new one (bundle with its key, .issuer, .ocsp) into HAProxy in one "
        "transaction with its staple, instead of failing with 'reload HAProxy'. The key "
        "goes only to HAProxy.",
    )
    live: bool = setting(
        False,
        flags=("--live",),
        commands=("status", "check"),
        kind="flag",
        help="Also ask each HAProxy (-s) what it staples, and each nginx by a TLS handshake "
        "per server name, and flag certificates it serves no staple for, an older one than "
        "on disk, or a different status.",
    )
    warn: dt.timedelta = setting(
        dt.timedelta(hours=12),
        flags=("--warn",),
        commands=("check",),
        kind="duration",
        metavar="DURATION",
        help="WARNING when the earliest nextUpdate is this close (2d, 12h, 90m).",
    )
    crit: dt.timedelta = setting(
        dt.timedelta(hours=3),
        flags=("--crit",),
        commands=("check",),
        kind="duration",
        metavar="DURATION",
        help="CRITICAL when the earliest nextUpdate is this close.",
    )
    as_json: bool = setting(
        False,
        flags=("--json",),
        commands=REPORTING,
        kind="flag",
        help="A machine-readable report on stdout.",
    )
    quiet: int = setting(
        0,
        flags=("-q", "--quiet"),
        commands=REPORTING,
        kind="count",
        help="Less on stderr: only failures.",
    )
    verbose: int = setting(
        0,
        flags=("-v", "--verbose"),
        commands=REPORTING,
        kind="count",
        help="More on stderr; -vv adds debug output and tracebacks.",
    )
    #: The state path came from the built-in default (no --state, variable or config key).
    state_defaulted: bool = False

    @property
    def verbosity(self) -> int:
        return self.verbose - self.quiet

    def run_settings(self, jobs: int | None = None) -> Settings:
        """The core's settings for a run."""
        from ocsptool.limits import Timeouts
        from ocsptool.scan import DEFAULT_EXTENSIONS
        from ocsptool.state import default_path

        exts = tuple(e if e.startswith(".") else "." + e for e in self.extensions)
        timeout = self.timeout
        kubernetes = self.kubernetes_selection()
        return Settings(
            paths=self.paths,
            state_path=self.state or default_path(),
            sockets=tuple(address for value in self.sockets for address in value.split()),
            jobs=self.jobs if jobs is None else jobs,
            timeouts=Timeouts(connect=min(5.0, timeout), read=timeout, total=3 * timeout),
            extensions=exts or DEFAULT_EXTENSIONS,
            excludes=self.excludes,
            haproxy_timeout=timeout,
            store=self.store or None,
            on_change=self.on_change or None,
            haproxy_configs=self.haproxy_configs,
            jobs_per_host=self.jobs_per_host,
            responder_overrides=self.responder_overrides,
            responder=self.responder,
            ca_bundle=self.ca_bundle,
            proxy=self.proxy,
            update_certs=self.update_certs,
            nginx_configs=self.nginx_configs,
            nginx_reload=_argv(self.nginx_reload),
            kubernetes=kubernetes,
        )

    def kubernetes_selection(self) -> Selection | None:
        """The TLS Secrets to serve (``--kubernetes``), or None; a Kubernetes option
        without ``--kubernetes`` is a usage error (it would be silently ignored)."""
        if not self.kubernetes:
            given = [
                flag
                for flag, value in (
                    ("--namespace", self.namespaces),
                    ("--selector", self.selector),
                    ("--kubeconfig", self.kubeconfig),
                    ("--secret-key", self.secret_key != DEFAULT_SECRET_KEY),
                )
                if value
            ]
            if given:
                from ocsptool.errors import UsageError

                raise UsageError(
                    f"{', '.join(given)} only apply with --kubernetes "
                    "(or kubernetes = true in the config file)"
                )
            return None
        from ocsptool.kubernetes.selection import Selection

        return Selection(self.namespaces, self.selector, self.secret_key, self.kubeconfig)


def _argv(command: str | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """A command as argv: a string split into words as a shell would (no shell runs it)."""
    if not command:
        return None
    if isinstance(command, str):
        import shlex

        return tuple(shlex.split(command))
    return tuple(command)


@functools.cache
def table() -> tuple[tuple[str, Setting], ...]:
    """Every setting, in the order of the table: (parameter name, definition)."""
    return tuple(
        (f.name, f.metadata["setting"]) for f in fields(Options) if "setting" in f.metadata
    )


@functools.cache
def _defaults() -> dict[str, Any]:
    return {f.name: f.default for f in fields(Options)}


def default_of(name: str) -> Any:
    return _defaults()[name]


def config_keys() -> dict[str, tuple[str, Callable[[Any, Path], Any], tuple[str, ...]]]:
    """Config-file key -> (parameter name, converter, the commands its value applies to)."""
    return {
        s.key: (name, s.convert, s.file_commands or s.commands)
        for name, s in table()
        if s.key is not None and s.convert is not None
    }
