"""The command line: click only. Options become settings; core functions do the work.

Errors from the core (``OcspToolError``) become one line on stderr here, in one place,
with a traceback only at ``-vv``. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from inspect import cleandoc
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ocsptool import __version__, exitcodes
from ocsptool.errors import OcspToolError, UsageError

if TYPE_CHECKING:
    from ocsptool.check import Verdict
    from ocsptool.inventory import Inventory
    from ocsptool.refresh import RunReport
    from ocsptool.refresh import Settings as RunSettings
    from ocsptool.responders import Overrides
    from ocsptool.status import StatusReport

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Options:
    """A command's options, typed, built once by ``with_options`` from what click parsed."""

    paths: tuple[str, ...] = ()
    #: ``renew CERT...`` and ``show CERT``: the certificates named, among the inventory's.
    certs: tuple[str, ...] = ()
    state: Path | None = None
    sockets: tuple[str, ...] = ()
    haproxy_configs: tuple[Path, ...] = ()
    jobs: int = 8
    timeout: float = 10.0
    extensions: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    metrics: Path | None = None
    live: bool = False
    as_json: bool = False
    verbose: int = 0
    quiet: int = 0
    dry_run: bool = False
    force: bool = False
    #: The state path came from the built-in default (no --state, variable or config key).
    state_defaulted: bool = False
    update_certs: bool = False
    warn: dt.timedelta = dt.timedelta(hours=12)
    crit: dt.timedelta = dt.timedelta(hours=3)
    store: str | None = None
    on_change: str | tuple[str, ...] | None = None
    jobs_per_host: int = 4
    ca_bundle: Path | None = None
    proxy: str | None = None
    responder: str | None = None
    responder_overrides: Overrides | None = None

    @property
    def verbosity(self) -> int:
        return self.verbose - self.quiet

    def run_settings(self, jobs: int | None = None) -> RunSettings:
        """The core's settings for a run over these paths."""
        from ocsptool.limits import Timeouts
        from ocsptool.refresh import Settings
        from ocsptool.scan import DEFAULT_EXTENSIONS
        from ocsptool.state import default_path

        exts = tuple(e if e.startswith(".") else "." + e for e in self.extensions)
        timeout = self.timeout
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
        )


def with_options(command: Callable[[Options], None]) -> Callable[..., None]:
    """The one options decorator: the command gets one frozen ``Options``."""

    @functools.wraps(command)
    def callback(**params: Any) -> None:
        if isinstance(params.get("certs"), str):  # ``show CERT``: one
            params["certs"] = (params["certs"],)
        if "state" in params:
            params["state_defaulted"] = params["state"] is None
        command(Options(**params))

    return callback


class CommandFailed(click.ClickException):
    """A library error as click's: one ``ocsptool: ...`` line on stderr, its exit code.

    Every way out of ocsptool goes through click's standalone handling of this and of
    ``click.exceptions.Exit`` (a command's own exit code): the one exit path.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a ClassVar

    def show(self, file: Any = None) -> None:
        from ocsptool.run_output import stderr_line

        stderr_line(self.message, error=True)


_VERBOSITY = "ocsptool.verbosity"
_CONFIG = "ocsptool.config"


class _SourcedOption(click.Option):
    """An option whose bad value is blamed on where it came from: the flag, the
    variable, or the config file and its key (never a flag the operator did not use)."""

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        try:
            return super().process_value(ctx, value)
        except click.BadParameter as e:
            raise _SourceError(f"{_origin(ctx, self)}: {e.message}", ctx) from None


class _SourceError(click.UsageError):
    """A bad value, one line naming where it came from (``check`` makes it UNKNOWN)."""

    def show(self, file: Any = None) -> None:
        from ocsptool.run_output import stderr_line

        stderr_line(self.message, error=True)


def _origin(ctx: click.Context, param: click.Option) -> str:
    """Where ``param``'s value came from, in the words an operator used."""
    from click.core import ParameterSource

    source = ctx.get_parameter_source(param.name or "")
    if source is ParameterSource.DEFAULT_MAP:
        from ocsptool.config import key_of

        return f"{ctx.find_root().meta.get(_CONFIG, 'the config file')}: {key_of(param.name or '')}"
    if source is ParameterSource.ENVIRONMENT:
        return f"${param.envvar}"
    return "/".join(param.opts)


