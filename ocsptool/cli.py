"""The command line: click only. Options become settings; core functions do the work.

Errors from the core (``OcspToolError``) become one line on stderr here, in one place,
with a traceback only at ``-vv``. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ocsptool import __version__, exitcodes
from ocsptool.errors import LockHeld, OcspToolError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def state_option(f: F) -> F:
    return click.option(
        "--state",
        "state",
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


def output_options(f: F) -> F:
    f = click.option(
        "--json", "as_json", is_flag=True, help="A machine-readable report on stdout."
    )(f)
    f = click.option("-q", "--quiet", count=True, help="Less on stderr: only failures.")(f)
    return click.option(
        "-v", "--verbose", count=True, help="More on stderr; -vv adds debug output and tracebacks."
    )(f)


def fetch_options(f: F) -> F:
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
    return click.option(
        "--timeout",
        type=click.FloatRange(0.1, 300),
        default=10.0,
        show_default=True,
        envvar="OCSPTOOL_TIMEOUT",
        show_envvar=True,
        help="Seconds to wait for a responder (connect 5 s at most) or HAProxy.",
    )(f)


@click.group(context_settings=CONTEXT, epilog=exitcodes.TABLE)
@click.version_option(__version__, "-V", "--version", message="ocsptool %(version)s")
def cli() -> None:
    """Keep OCSP staples fresh for HAProxy.

    Run `ocsptool refresh` from cron or a systemd timer: it fetches, verifies and
    writes <cert>.ocsp for what is due, and pushes new staples into HAProxy.
    """


@cli.command(context_settings=CONTEXT, epilog=exitcodes.TABLE)
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@state_option
@socket_option
@fetch_options
@click.option(
    "--ext",
    "extensions",
    multiple=True,
    metavar="EXT",
    envvar="OCSPTOOL_EXT",
    help="File endings scanned in directories (repeatable). Default: .pem .crt",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="GLOB",
    envvar="OCSPTOOL_EXCLUDE",
    help="Skip files and directories whose name matches GLOB (repeatable).",
)
@output_options
def refresh(
    paths: tuple[str, ...],
    state: Path | None,
    sockets: tuple[str, ...],
    jobs: int,
    timeout: float,
    extensions: tuple[str, ...],
    excludes: tuple[str, ...],
    as_json: bool,
    verbose: int,
    quiet: int,
) -> None:
    """Fetch, verify, write and push the staples that are due.

    PATH is a certificate file or a directory, scanned for *.pem and *.crt (HAProxy's
    side files .ocsp .issuer .key .sctl are never taken for certificates). Off a
    terminal, a successful run prints nothing.
    """
    verbosity = verbose - quiet
    if not paths:
        raise click.UsageError("give at least one certificate file or directory")
    settings = _settings(paths, state, sockets, jobs, timeout, extensions, excludes)
    _run(lambda: _refresh(settings, as_json, verbosity), verbosity)


def _settings(
    paths: tuple[str, ...],
    state: Path | None,
    sockets: tuple[str, ...],
    jobs: int,
    timeout: float,
    extensions: tuple[str, ...],
    excludes: tuple[str, ...],
) -> Any:
    from ocsptool.fetch import Timeouts
    from ocsptool.refresh import Settings
    from ocsptool.scan import DEFAULT_EXTENSIONS
    from ocsptool.state import default_path

    exts = tuple(e if e.startswith(".") else "." + e for e in extensions) or DEFAULT_EXTENSIONS
    return Settings(
        paths=paths,
        state_path=state or default_path(),
        sockets=tuple(_split_sockets(sockets)),
        jobs=jobs,
        timeouts=Timeouts(connect=min(5.0, timeout), read=timeout, total=3 * timeout),
        extensions=exts,
        excludes=excludes,
        haproxy_timeout=timeout,
    )


def _split_sockets(sockets: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for value in sockets:
        out.extend(value.split())
    return out


def _refresh(settings: Any, as_json: bool, verbosity: int) -> int:
    from ocsptool import report as output
    from ocsptool.refresh import run_refresh

    now = _now()
    tty = output.is_terminal()
    with output.progress_bar(tty and not as_json and verbosity >= 0) as progress:
        result = run_refresh(settings, now=now, progress=progress)
    code = exitcodes.OK if result.ok else exitcodes.FAILURE
    output.emit(result, verbosity=verbosity)
    if as_json:
        click.echo(output.refresh_json(result, now, code))
    elif tty and verbosity >= 0:
        output.summary(result)
    return code


def _run(action: Callable[[], int], verbosity: int) -> None:
    """Run a command body; turn our errors into one line and the documented exit code."""
    try:
        code = action()
    except LockHeld as e:
        _fail(e, verbosity)
        sys.exit(exitcodes.LOCKED)
    except UsageError as e:
        _fail(e, verbosity)
        sys.exit(exitcodes.USAGE)
    except OcspToolError as e:
        _fail(e, verbosity)
        sys.exit(exitcodes.FAILURE)
    except KeyboardInterrupt:
        sys.stderr.write("ocsptool: interrupted\n")
        sys.exit(130)
    sys.exit(code)


def _fail(error: Exception, verbosity: int) -> None:
    from ocsptool.report import stderr_line

    if verbosity >= 2:
        import traceback

        traceback.print_exc()
    stderr_line(str(error))


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        cli.main(prog_name="ocsptool", standalone_mode=True)
    except Exception:
        # Our own errors never get here; anything that does is a bug. Say it in one line.
        if "-vv" in sys.argv or sys.argv.count("-v") >= 2:
            raise
        err = sys.exc_info()[1]
        sys.stderr.write(
            f"ocsptool: internal error: {type(err).__name__}: {err} (run with -vv for details)\n"
        )
        sys.exit(exitcodes.FAILURE)
