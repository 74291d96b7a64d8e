"""ocsptool.settings: one table makes the click options, the config keys and the run settings."""

from __future__ import annotations

from dataclasses import fields

import pytest

from ocsptool import config
from ocsptool.cli import cli
from ocsptool.settings import Options, table


@pytest.mark.parametrize("command", ["refresh", "renew", "status", "check", "show"])
def test_every_option_of_a_command_is_a_setting_of_the_table(command: str) -> None:
    params = {p.name for p in cli.commands[command].params} - {"certs"}
    assert params == {name for name, s in table() if command in s.commands}


def test_the_config_keys_are_the_tables() -> None:
    keys = {s.key: name for name, s in table() if s.key}
    assert {key: name for key, (name, _, _) in config.KEYS.items()} == keys


def test_every_setting_is_a_field_of_options_and_has_help() -> None:
    names = {f.name for f in fields(Options)}
    for name, setting in table():
        assert name in names
        for command in setting.commands:
            assert setting.help_for(command)