def _state_problem(o: Options, state_path: Path, *, writes: bool) -> str | None:
    """Why this run must not use ``state_path``: another user's state (for the commands
    that write it), or a default that can never exist (set ``state`` in the config)."""
    from ocsptool import owner

    if writes and (problem := owner.wrong_user_problem(state_path)):
        return problem
    return owner.default_state_problem(state_path) if o.state_defaulted else None


def _nothing_found(inventory: Inventory) -> list[str]:
    from ocsptool.status import nothing_found

    return nothing_found(inventory)


def _say_nothing_found(inventory: Inventory) -> int:
    """No certificate at all: one line per path that could not be read and one naming
    where it looked; exit 1 (refresh, renew, status)."""
    from ocsptool.run_output import stderr_line

    for text in _nothing_found(inventory):
        stderr_line(text, error=True)
    return exitcodes.FAILURE


class _Group(click.Group):
    """Turns whatever a command raises into ``CommandFailed``, in this one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise CommandFailed("interrupted", exitcodes.INTERRUPTED) from None
        except OcspToolError as e:
            if ctx.meta.get(_VERBOSITY, 0) >= 2:
                import traceback

                traceback.print_exc()
            raise CommandFailed(str(e), exitcodes.of_error(e)) from None
        except Exception as e:  # a bug: one line, unless -vv asked for the traceback
            if ctx.meta.get(_VERBOSITY, 0) >= 2:
                raise
            raise CommandFailed(
                f"internal error: {type(e).__name__}: {e} (run with -vv for details)",
                exitcodes.FAILURE,
            ) from None


def state_option(f: F) -> F:
    return click.option(
        "--state",
        "state",
        cls=_SourcedOption,
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="OCSPTOOL_STATE",
        show_envvar=True,
        help="The JSON state file. Default: $STATE_DIRECTORY/state.json under systemd, "
        "/var/lib/ocsptool/state.json as root, else ~/.local/state/ocsptool/state.json.",
    )(f)


def socket_option(f: F) -> F:
    return click.option(
        "-s",
        "--haproxy-socket",
        "sockets",
        multiple=True,
        metavar="ADDR",
        envvar="OCSPTOOL_HAPROXY_SOCKET",
        show_envvar=True,
        help="HAProxy runtime API: a Unix socket path, ipv4@HOST:PORT or ipv6@[HOST]:PORT. "
        "Repeatable (the variable takes several, space-separated).",
    )(f)


#: Where certificates and sockets come from; the same text in every command's --help.
SOURCES_HELP = (
    "Certificates come from each PATH (a certificate, a directory, a crt-list or a "
    "multi-cert bundle's base name) and from each --haproxy-config; with neither, from "
    "/etc/haproxy/haproxy.cfg when it exists. Sockets: each -s gets every certificate; "
    "each configuration's own socket (an admin stats socket, else the master socket of "
    "-S in /etc/default/haproxy, else an operator one) gets only the certificates that "
    "instance loads, under the names it loaded them. With one configuration, -s replaces "
    "its sockets."
)


def haproxy_config_option(f: F) -> F:
    return click.option(
        "--haproxy-config",
        "haproxy_configs",
        multiple=True,
        metavar="FILE",
        type=click.Path(path_type=Path),
        envvar="OCSPTOOL_HAPROXY_CONFIG",
        show_envvar=True,
        help="A HAProxy configuration (file or directory of *.cfg), one per instance "
        "(repeatable; the variable takes several, space-separated): staple every "
        "certificate it loads, push through its socket.",
    )(f)


def update_certs_option(f: F) -> F:
    return click.option(
        "--update-certs",
        is_flag=True,
        help="When HAProxy still holds an older certificate than the file (renewed on "
        "disk), load the new one (bundle with its key, .issuer, .ocsp) into HAProxy in one "
        "transaction with its staple, instead of failing with 'reload HAProxy'. The key "
        "goes only to HAProxy.",
    )(f)


def output_options(f: F) -> F:
    f = click.option(
        "--json", "as_json", is_flag=True, help="A machine-readable report on stdout."
    )(f)
    f = click.option("-q", "--quiet", count=True, help="Less on stderr: only failures.")(f)
    return click.option(
        "-v", "--verbose", count=True, help="More on stderr; -vv adds debug output and tracebacks."
    )(f)


def _checked(
    problem: Callable[[Any], str | None],
) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback: ``problem(value)`` (a one-line cause, or None) as a usage error."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            why = problem(value)
            if why is not None:
                raise click.BadParameter(why, ctx, param)
        return value

    return callback


def _ca_bundle_problem(path: Path) -> str | None:
    from ocsptool.fetch import ca_bundle_problem

    why = ca_bundle_problem(path)
    return None if why is None else f"{path}: {why}"


def _proxy_problem(url: str) -> str | None:
    from ocsptool.fetch import proxy_problem

    return proxy_problem(url)


def _url_problem(url: str) -> str | None:
    from ocsptool.errors import FetchError
    from ocsptool.fetch import check_url

    try:
        check_url(url)
    except FetchError as e:
        return str(e)
    return None


def _overrides_problem(value: object) -> str | None:
    from ocsptool.responders import Overrides

    return None if isinstance(value, Overrides) else "set responder_overrides in the config file"


def fetch_options(f: F) -> F:
    from ocsptool.pacing import DEFAULT_JOBS_PER_HOST

    f = click.option(
        "--responder-overrides",
        "responder_overrides",
        type=click.UNPROCESSED,
        hidden=True,
        callback=_checked(_overrides_problem),
        help="The config file's responder_overrides table (not a command-line option).",
    )(f)
    f = click.option(
        "--proxy",
        metavar="URL",
        envvar="OCSPTOOL_PROXY",
        show_envvar=True,
        callback=_checked(_proxy_problem),
        help="Send responder (and caIssuers) requests through this forward proxy, "
        "http://HOST:PORT. Wins over HTTPS_PROXY and HTTP_PROXY.",
    )(f)
    f = click.option(
        "--ca-bundle",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        envvar="OCSPTOOL_CA_BUNDLE",
        show_envvar=True,
        callback=_checked(_ca_bundle_problem),
        help="CA certificates (PEM) trusted for https:// responders, e.g. a private CA's. "
        "Wins over REQUESTS_CA_BUNDLE.",
    )(f)
    f = click.option(
        "--jobs-per-host",
        type=click.IntRange(1, 256),
        default=DEFAULT_JOBS_PER_HOST,
        show_default=True,
        envvar="OCSPTOOL_JOBS_PER_HOST",
        show_envvar=True,
        help="Requests in flight at once to one responder host (under --jobs).",
    )(f)
    f = click.option(
        "-j",
        "--jobs",
        type=click.IntRange(1, 256),
        default=8,
        show_default=True,
        envvar="OCSPTOOL_JOBS",
        show_envvar=True,
        help="Responder requests in flight at once.",
    )(f)
    return timeout_option("Seconds to wait for a responder (connect 5 s at most) or HAProxy.")(f)


def timeout_option(help: str) -> Callable[[F], F]:
    """``--timeout`` (and OCSPTOOL_TIMEOUT), the one definition; ``help`` says for what."""
    return click.option(
        "--timeout",
        type=click.FloatRange(0.1, 300),
        default=10.0,
        show_default=True,
        envvar="OCSPTOOL_TIMEOUT",
        show_envvar=True,
        help=help,
    )


def scan_options(f: F) -> F:
    f = click.option(
        "--exclude",
        "excludes",
        multiple=True,
        metavar="GLOB",
        envvar="OCSPTOOL_EXCLUDE",
        help="Skip files and directories whose name matches GLOB (repeatable).",
    )(f)
    return click.option(
        "--ext",
        "extensions",
        multiple=True,
        metavar="EXT",
        envvar="OCSPTOOL_EXT",
        help="File endings scanned in directories (repeatable). Default: .pem .crt",
    )(f)


def configured_paths_option(f: F) -> F:
    """The config file's ``paths`` for the commands that take CERTs (renew, show): the
    inventory they select from is every command's (a hidden option: the file feeds it)."""
    return click.option(
        "--path",
        "paths",
        multiple=True,
        hidden=True,
        type=click.Path(path_type=str),
        help="A certificate file or directory of the inventory (config key paths).",
    )(f)


