"""The command line: click only. Options become settings; core functions do the work.

Errors from the core (``OcspToolError``) become one line on stderr here, in one place,
with a traceback only at ``-vv``. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Sequence
from inspect import cleandoc
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ocsptool import __version__, exitcodes
from ocsptool.errors import OcspToolError, UsageError
from ocsptool.printable import printable
from ocsptool.settings import JOBS_RANGE, TIMEOUT_RANGE, Options, Setting, default_of, table

if TYPE_CHECKING:
    from ocsptool.check import Verdict
    from ocsptool.inventory import Inventory
    from ocsptool.outcome import RunReport
    from ocsptool.settings import Settings as RunSettings
    from ocsptool.status import StatusReport

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


class _PathsArgument(click.Argument):
    """PATH...: the config file's ``paths`` when none is given. click 8.2 looks up the
    default map for an empty ``nargs=-1`` argument itself; 8.1 (Debian 12's) takes the
    empty tuple as given."""

    def consume_value(self, ctx: click.Context, opts: Any) -> tuple[Any, Any]:
        from click.core import ParameterSource

        value, source = super().consume_value(ctx, opts)
        if value == () and source is ParameterSource.COMMANDLINE:
            default = ctx.lookup_default(self.name or "")
            if default is not None:
                return default, ParameterSource.DEFAULT_MAP
        return value, source


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
    """Why this run must not use ``state_path``: a default that can never exist (set
    ``state`` in the config), another user's state or directory (for the commands that
    write it), or a state this user may not read; each names the fix."""
    from ocsptool import owner

    if o.state_defaulted and (problem := owner.default_state_problem(state_path)):
        return problem
    return owner.state_problem(state_path, writes=writes)


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


#: Where certificates and sockets come from; the same text in every command's --help.
SOURCES_HELP = (
    "Certificates come from each PATH (a certificate, a directory, a crt-list or a "
    "multi-cert bundle's base name), each --haproxy-config and each --nginx-config (every "
    "server block's ssl_stapling_file); with none, from /etc/haproxy/haproxy.cfg and "
    "/etc/nginx/nginx.conf, those that exist. nginx is reloaded once after a run that "
    "wrote staples it does not serve yet. Sockets: each -s gets every certificate; "
    "each configuration's own socket (an admin stats socket, else the master socket of "
    "-S in /etc/default/haproxy, else an operator one) gets only the certificates that "
    "instance loads, under the names it loaded them. With one configuration, -s replaces "
    "its sockets. With --kubernetes, also the TLS Secrets of each --namespace: each staple "
    "goes into its Secret."
)


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


if TYPE_CHECKING:  # click 8.2 made ParamType generic; 8.1 (Debian 12's) cannot subscript it
    _HookType = click.ParamType[str | tuple[str, ...], Any]
else:
    _HookType = click.ParamType


class _HookCommand(_HookType):
    """A string run through /bin/sh, or (from the config file) a list run as argv."""

    name = "CMD"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> str | tuple[str, ...]:
        if isinstance(value, list | tuple):
            return tuple(str(v) for v in value)
        return str(value)


#: Each kind's click type, made only when an option of that kind is (click 8.1 looks up
#: translations on the file system for every type it makes: all of them for each option
#: cost a no-op run 17 ms there).
_CLICK_TYPES: dict[str, Callable[[], Any]] = {
    "file": lambda: click.Path(dir_okay=False, path_type=Path),
    # Not click's "is not readable": ``owner.state_problem`` says whose it is and the fix.
    "state": lambda: click.Path(dir_okay=False, readable=False, path_type=Path),
    "path": lambda: click.Path(path_type=Path),
    "str-path": lambda: click.Path(path_type=str),
    "jobs": lambda: click.IntRange(*JOBS_RANGE),
    "seconds": lambda: click.FloatRange(*TIMEOUT_RANGE),
    "hook": _HookCommand,
    "table": lambda: click.UNPROCESSED,
}


def _click_type(setting: Setting) -> Any:
    make = _CLICK_TYPES.get(setting.kind)
    return None if make is None else make()


def _click_default(name: str, setting: Setting) -> Any:
    default = default_of(name)
    if setting.kind == "duration":  # parsed by its callback, shown as written
        from ocsptool.times import format_duration

        return format_duration(default)
    return default


def _click_option(name: str, setting: Setting, command: str) -> Callable[[F], F]:
    """One setting of the table as a click option of ``command``."""
    options: dict[str, Any] = {
        "cls": _SourcedOption,
        "help": setting.help_for(command),
        "hidden": setting.hidden,
        "metavar": setting.metavar,
    }
    if setting.env:
        options.update(envvar=setting.env, show_envvar=True)
    if setting.kind == "flag":
        options["is_flag"] = True
    elif setting.kind == "count":
        options["count"] = True
    else:
        options.update(multiple=setting.multiple, type=_click_type(setting))
        if (default := _click_default(name, setting)) not in (None, ()):
            options.update(default=default, show_default=True)
    if setting.kind == "duration":
        options["callback"] = _duration
    elif setting.check is not None:
        options["callback"] = _checked(setting.check)
    return click.option(*setting.flags, name, **options)


def _paths_type(command: str) -> click.Path:
    """PATH...: status and check take one this user may not read (a monitoring user
    without the keys): what it holds is reported from the state."""
    return click.Path(path_type=str, readable=command not in ("status", "check"))


def options_for(command: str) -> Callable[[F], F]:
    """Every option of ``command`` (and its PATH... argument), from the settings table
    (``ocsptool.settings``), in the table's order."""

    def decorate(f: F) -> F:
        for name, setting in reversed(table()):  # decorators apply bottom-up
            if command in setting.argument:
                f = click.argument(name, cls=_PathsArgument, nargs=-1, type=_paths_type(command))(f)
            elif command in setting.commands:
                f = _click_option(name, setting, command)(f)
        return f

    return decorate


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
    """Keep OCSP staples fresh for HAProxy, nginx and Kubernetes TLS Secrets.

    Run `ocsptool refresh` from cron or a systemd timer: it fetches, verifies and
    writes <cert>.ocsp (nginx: each ssl_stapling_file) for what is due, pushes new
    staples into HAProxy and reloads nginx once when it needs them. With
    --kubernetes, it also puts a staple into each TLS Secret of a namespace.
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
@options_for("refresh")
@with_options
def refresh(o: Options) -> None:
    """Fetch, verify, write and push the staples that are due.

    PATH is a certificate file or a directory, scanned for *.pem and *.crt and
    multi-cert bundle parts such as site.pem.rsa (HAProxy's side files .ocsp .issuer
    .key .sctl are never taken for certificates), a crt-list or a bundle's base name.
    Off a terminal, a successful run prints nothing; configuration lines it skips are
    one warning each on stderr, not a failure.
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
    from ocsptool.refresh import run_refresh
    from ocsptool.sources import inventory_of

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


