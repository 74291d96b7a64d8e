"""ocsptool.scan: which files are certificates, side files, loops, leftovers."""

from __future__ import annotations

import os
from pathlib import Path

from ocsptool import scan
from ocsptool.files import temp_path


def touch(directory: Path, *names: str) -> None:
    for name in names:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def found_names(result: scan.ScanResult, root: Path) -> list[str]:
    return [os.path.relpath(f.path, root) for f in result.found]


def test_certificates_and_side_files(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "a.pem",
        "a.pem.ocsp",
        "a.pem.issuer",
        "a.pem.key",
        "a.pem.sctl",
        "b.crt",
        "c.key",
        "d.txt",
        ".hidden.pem",
        "sub/e.pem",
    )
    result = scan.scan([str(tmp_path)])
    assert found_names(result, tmp_path) == ["a.pem", "b.crt", "sub/e.pem"]
    a = result.found[0]
    assert a.ocsp_inode == (tmp_path / "a.pem.ocsp").stat().st_ino
    assert a.issuer_stat is not None
    assert result.found[1].ocsp_inode is None
    assert result.problems == []


def test_extensions_and_excludes(tmp_path: Path) -> None:
    touch(tmp_path, "a.pem", "b.cert", "old/c.pem", "skip-me.pem")
    result = scan.scan([str(tmp_path)], extensions=(".pem", ".cert"), excludes=("old", "skip-*"))
    assert found_names(result, tmp_path) == ["a.pem", "b.cert"]


def test_a_multi_cert_bundles_parts_are_certificates_as_haproxy_loads_them(
    tmp_path: Path,
) -> None:
    touch(tmp_path, "site.pem.rsa", "site.pem.rsa.ocsp", "site.pem.ecdsa", "site.pem.dsa")
    touch(tmp_path, "site.pem.ecdsa.key", "x.crt.rsa", "x.txt.rsa", "y.rsa", "site.pem.other")
    result = scan.scan([str(tmp_path)])
    assert found_names(result, tmp_path) == [
        "site.pem.dsa",
        "site.pem.ecdsa",
        "site.pem.rsa",
        "x.crt.rsa",
    ]
    assert result.found[2].ocsp_inode == (tmp_path / "site.pem.rsa.ocsp").stat().st_ino
    result = scan.scan([str(tmp_path)], extensions=(".txt",))  # --ext: its parts too
    assert found_names(result, tmp_path) == ["x.txt.rsa"]


def test_a_file_given_by_name_is_taken_whatever_its_name(tmp_path: Path) -> None:
    touch(tmp_path, "site.bundle", "site.bundle.ocsp")
    result = scan.scan([str(tmp_path / "site.bundle")])
    assert found_names(result, tmp_path) == ["site.bundle"]
    assert result.found[0].ocsp_inode is not None


def test_the_same_file_or_tree_twice_is_listed_once(tmp_path: Path) -> None:
    touch(tmp_path, "a.pem")
    (tmp_path / "link").symlink_to(tmp_path)
    result = scan.scan([str(tmp_path), str(tmp_path), str(tmp_path / "a.pem")])
    assert found_names(result, tmp_path) == ["a.pem"]


def test_symlink_loops(tmp_path: Path) -> None:
    touch(tmp_path, "a.pem")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to(tmp_path)
    (tmp_path / "x.pem").symlink_to("y.pem")
    (tmp_path / "y.pem").symlink_to("x.pem")
    (tmp_path / "dangling.pem").symlink_to("nowhere")
    result = scan.scan([str(tmp_path)])
    assert found_names(result, tmp_path) == ["a.pem"]
    assert result.problems == [
        (str(tmp_path / "dangling.pem"), "no such file or directory (a dangling symlink?)"),
        (str(tmp_path / "x.pem"), "too many levels of symbolic links (a symlink loop)"),
        (str(tmp_path / "y.pem"), "too many levels of symbolic links (a symlink loop)"),
    ]


def test_missing_path(tmp_path: Path) -> None:
    result = scan.scan([str(tmp_path / "nope")])
    assert result.problems == [(str(tmp_path / "nope"), "no such file or directory")]


def test_leftover_temp_files_are_reported_not_taken(tmp_path: Path) -> None:
    touch(tmp_path, "a.pem")
    leftover = temp_path(tmp_path / "a.pem.ocsp")
    leftover.write_bytes(b"half")
    result = scan.scan([str(tmp_path)])
    assert found_names(result, tmp_path) == ["a.pem"]
    assert result.leftovers == [str(leftover)]


def test_non_utf8_names(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.pem"
    with open(raw, "wb") as f:
        f.write(b"x")
    result = scan.scan([str(tmp_path)])
    assert [os.fsencode(f.path) for f in result.found] == [raw]


def test_stat_key_changes_with_content(tmp_path: Path) -> None:
    touch(tmp_path, "a.pem")
    before = scan.scan([str(tmp_path)]).found[0].stat
    (tmp_path / "a.pem").write_bytes(b"longer content")
    assert scan.scan([str(tmp_path)]).found[0].stat != before