def metrics_option(f: F) -> F:
    return click.option(
        "--metrics",
        cls=_SourcedOption,
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        envvar="OCSPTOOL_METRICS",
        show_envvar=True,
        help="Also write Prometheus metrics to FILE (node_exporter textfile collector, "
        "e.g. /var/lib/prometheus/node-exporter/ocsptool.prom), atomically.",
    )(f)


def store_option(help: str) -> Callable[[F], F]:
    """``--store URL`` (and OCSPTOOL_STORE); ``help`` says what the command does with it."""
    return click.option(
        "--store",
        metavar="URL",
        envvar="OCSPTOOL_STORE",
        show_envvar=True,
        help="The fleet's shared staple store: redis://HOST:PORT/DB, rediss://HOST:PORT/DB "
        "or unix:///path/redis.sock?db=N (needs the redis extra). " + help,
    )


class _HookCommand(click.ParamType[str | tuple[str, ...], Any]):
    """A string run through /bin/sh, or (from the config file) a list run as argv."""

    name = "CMD"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> str | tuple[str, ...]:
        if isinstance(value, list | tuple):
            return tuple(str(v) for v in value)
        return str(value)


def on_change_option(f: F) -> F:
    return click.option(
        "--on-change",
        "on_change",
        type=_HookCommand(),
        metavar="CMD",
        envvar="OCSPTOOL_ON_CHANGE",
        show_envvar=True,
        help="Run CMD (through /bin/sh) once after a run that changed a staple file, with "
        "the changed .ocsp paths in OCSPTOOL_CHANGED, one a line; never after a run that "
        "changed nothing. Killed after --timeout; a failing CMD fails the run (exit 1).",
    )(f)


