"""The TOML config file: option defaults for every command, read with stdlib ``tomllib``.

The file is flat: each key is the default of one command-line option, e.g.::

    paths = ["/etc/haproxy/certs"]
    haproxy_sockets = ["/run/haproxy/admin.sock"]

``cli`` hands the result to click as the ``default_map``, so flags beat environment
variables, which beat the file, which beats the built-in defaults. Relative paths in the
file are taken relative to the file's directory. An unknown key or a bad value is a
``ConfigError`` naming the file and the key; nothing in the file is ever ignored silently.
The file is used only when someone this run trusts wrote it (``trust.Steering``): it says
where staples are written, which sockets get keys and which hook the run executes.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ocsptool.errors import ConfigError
from ocsptool.settings import BadValue, config_keys

DEFAULT_PATH = Path("/etc/ocsptool/config.toml")
#: A config file is a few KiB; past this it is a mistake or an attack.
MAX_CONFIG_BYTES = 1024 * 1024
ENVVAR = "OCSPTOOL_CONFIG"
#: What an untrusted config file is called, and what it costs (``trust.Steering``): it
#: names where staples go, which sockets get keys, and the hook a run executes.
UNTRUSTED = ("config file", "the run stops")


def find(explicit: Path | None) -> Path | None:
    """The config file to read: the one given, else the default one when it exists."""
    if explicit is not None:
        return explicit
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load(path: Path) -> dict[str, Any]:
    """Read ``path`` and return option defaults keyed by click parameter name."""
    import tomllib

    from ocsptool.files import read_regular

    if os.path.realpath(path) == os.devnull:  # --config /dev/null: no config file
        return {}
    try:  # non-blocking and bounded: a FIFO or /dev/zero named as the file is refused
        raw = tomllib.loads(read_regular(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 ({e.reason})") from e
    from ocsptool.trust import Steering

    if (untrusted := Steering().problem(str(path), *UNTRUSTED)) is not None:
        raise ConfigError(untrusted)
    base = path.parent
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = KEYS.get(key)
        if spec is None:
            raise ConfigError(f"{path}: unknown key '{key}'{_hint(key)}")
        param, convert, _commands = spec
        try:
            values[param] = convert(value, base)
        except BadValue as e:
            raise ConfigError(f"{path}: {key}: {e}, got {_show(value)}") from None
        except ConfigError as e:  # the converter named the key (and the entry) itself
            raise ConfigError(f"{path}: {e}") from None
    return values


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


def default_map(values: dict[str, Any], commands: Iterable[str]) -> dict[str, dict[str, Any]]:
    """click's ``default_map``: the file's values for each command (some keys for some only)."""
    applies = {name: commands_of for _key, (name, _, commands_of) in KEYS.items()}
    return {
        command: {k: v for k, v in values.items() if command in applies.get(k, (command,))}
        for command in commands
    }


#: TOML key -> (click parameter name, converter, the commands it applies to): made from the
#: settings table (``ocsptool.settings``). The keys are documented in the README.
KEYS = config_keys()


def key_of(param: str) -> str:
    """The config file's key for a click parameter name (``sockets`` -> ``haproxy_sockets``)."""
    return next((key for key, (name, _, _) in KEYS.items() if name == param), param)