@cli.command(context_settings=CONTEXT, epilog=exitcodes.STATUS_CODES)
@options_for("status")
@with_options
def status(o: Options) -> None:
    """Staple health of every certificate, most urgent first.

    Reads the files on disk and the state file; no network unless --live. The
    first lines name what needs you; the table has one row per certificate.
    """
    settings = _status_settings(o)
    if _reads_state(settings) and (problem := _state_problem(o, settings.state_path, writes=False)):
        raise CommandFailed(problem, exitcodes.USAGE)
    _run(
        lambda: _status(settings, o.live, o.metrics, o.as_json, bool(o.store)),
        o.verbosity,
    )


def _reads_state(settings: RunSettings) -> bool:
    """Whether status and check need the state: a certificate file's failed refreshes are
    only there. A TLS Secret's staple is its own record (a CronJob's state is an emptyDir):
    ``--kubernetes`` alone reads the Secrets, and the state only when there is one."""
    return settings.kubernetes is None or bool(settings.paths or settings.haproxy_configs)


def _status_settings(o: Options) -> RunSettings:
    settings = o.run_settings(jobs=1)
    configs = settings.haproxy_configs or settings.nginx_configs
    if o.live and not settings.sockets and not configs and settings.paths:
        raise click.UsageError(
            "--live needs at least one -s/--haproxy-socket ADDR, --haproxy-config FILE or "
            "--nginx-config FILE"
        )
    return settings


def _gather(
    settings: RunSettings, live: bool, metrics: Path | None, now: dt.datetime
) -> StatusReport:
    from ocsptool import status as health

    report = health.gather(settings, now=now)
    if live:
        from ocsptool.live import compare_live

        compare_live(report, report.sockets, now=now, timeout=settings.haproxy_timeout)
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
@options_for("check")
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
    click.echo(printable(verdict.line))  # names come from files and certificates
    click.get_current_context().exit(verdict.code)