_FETCH_STORE = (
    "A due certificate is taken from the store when it holds a fresher verified staple, "
    "else fetched once for the fleet and published there; a store that fails is given "
    "up for the run (exit 69)."
)


@click.group(cls=_Group, context_settings=CONTEXT, epilog=exitcodes.GROUP_CODES)
@click.version_option(__version__, "-V", "--version", message="ocsptool %(version)s")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="OCSPTOOL_CONFIG",
    show_envvar=True,
    help="TOML file with option defaults (paths, haproxy_sockets, state, ...). "
    "Default: /etc/ocsptool/config.toml when it exists. Flags and OCSPTOOL_* variables win.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Keep OCSP staples fresh for HAProxy.

    Run `ocsptool refresh` from cron or a systemd timer: it fetches, verifies and
    writes <cert>.ocsp for what is due, and pushes new staples into HAProxy.
    """
    from ocsptool import config

    path = config.find(config_file)
    if path is None or ctx.invoked_subcommand == "demo":
        return
    ctx.meta[_CONFIG] = path
    try:
        defaults = config.load(path)
    except UsageError as e:
        if ctx.invoked_subcommand == "check":  # its help promises one line on stdout
            from ocsptool.check import unknown

            verdict = unknown(f"usage error: {e}")
            click.echo(verdict.line)
            ctx.exit(verdict.code)
        raise CommandFailed(str(e), exitcodes.USAGE) from None
    # click resolves flag > environment > default_map > built-in default, per command.
    ctx.default_map = config.default_map(defaults, cli.commands)


@cli.command(context_settings=CONTEXT, epilog=exitcodes.TABLE)
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@state_option
@socket_option
@haproxy_config_option
@fetch_options
@scan_options
@metrics_option
@store_option(_FETCH_STORE)
@on_change_option
@click.option(
    "--force",
    is_flag=True,
    help="Fetch every certificate now, whatever the schedule (after a CA incident or a "
    "revocation); each response is still checked against the staple held.",
)
@update_certs_option
@output_options
@with_options
def refresh(o: Options) -> None:
    """Fetch, verify, write and push the staples that are due.

    PATH is a certificate file or a directory, scanned for *.pem and *.crt (HAProxy's
    side files .ocsp .issuer .key .sctl are never taken for certificates), a crt-list
    or a bundle's base name. Off a terminal, a successful run prints nothing;
    configuration lines it skips are one warning each on stderr, not a failure.
    """
    settings = o.run_settings()
    if problem := _state_problem(o, settings.state_path, writes=True):
        raise CommandFailed(problem, exitcodes.USAGE)
    _run(lambda: _refresh(settings, o.as_json, o.verbosity, o.metrics, o.force), o.verbosity)


def _refresh(
    settings: RunSettings,
    as_json: bool,
    verbosity: int,
    metrics: Path | None = None,
    force: bool = False,
) -> int:
    from ocsptool import run_output
    from ocsptool.refresh import inventory_of, run_refresh

    now = _now()
    tty = run_output.is_terminal()
    inventory = inventory_of(settings)
    everything = tuple(inventory.keys()) if force else ()  # the same pipeline, all due
    with run_output.progress_bar(tty and not as_json and verbosity >= 0) as progress:
        result = run_refresh(settings, inventory, now=now, progress=progress, force=everything)
    if not inventory.found:
        return _say_nothing_found(inventory)
    code = exitcodes.of_run(result.ok, result.store_problem is not None)
    run_output.emit(result, verbosity=verbosity)
    if metrics is not None:
        from ocsptool.errors import WriteError
        from ocsptool.files import metrics_failure

        try:
            _write_metrics(metrics, result, now)
        except WriteError as e:  # after the staples were written and pushed: exit 1
            run_output.stderr_line(metrics_failure(e), error=True)
            code = exitcodes.FAILURE
    if as_json:
        click.echo(run_output.refresh_json(result, now, code))
    elif tty and verbosity >= 0:
        run_output.summary(result)
    return code


def _write_metrics(path: Path, result: RunReport, now: dt.datetime) -> None:
    """Metrics after a refresh run: every certificate's staple, and this run, from what
    the run scanned and recorded (no second scan)."""
    from ocsptool import metrics as prom
    from ocsptool import status as health

    report = health.report(result.inventory, result.state, now)
    prom.write(path, report, last_run=now, last_run_ok=result.ok)


@cli.command(context_settings=CONTEXT)
@click.option("--keep", is_flag=True, help="Keep the temporary directory for a look afterwards.")
def demo(keep: bool) -> None:
    """See it work: a throwaway CA, OCSP responder and HAProxy, then the real refresh.

    Needs nothing of yours and changes nothing outside a temporary directory. Without
    a haproxy binary the push and TLS steps are skipped (and it says so).
    """
    from ocsptool.demo import run_demo

    _run(lambda: run_demo(keep=keep), 0)


def _run(action: Callable[[], int], verbosity: int) -> None:
    """Run a command body and exit with its code (errors: see ``_Group.invoke``)."""
    ctx = click.get_current_context()
    ctx.meta[_VERBOSITY] = verbosity
    if verbosity >= 2:
        from ocsptool.console import debug

        with debug(True):
            code = action()
    else:
        code = action()
    ctx.exit(code)


# -- status, check, renew, show (issue 3) --------------------------------------------------


def live_timeout_option(f: F) -> F:
    return timeout_option("Seconds to wait for HAProxy (--live).")(f)


def live_option(f: F) -> F:
    return click.option(
        "--live",
        is_flag=True,
        help="Also ask each HAProxy (-s) what it staples, and flag certificates it serves "
        "no staple for, an older one than on disk, or a different status.",
    )(f)


@cli.command(context_settings=CONTEXT, epilog=exitcodes.STATUS_CODES)
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@state_option
@socket_option
@haproxy_config_option
@live_option
@scan_options
@metrics_option
@store_option(
    "status shows where each staple came from (the responder, or the store and the node "
    "that fetched it) from the state; it does not connect to the store."
)
@live_timeout_option
@output_options
@with_options
def status(o: Options) -> None:
    """Staple health of every certificate, most urgent first.

    Reads the files on disk and the state file; no network unless --live. The
    first lines name what needs you; the table has one row per certificate.
    """
    settings = _status_settings(o)
    if problem := _state_problem(o, settings.state_path, writes=False):
        raise CommandFailed(problem, exitcodes.USAGE)
    _run(
        lambda: _status(settings, o.live, o.metrics, o.as_json, bool(o.store)),
        o.verbosity,
    )


def _status_settings(o: Options) -> RunSettings:
    settings = o.run_settings(jobs=1)
    if o.live and not settings.sockets and not settings.haproxy_configs and settings.paths:
        raise click.UsageError(
            "--live needs at least one -s/--haproxy-socket ADDR or --haproxy-config FILE"
        )
    return settings


def _gather(
    settings: RunSettings, live: bool, metrics: Path | None, now: dt.datetime
) -> StatusReport:
    from ocsptool import status as health

    report = health.gather(settings, now=now)
    if live:
        health.compare_live(report, report.sockets, now=now, timeout=settings.haproxy_timeout)
    if metrics is not None:
        from ocsptool import metrics as prom

        when, ok = prom.last_run_of(report)
        prom.write(metrics, report, last_run=when, last_run_ok=ok)
    return report


def _status(
    settings: RunSettings, live: bool, metrics: Path | None, as_json: bool, store: bool = False
) -> int:
    from ocsptool import status_output

    now = _now()
    report = _gather(settings, live, metrics, now)
    if not report.certs:
        return _say_nothing_found(report.inventory)
    code = exitcodes.OK if report.ok else exitcodes.FAILURE
    if as_json:
        click.echo(status_output.status_json(report, now, code))
    else:
        status_output.status_table(report, now, provenance=store)
    return code


class _NagiosCommand(click.Command):
    """Usage errors exit 3 (UNKNOWN) with one ``OCSP UNKNOWN - ...`` line on stdout."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            click.echo(f"OCSP UNKNOWN - usage error: {e.format_message()}")
            raise click.exceptions.Exit(exitcodes.CHECK_UNKNOWN) from None


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    from ocsptool.check import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx, param) from None


