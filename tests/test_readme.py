"""The README stays true: every command it shows exists, and every option it names is accepted."""

from __future__ import annotations

import re
import shlex

import click
import pytest
from conftest import ROOT

from ocsptool import config, exitcodes
from ocsptool.cli import cli

README = (ROOT / "README.md").read_text()


def shown_commands(text: str) -> list[str]:
    """`ocsptool ...` lines of code blocks (with or without `$ `) and inline code spans."""
    found: list[str] = []
    in_block = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            stripped = line.strip().removeprefix("$ ").removeprefix("sudo ")
            if re.match(r"ocsptool( |$)", stripped):
                found.append(stripped.split(" #")[0].split(" | ")[0].strip())
        else:
            found += [s for s in re.findall(r"`([^`]+)`", line) if re.match(r"ocsptool( |$)", s)]
    return found


def problems_with(command_line: str) -> list[str]:
    """Why ``command_line`` would not be accepted by the click definition (empty: fine)."""
    words = shlex.split(command_line)[1:]
    command: click.Command = cli
    path = "ocsptool"
    problems: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word.startswith("-") and word != "-":
            option = _option(command, word.split("=", 1)[0])
            if option is None:
                problems.append(f"{path}: no option {word}")
            elif not (option.is_flag or option.count) and "=" not in word:
                i += 1  # its value
        elif isinstance(command, click.Group):
            sub = command.commands.get(word)
            if sub is None:
                problems.append(f"{path}: no command {word!r}")
                break
            command, path = sub, f"{path} {word}"
    return problems


def _option(command: click.Command, name: str) -> click.Option | None:
    ctx = click.Context(command)
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    if re.fullmatch(r"-[a-zA-Z]{2,}", name):  # bundled short flags such as -vv
        options = [_option(command, "-" + letter) for letter in name[1:]]
        if all(o is not None and (o.is_flag or o.count) for o in options):
            return options[0]
    return None


COMMANDS = shown_commands(README)


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) > 20
    assert "ocsptool refresh -v -s /run/haproxy/admin.sock /etc/haproxy/certs" in COMMANDS


@pytest.mark.parametrize("command_line", COMMANDS)
def test_every_command_shown_exists_and_takes_its_options(command_line: str) -> None:
    assert problems_with(command_line) == []


@pytest.mark.parametrize(
    ("command_line", "problem"),
    [
        ("ocsptool refresh --nope /etc", "ocsptool refresh: no option --nope"),
        ("ocsptool frobnicate", "ocsptool: no command 'frobnicate'"),
        ("ocsptool --state x refresh", "ocsptool: no option --state"),
        ("ocsptool show --json site.pem", "ocsptool show: no option --json"),
        ("ocsptool refresh -vx", "ocsptool refresh: no option -vx"),
    ],
)
def test_the_checker_catches_mistakes(command_line: str, problem: str) -> None:
    assert problem in problems_with(command_line)


def test_the_checker_skips_option_values() -> None:
    assert problems_with("ocsptool --config /dev/null refresh -s sock -j 4 --state=s -vv d") == []


def named_options(text: str) -> list[tuple[str, str]]:
    """(command, option) for every option in an inline code span of prose, e.g. `-j/--jobs N`.

    Under a "### `ocsptool CMD" heading the command is CMD; elsewhere it is "" (any command).
    """
    found: list[tuple[str, str]] = []
    section = ""
    in_block = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
        if in_block:
            continue
        if line.startswith("#"):
            match = re.match(r"### `ocsptool (\w+)", line)
            section = match.group(1) if match and match.group(1) in cli.commands else ""
            continue
        for span in re.findall(r"`(-[^`]*)`", line):
            for word in re.split(r"[\s/,]+", span):
                if re.match(r"--?[a-zA-Z]", word):
                    found.append((section, word.split("=")[0]))
    return found


#: Options of other programs the README names in prose, and help, which every command takes.
FOREIGN = {"--home-dir", "--collector.textfile.directory", "-h", "--help", "-S"}  # -S: haproxy
OPTIONS = [(section, o) for section, o in named_options(README) if o not in FOREIGN]


def test_the_readme_names_options() -> None:
    assert ("check", "--warn") in OPTIONS
    assert ("refresh", "--jobs") in OPTIONS
    assert len(OPTIONS) > 15


@pytest.mark.parametrize(("section", "option"), OPTIONS)
def test_every_option_named_in_prose_is_accepted(section: str, option: str) -> None:
    commands = [cli.commands[section]] if section else [cli, *cli.commands.values()]
    assert any(_option(command, option) for command in commands), (section, option)


def test_the_prose_checker_catches_mistakes() -> None:
    text = "### `ocsptool show CERT`\n\nUse `--json` or `-q/--quiet`.\n## Other\n`--nope`\n"
    found = named_options(text)
    assert found == [("show", "--json"), ("show", "-q"), ("show", "--quiet"), ("", "--nope")]
    assert _option(cli.commands["show"], "--json") is None


def test_every_command_has_a_section() -> None:
    for name in cli.commands:
        assert f"### `ocsptool {name}" in README, name


def test_every_config_key_is_documented() -> None:
    for key in config.KEYS:
        assert f"| `{key}` |" in README, key
        assert re.search(rf"^{key} = ", README, re.MULTILINE), key


def test_every_environment_variable_named_exists() -> None:
    known = {"OCSPTOOL_CONFIG", "OCSPTOOL_CHANGED", "OCSPTOOL_CHANGED_FILE"}  # the hook gets those
    for command in cli.commands.values():
        for param in command.params:
            envvar = param.envvar
            known.update([envvar] if isinstance(envvar, str) else envvar or [])
    named = set(re.findall(r"OCSPTOOL_[A-Z_]+", README))
    assert named <= known


def test_the_exit_code_table_is_the_code_table() -> None:
    rows = re.findall(r"^ +(\d+) +(.+)$", exitcodes.TABLE, re.MULTILINE)
    assert [int(code) for code, _ in rows] == [
        exitcodes.OK,
        exitcodes.FAILURE,
        exitcodes.USAGE,
        exitcodes.STORE,
        exitcodes.LOCKED,
    ]
    for code, meaning in rows:
        assert f"| {code} | {meaning}" in README