def _check(o: Options, settings: RunSettings) -> Verdict:
    """The verdict; UNKNOWN when the check cannot see what it must (no certificate, no
    readable state): a check that cannot see a recorded failure must not say OK."""
    from ocsptool import check as nagios
    from ocsptool.status import state_problem

    reads_state = _reads_state(settings)
    if reads_state and (problem := _state_problem(o, settings.state_path, writes=False)):
        return nagios.unknown(problem)
    now = _now()
    report = _gather(settings, o.live, o.metrics, now)
    if not report.certs:
        lines = _nothing_found(report.inventory)
        return nagios.unknown(lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""))
    if reads_state and (problem := state_problem(settings.state_path)):
        return nagios.unknown(problem)
    if report.state_notes:
        return nagios.unknown(report.state_notes[0])
    return nagios.evaluate(report, now=now, warn=o.warn, crit=o.crit)


@cli.command(context_settings=CONTEXT, epilog=exitcodes.RENEW_CODES)
@click.argument("certs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@options_for("renew")
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
    if o.dry_run and settings.kubernetes is not None:
        raise UsageError(
            "renew --dry-run reads certificate files, not TLS Secrets; "
            "`ocsptool show --kubernetes NAMESPACE/NAME` shows a Secret's staple"
        )
    if o.dry_run:
        _run(lambda: _renew_dry(settings, o.certs, o.as_json), o.verbosity)
    else:
        _run(lambda: _renew(settings, o.certs, o.as_json, o.verbosity), o.verbosity)


def _renew(settings: RunSettings, certs: Sequence[str], as_json: bool, verbosity: int) -> int:
    from ocsptool import run_output
    from ocsptool.refresh import run_refresh
    from ocsptool.sources import inventory_of, select
    from ocsptool.target import no_ocsp

    now = _now()
    inventory = inventory_of(settings, certs=certs)
    named, missing = select(inventory, certs)
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
            click.echo(printable(run_output.describe_outcome(out)))
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
@options_for("show")
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
    from ocsptool.show import inspect
    from ocsptool.sources import inventory_of, select
    from ocsptool.status_output import show_text

    if cert.endswith(".ocsp"):
        certificate = cert.removesuffix(".ocsp")
        raise UsageError(
            f"{cert} is a staple; pass its certificate instead: ocsptool show {certificate}"
        )
    inventory = inventory_of(settings, cache=False, certs=(cert,))
    keys, _missing = select(inventory, [cert])
    if not keys:
        problems = [why for path, why in inventory.problems if path.endswith(Path(cert).name)]
        raise CertificateError(f"{cert}: {problems[0] if problems else 'no such file'}")
    texts, ok = [], True
    found = {f.path: (f, part) for part in inventory.parts for f in part.found if f.path in keys}
    for key in keys:
        f, part = found[key]
        try:
            fields, good = inspect(f, _now(), part.target, part.home, inventory.route(key))
        except CertificateError as e:
            raise CertificateError(f"{key}: {e}") from None
        fields += _served_fields(settings, inventory, key)
        texts.append(show_text(fields))
        itself = key in inventory.itself and not inventory.staple_path(key).exists()
        ok = ok and (good or itself)  # nginx staples it itself: no file is not a problem
    click.echo("\n\n".join(texts))
    return exitcodes.OK if ok else exitcodes.FAILURE


def _served_fields(settings: RunSettings, inventory: Inventory, key: str) -> list[tuple[str, str]]:
    """``show``'s lines on who serves ``key``: each HAProxy instance (its socket, the
    name it loaded it under) and each nginx (its configuration, the staple file)."""
    from ocsptool.sinks.nginx import config_of, is_nginx

    route = inventory.route(key)
    haproxy = [s for s in route.served if not (s[0] and is_nginx(s[0][0]))]
    nginx = [config_of(s[0][0]) for s in route.served if s[0] and is_nginx(s[0][0])]
    fields = []
    if haproxy:
        lines = [
            f"{sockets[0] if sockets else '(no socket)'} as {name}"
            + (" (ocsp-update on)" if update else "")
            for sockets, name, update in haproxy
        ]
        fields.append(("haproxy", "; ".join(lines)))
    elif settings.haproxy_configs:
        fields.append(("haproxy", "not loaded by these configurations"))
    if nginx:
        staple = inventory.staple_path(key)
        where = f" ({route.origin})" if route.origin else ""
        lines = [f"{config}: ssl_stapling_file {staple}{where}" for config in nginx]
        fields.append(("nginx", "; ".join(lines)))
    elif key in inventory.itself:
        itself = config_of(inventory.itself[key])
        why = "ssl_stapling on, no ssl_stapling_file: nginx staples it itself"
        fields.append(("nginx", f"{itself}: {why}"))
    elif settings.nginx_configs:
        fields.append(("nginx", "not stapled from a file by these configurations"))
    return fields


for _command in (refresh, status, check):
    _command.help = f"{cleandoc(_command.help or '')}\n\n{SOURCES_HELP}"


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    cli.main(prog_name="ocsptool", standalone_mode=True)