@cli.command(cls=_NagiosCommand, context_settings=CONTEXT, epilog=exitcodes.CHECK_CODES)
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@state_option
@socket_option
@haproxy_config_option
@live_option
@scan_options
@metrics_option
@click.option(
    "--warn",
    default="12h",
    callback=_duration,
    metavar="DURATION",
    show_default=True,
    help="WARNING when the earliest nextUpdate is this close (2d, 12h, 90m).",
)
@click.option(
    "--crit",
    default="3h",
    callback=_duration,
    metavar="DURATION",
    show_default=True,
    help="CRITICAL when the earliest nextUpdate is this close.",
)
@live_timeout_option
@with_options
def check(o: Options) -> None:
    """Monitoring plugin: one line with perfdata, Nagios exit codes.

    Reads the files and the state file like `ocsptool status`; no network unless --live.
    """
    from ocsptool import check as nagios

    try:
        if o.crit > o.warn:
            raise click.UsageError("--crit must not be longer than --warn")
        settings = _status_settings(o)
        verdict = _check(o, settings)
    except click.UsageError as e:
        verdict = nagios.unknown(f"usage error: {e.format_message()}")
    except UsageError as e:
        verdict = nagios.unknown(f"usage error: {e}")
    except OcspToolError as e:
        verdict = nagios.unknown(str(e))
    click.echo(verdict.line)
    click.get_current_context().exit(verdict.code)


