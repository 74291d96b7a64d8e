"""contrib/: the systemd units and the cron.d file carry what the README promises."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

from ocsptool import owner

SYSTEMD = ROOT / "contrib" / "systemd"
CRON = ROOT / "contrib" / "cron" / "ocsptool"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values, in order]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (SYSTEMD / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_service_is_a_hardened_unprivileged_oneshot() -> None:
    service = unit("ocsptool.service")["Service"]
    expected = {
        "Type": ["oneshot"],
        "User": ["ocsptool"],
        "Group": ["ocsptool"],
        "StateDirectory": ["ocsptool"],
        "StateDirectoryMode": ["0750"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ReadWritePaths": ["/etc/haproxy/certs", "-/var/lib/prometheus/node-exporter"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "CapabilityBoundingSet": [""],
        "AmbientCapabilities": [""],
        "SystemCallFilter": ["@system-service", "~@privileged"],
        "ExecStart": ["/usr/local/bin/ocsptool refresh"],
    }
    assert {key: service.get(key) for key in expected} == expected


def test_timer_every_15_minutes_with_jitter_and_catch_up() -> None:
    timer = unit("ocsptool.timer")
    assert timer["Timer"] == {
        "OnCalendar": ["*:0/15"],
        "RandomizedDelaySec": ["5min"],
        "Persistent": ["true"],
        "AccuracySec": ["1min"],
    }
    assert timer["Install"] == {"WantedBy": ["timers.target"]}


def test_cron_file_runs_refresh_every_15_minutes_as_ocsptool() -> None:
    lines = [
        line
        for line in CRON.read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    assert fields[:6] == ["*/15", "*", "*", "*", "*", "ocsptool"]
    assert fields[6].endswith("; ocsptool refresh")
    # cron.d files must end with a newline, or cron ignores the last line.
    assert CRON.read_text().endswith("\n")
    assert re.search(r"^MAILTO=", CRON.read_text(), re.MULTILINE)


README = (ROOT / "README.md").read_text()


def test_the_readme_installs_cron_before_the_cron_file() -> None:
    """A minimal Debian 12 has no cron: the recipe installs it first (issue 19)."""
    section = README.split("### cron", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1].strip().splitlines()
    assert block == [
        "sudo apt-get install cron",
        "sudo cp contrib/cron/ocsptool /etc/cron.d/ocsptool",
    ]


def readme_config_example() -> dict[str, object]:
    """The README's annotated config file (the ```toml block that starts with its path)."""
    block = re.search(r"```toml\n# /etc/ocsptool/config.toml\n(.*?)```", README, re.DOTALL)
    assert block is not None
    return tomllib.loads(block.group(1))


def test_the_metrics_example_is_writable_under_the_unit() -> None:
    """ProtectSystem=strict makes everything else read-only: the README's metrics file
    must be in a ReadWritePaths= directory, or every timer run fails."""
    metrics = Path(str(readme_config_example()["metrics"]))
    writable = [Path(p.lstrip("-")) for p in unit("ocsptool.service")["Service"]["ReadWritePaths"]]
    assert metrics.parent in writable


def test_the_state_example_is_in_the_unit_state_directory() -> None:
    state = Path(str(readme_config_example()["state"]))
    directory = unit("ocsptool.service")["Service"]["StateDirectory"][0]
    assert state.parent == Path("/var/lib") / directory


def comments(text: str) -> str:
    """The comment lines of a file, joined into one paragraph."""
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    return " ".join(lines)


def test_cron_file_says_to_set_state_for_a_user_without_a_home() -> None:
    """The README's useradd gives the user /nonexistent as home: the cron comment gives the
    fix that ocsptool's own message gives (owner.SET_STATE)."""
    assert "--home-dir /nonexistent" in README
    assert owner.SET_STATE in comments(CRON.read_text())
    state = readme_config_example()["state"]
    assert f'state = "{state}"' in owner.SET_STATE


def test_monitoring_joins_the_group_of_the_unit() -> None:
    group = unit("ocsptool.service")["Service"]["Group"][0]
    line = f"usermod -aG {group} nagios"
    assert line in comments((SYSTEMD / "ocsptool.service").read_text())
    assert line in comments(CRON.read_text())
    assert f"sudo {line}" in README


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing; .ci/run installs it (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")
    return found


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` on both units, pointing ExecStart at this ocsptool."""
    analyze = _systemd_analyze()
    # verify insists that ExecStart exists: use the console script next to this Python when
    # installed, else a stand-in that exists; everything else is checked as shipped.
    script = Path(sys.executable).parent / "ocsptool"
    exec_path = str(script) if script.exists() else "/bin/true"
    text = (SYSTEMD / "ocsptool.service").read_text()
    (tmp_path / "ocsptool.service").write_text(text.replace("/usr/local/bin/ocsptool", exec_path))
    shutil.copy(SYSTEMD / "ocsptool.timer", tmp_path / "ocsptool.timer")
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "ocsptool.service"), str(tmp_path / "ocsptool.timer")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_systemd_analyze_verify_catches_a_typo(tmp_path: Path) -> None:
    """The verify step above can fail: a misspelt directive is reported."""
    analyze = _systemd_analyze()
    text = (SYSTEMD / "ocsptool.service").read_text()
    text = text.replace("/usr/local/bin/ocsptool", "/bin/true").replace("PrivateTmp", "PrivatTmp")
    (tmp_path / "ocsptool.service").write_text(text)
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "ocsptool.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Unknown key" in done.stderr
    assert "'PrivatTmp'" in done.stderr


# -- nginx hosts: the drop-in and the polkit rule the README's nginx section installs --------

POLKIT = ROOT / "contrib" / "polkit" / "50-ocsptool-nginx.rules"


def test_the_nginx_drop_in_gives_what_the_nginx_consumer_needs() -> None:
    drop_in = unit("nginx.conf")
    assert drop_in["Service"] == {
        "ReadWritePaths": ["/etc/nginx/ocsp"],  # the README's staple directory
        "ProtectProc": ["default"],  # the master and its workers in /proc
        "SupplementaryGroups": ["adm"],  # the error log, for a refusal's reason
    }
    assert drop_in["Unit"] == {"After": ["nginx.service"]}
    assert "ssl_stapling_file   /etc/nginx/ocsp/" in README
    assert "sudo install -D -m 0644 contrib/systemd/nginx.conf " in README
    assert "/etc/systemd/system/ocsptool.service.d/nginx.conf" in README


def test_the_polkit_rule_allows_one_reload_to_the_job_user() -> None:
    text = POLKIT.read_text()
    user = unit("ocsptool.service")["Service"]["User"][0]
    for needed in (
        '"org.freedesktop.systemd1.manage-units"',
        'action.lookup("unit") == "nginx.service"',
        'action.lookup("verb") == "reload"',
        f'subject.user == "{user}"',
    ):
        assert needed in text
    assert 'nginx_reload = ["systemctl", "reload", "nginx"]' in README


def test_systemd_analyze_verify_with_the_nginx_drop_in(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    text = (
        (SYSTEMD / "ocsptool.service").read_text().replace("/usr/local/bin/ocsptool", "/bin/true")
    )
    (tmp_path / "ocsptool.service").write_text(text)
    (tmp_path / "ocsptool.service.d").mkdir()
    shutil.copy(SYSTEMD / "nginx.conf", tmp_path / "ocsptool.service.d" / "nginx.conf")
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "ocsptool.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
