"""The TOML config file: option defaults for every command, read with stdlib ``tomllib``.

The file is flat: each key is the default of one command-line option, e.g.::

    paths = ["/etc/haproxy/certs"]
    haproxy_sockets = ["/run/haproxy/admin.sock"]

``cli`` hands the result to click as the ``default_map``, so flags beat environment
variables, which beat the file, which beats the built-in defaults. Relative paths in the
file are taken relative to the file's directory. An unknown key or a bad value is a
``ConfigError`` naming the file and the key; nothing in the file is ever ignored silently.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ocsptool.errors import ConfigError

DEFAULT_PATH = Path("/etc/ocsptool/config.toml")
ENVVAR = "OCSPTOOL_CONFIG"

JOBS_RANGE = (1, 256)
TIMEOUT_RANGE = (0.1, 300.0)


def find(explicit: Path | None) -> Path | None:
    """The config file to read: the one given, else the default one when it exists."""
    if explicit is not None:
        return explicit
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load(path: Path) -> dict[str, Any]:
    """Read ``path`` and return option defaults keyed by click parameter name."""
    import tomllib

    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 ({e.reason})") from e
    base = path.parent
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = KEYS.get(key)
        if spec is None:
            raise ConfigError(f"{path}: unknown key '{key}'{_hint(key)}")
        param, convert = spec
        try:
            values[param] = convert(value, base)
        except _BadValue as e:
            raise ConfigError(f"{path}: {key}: {e}, got {_show(value)}") from None
        except ConfigError as e:  # the converter named the key (and the entry) itself
            raise ConfigError(f"{path}: {e}") from None
    return values


class _BadValue(Exception):
    pass


def _hint(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f"; known keys: {', '.join(KEYS)}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _strings(value: Any, _base: Path) -> tuple[str, ...]:
    """A list of non-empty strings; a single string is taken as a list of one."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _BadValue("expected a list of non-empty strings")
    return tuple(value)


def _paths(value: Any, base: Path) -> tuple[str, ...]:
    return tuple(os.path.join(base, v) for v in _strings(value, base))


def _path(value: Any, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise _BadValue("expected a file path (a non-empty string)")
    return base / value


def _unquoted(value: Any, what: str) -> None:
    """``jobs = "8"``: say that TOML wants the number without quotes."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return
        raise _BadValue(f"a number is written without quotes ({what} = {value})")


def _jobs(value: Any, _base: Path) -> int:
    low, high = JOBS_RANGE
    _unquoted(value, "jobs")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _BadValue(f"expected a whole number from {low} to {high}")
    return value


def _timeout(value: Any, _base: Path) -> float:
    low, high = TIMEOUT_RANGE
    _unquoted(value, "timeout")
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _BadValue(f"expected a number of seconds from {low} to {high:g}")
    return float(value)


def _store(value: Any, _base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise _BadValue("expected a store URL such as 'redis://HOST:PORT/DB'")
    return value


def _command(value: Any, _base: Path) -> str | tuple[str, ...]:
    """A string for the shell, or a list run as argv."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise _BadValue("expected a command: a string for the shell or a list of strings (argv)")


def _jobs_per_host(value: Any, _base: Path) -> int:
    from ocsptool.pacing import jobs_per_host_problem

    problem = jobs_per_host_problem(value)
    if problem is not None:
        raise _BadValue(problem)
    return int(value)


def _ca_bundle(value: Any, base: Path) -> Path:
    from ocsptool.fetch import ca_bundle_problem

    path = _path(value, base)
    problem = ca_bundle_problem(path)
    if problem is not None:
        raise _BadValue(f"{path}: {problem}")
    return path


def _proxy(value: Any, _base: Path) -> str:
    from ocsptool.fetch import proxy_problem

    if not isinstance(value, str) or not value:
        raise _BadValue('expected a URL in quotes, e.g. proxy = "http://proxy.example:3128"')
    problem = proxy_problem(value)
    if problem is not None:
        raise _BadValue(problem)
    return value


def _overrides(value: Any, _base: Path) -> Any:
    from ocsptool.responders import parse_overrides

    return parse_overrides(value)


def _bool(value: Any, _base: Path) -> bool:
    if not isinstance(value, bool):
        raise _BadValue("expected true or false")
    return value


def default_map(values: dict[str, Any], commands: Iterable[str]) -> dict[str, dict[str, Any]]:
    """click's ``default_map``: the file's values for each command (some keys for some only)."""
    return {
        name: {k: v for k, v in values.items() if name in ONLY.get(k, (name,))} for name in commands
    }


#: Keys that apply to some commands only: metrics from the file are written by the timer's
#: refresh, not by every monitoring check (which may run as another user).
ONLY = {
    "metrics": ("refresh",),
    "store": ("refresh", "renew", "status"),
    "on_change": ("refresh", "renew"),
    "update_certs": ("refresh", "renew"),
}

#: TOML key -> (click parameter name, converter). The keys are documented in the README.
KEYS: dict[str, tuple[str, Callable[[Any, Path], Any]]] = {
    "paths": ("paths", _paths),
    "haproxy_sockets": ("sockets", _strings),
    "state": ("state", _path),
    "jobs": ("jobs", _jobs),
    "timeout": ("timeout", _timeout),
    "extensions": ("extensions", _strings),
    "exclude": ("excludes", _strings),
    "metrics": ("metrics", _path),
    "store": ("store", _store),
    "on_change": ("on_change", _command),
    "haproxy_configs": ("haproxy_configs", _paths),
    "jobs_per_host": ("jobs_per_host", _jobs_per_host),
    "ca_bundle": ("ca_bundle", _ca_bundle),
    "proxy": ("proxy", _proxy),
    "responder_overrides": ("responder_overrides", _overrides),
    "update_certs": ("update_certs", _bool),
}


def key_of(param: str) -> str:
    """The config file's key for a click parameter name (``sockets`` -> ``haproxy_sockets``)."""
    return next((key for key, (name, _) in KEYS.items() if name == param), param)