def _check(o: Options, settings: RunSettings) -> Verdict:
    """The verdict; UNKNOWN when the check cannot see what it must (no certificate, no
    readable state): a check that cannot see a recorded failure must not say OK."""
    from ocsptool import check as nagios
    from ocsptool.status import state_problem

    if problem := _state_problem(o, settings.state_path, writes=False):
        return nagios.unknown(problem)
    now = _now()
    report = _gather(settings, o.live, o.metrics, now)
    if not report.certs:
        lines = _nothing_found(report.inventory)
        return nagios.unknown(lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""))
    if problem := state_problem(settings.state_path):
        return nagios.unknown(problem)
    if report.state_notes:
        return nagios.unknown(report.state_notes[0])
    return nagios.evaluate(report, now=now, warn=o.warn, crit=o.crit)


@cli.command(context_settings=CONTEXT, epilog=exitcodes.RENEW_CODES)
@click.argument("certs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@state_option
@socket_option
@haproxy_config_option
@configured_paths_option
@scan_options
@fetch_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Fetch and verify, then print what the responder sent (status, times, "
    "signer, HTTP cache headers); write, push and record nothing. Takes no lock.",
)
@store_option(_FETCH_STORE)
@on_change_option
@click.option(
    "--responder",
    metavar="URL",
    callback=_checked(_url_problem),
    help="Ask this OCSP URL instead of the certificate's own (debugging a CA's "
    "responder); the response is verified as usual.",
)
@update_certs_option
@output_options
@with_options
def renew(o: Options) -> None:
    """Fetch a staple now for each CERT, whatever the schedule.

    Verifies, writes <cert>.ocsp, pushes to every -s and records it in the state, then
    prints the new staple's status and validity. A failed renewal leaves the existing
    staple as it was. Exit 0 only when every CERT got a fresh verified staple.
    """
    settings = o.run_settings()
    if not o.dry_run and (problem := _state_problem(o, settings.state_path, writes=True)):
        raise CommandFailed(problem, exitcodes.USAGE)
    if o.dry_run:
        _run(lambda: _renew_dry(settings, o.certs, o.as_json), o.verbosity)
    else:
        _run(lambda: _renew(settings, o.certs, o.as_json, o.verbosity), o.verbosity)


def _renew(settings: RunSettings, certs: Sequence[str], as_json: bool, verbosity: int) -> int:
    from ocsptool import run_output
    from ocsptool.refresh import inventory_of, run_refresh
    from ocsptool.target import no_ocsp

    now = _now()
    inventory = inventory_of(settings, certs=certs)
    named, missing = inventory.select(certs)
    if missing or not named:  # a CERT that names no certificate: nothing is renewed
        return _say_nothing_found(inventory.only(named) if named else inventory.only(()))
    result = run_refresh(settings, inventory.only(named), now=now, force=named)
    outcomes = {o.path: o for o in result.outcomes}
    for path in named:
        out = outcomes.get(path)
        if out is not None and out.action == "no-ocsp":
            crl = result.state.certs.get(path, {}).get("crl")
            result.problems.append(f"{path}: {no_ocsp(crl)}; nothing to renew")
    renewed = all(outcomes.get(p) and outcomes[p].action == "fetched" for p in named)
    code = exitcodes.of_run(renewed and result.ok, result.store_problem is not None)
    run_output.emit(result, verbosity=min(verbosity, 0))
    if as_json:
        click.echo(run_output.refresh_json(result, now, code))
        return code
    for path in named:
        out = outcomes.get(path)
        if out is not None and out.action == "fetched":
            click.echo(run_output.describe_outcome(out))
    return code


def _renew_dry(settings: RunSettings, certs: Sequence[str], as_json: bool) -> int:
    import json
    from pathlib import Path as _Path

    from ocsptool.fetch import new_session
    from ocsptool.renew import dry_run
    from ocsptool.run_output import stderr_line
    from ocsptool.status_output import show_text

    now = _now()
    session = new_session(settings.ca_bundle, settings.proxy)
    try:
        results = [
            dry_run(
                _Path(p),
                session,
                now=now,
                timeouts=settings.timeouts,
                max_bytes=settings.max_response_bytes,
                url=settings.responder,
                overrides=settings.responder_overrides,
            )
            for p in certs
        ]
    finally:
        session.close()
    code = exitcodes.OK if all(r.ok for r in results) else exitcodes.FAILURE
    if as_json:
        click.echo(
            json.dumps(
                {
                    "exit_code": code,
                    "dry_run": [
                        {
                            "path": r.path,
                            "url": r.url,
                            "ok": r.ok,
                            "error": r.error,
                            "received": dict(r.received),
                            "headers": r.headers,
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
        )
        return code
    for r in results:
        lines = [("certificate", r.path), ("responder", r.url or "-"), *r.received]
        lines += [(f"HTTP {name}", value) for name, value in r.headers.items()]
        lines.append(
            ("result", f"REJECTED: {r.error}" if r.error else "verified; not written (--dry-run)")
        )
        click.echo(show_text(lines) + "\n")
    for r in results:
        if r.error:
            stderr_line(f"{r.path}: {r.error}", error=True)
    return code


@cli.command(context_settings=CONTEXT)
@click.argument("certs", metavar="CERT", nargs=1, type=click.Path(dir_okay=False, path_type=str))
@socket_option
@haproxy_config_option
@configured_paths_option
@scan_options
@with_options
def show(o: Options) -> None:
    """Decode CERT and its staple, verified against the certificate.

    Prints the certificate (subject, names, issuer, serial, validity, OCSP URL,
    Must-Staple) and the staple (status, producedAt, thisUpdate, nextUpdate, signer,
    revocation), or why the staple is invalid. Needs no state file. Exit 0 when the
    staple is good (or the certificate has no OCSP URL and no staple), 1 otherwise.
    The staple is the file the servers read for CERT (a configuration may name another
    one than CERT.ocsp); with a configuration, also which instances load it, under which
    name. A multi-cert bundle's base name shows each of its certificates.
    """
    _run(lambda: _show(o.run_settings(), o.certs[0]), 0)


def _show(settings: RunSettings, cert: str) -> int:
    from ocsptool.errors import CertificateError
    from ocsptool.refresh import inventory_of
    from ocsptool.show import inspect
    from ocsptool.status_output import show_text

    if cert.endswith(".ocsp"):
        certificate = cert.removesuffix(".ocsp")
        raise UsageError(
            f"{cert} is a staple; pass its certificate instead: ocsptool show {certificate}"
        )
    inventory = inventory_of(settings, cache=False, certs=(cert,))
    keys, _missing = inventory.select([cert])
    if not keys:
        problems = [why for path, why in inventory.problems if path.endswith(Path(cert).name)]
        raise CertificateError(f"{cert}: {problems[0] if problems else 'no such file'}")
    texts, ok = [], True
    for key in keys:
        try:
            fields, good = inspect(
                Path(key), _now(), inventory.staple_path(key), inventory.issuers(key)
            )
        except CertificateError as e:
            raise CertificateError(f"{key}: {e}") from None
        served = inventory.route(key).served
        if served:
            lines = [
                f"{sockets[0] if sockets else '(no socket)'} as {name}"
                + (" (ocsp-update on)" if update else "")
                for sockets, name, update in served
            ]
            fields.append(("haproxy", "; ".join(lines)))
        elif settings.haproxy_configs:
            fields.append(("haproxy", "not loaded by these configurations"))
        texts.append(show_text(fields))
        ok = ok and good
    click.echo("\n\n".join(texts))
    return exitcodes.OK if ok else exitcodes.FAILURE


for _command in (refresh, status, check):
    _command.help = f"{cleandoc(_command.help or '')}\n\n{SOURCES_HELP}"


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    cli.main(prog_name="ocsptool", standalone_mode=True)
