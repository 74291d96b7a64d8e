"""``ocsptool.trust``: which files may steer a run and which symlinks it follows, rule by
rule on real files (the attacks themselves are in ``tests/security/``).

As root, with files given to ``nobody`` (65534); a run of another user is stood for by a
``trust.Who`` (the job user in its group): the rule is a function of owners and modes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocsptool import trust
from ocsptool.errors import WriteError
from ocsptool.files import write_atomic

NOBODY = 65534
JOB = trust.Who(1000, frozenset({0, 1000}), frozenset({0, 1000, 4242}))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``tmp_path/etc/list`` with every directory from / to it root's, 0755 (pytest's
    base is root's 0700 in /tmp, 1777 root's: a sticky directory)."""
    etc = tmp_path / "etc"
    etc.mkdir(mode=0o755)
    (etc / "list").write_text("")
    return etc


def problem(path: Path, who: trust.Who | None = None) -> str | None:
    steering = trust.Steering(who) if who is not None else trust.Steering()
    return steering.problem(str(path), "crt-list", "its certificates are not stapled")


def test_a_steering_file_of_root_in_root_directories_is_trusted(tree: Path) -> None:
    assert problem(tree / "list") is None
    assert problem(tree / "list", JOB) is None


@pytest.mark.parametrize(
    ("target", "uid", "gid", "mode", "why"),
    [
        ("list", NOBODY, 0, 0o644, "it is nobody:root 0644, not root's: sudo chown root: {p}"),
        ("list", 0, 0, 0o666, "it is root:root 0666, writable by other users: sudo chmod go-w {p}"),
        (
            "list",
            0,
            4242,
            0o664,
            "it is root:4242 0664, writable by group 4242, which may not steer root: "
            "sudo chmod g-w {p}",
        ),
        ("dir", NOBODY, 0, 0o755, "{d} is nobody:root 0755, not root's: sudo chown root: {d}"),
        ("dir", 0, 0, 0o777, "{d} is root:root 0777, writable by other users: sudo chmod go-w {d}"),
        (
            "dir",
            0,
            4242,
            0o2775,
            "{d} is root:4242 2775, writable by group 4242, which may not steer root: move the "
            "file to a directory only root may write, or run ocsptool as a member of 4242 "
            "(or: sudo chmod g-w {d})",
        ),
    ],
)
def test_a_steering_file_someone_else_may_write_is_refused_naming_the_fix(  # noqa: PLR0917
    tree: Path, target: str, uid: int, gid: int, mode: int, why: str
) -> None:
    path = tree / "list" if target == "list" else tree
    os.chown(path, uid, gid)
    path.chmod(mode)
    assert problem(tree / "list") == (
        f"{tree}/list: crt-list not used (its certificates are not stapled): "
        + why.format(p=tree / "list", d=tree)
    )


def test_sticky_directories_and_the_jobs_own_groups_are_trusted(tree: Path) -> None:
    tree.chmod(0o1777)  # /tmp: only an entry's owner may replace it, and that is checked
    assert problem(tree / "list") is None
    tree.chmod(0o755)
    os.chown(tree, 0, 4242)
    tree.chmod(0o2770)  # the README's root:haproxy 2770, for a job user in haproxy
    assert problem(tree / "list", JOB) is None
    assert problem(tree / "list") is not None  # root trusts no group but its own
    os.chown(tree / "list", 1000, 1000)
    assert problem(tree / "list", JOB) is None  # the job's own file
    os.chown(tree / "list", NOBODY, 4242)  # another member's: not the job's peer's to own
    assert problem(tree / "list", JOB) == (
        f"{tree}/list: crt-list not used (its certificates are not stapled): it is "
        f"nobody:4242 0644, not root's or {JOB.name}'s: sudo chown root: {tree}/list"
    )


def test_a_symlink_on_the_way_is_checked_and_so_is_where_it_leads(tree: Path) -> None:
    open_dir = tree.parent / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    link = tree.parent / "link"
    link.symlink_to(open_dir)
    assert problem(link / "list") == (
        f"{link}/list: crt-list not used (its certificates are not stapled): {open_dir} is "
        f"root:root 0777, writable by other users: sudo chmod go-w {open_dir}"
    )
    os.lchown(link, NOBODY, NOBODY)
    link.unlink()
    link.symlink_to(tree)
    os.lchown(link, NOBODY, NOBODY)
    assert problem(link / "list") == (
        f"{link}/list: crt-list not used (its certificates are not stapled): {link} is a "
        f"symlink of nobody's, not root's: sudo chown -h root: {link}"
    )


@pytest.mark.parametrize(
    ("link_uid", "target_uid", "followed"),
    [(0, NOBODY, True), (NOBODY, NOBODY, True), (NOBODY, 0, False), (NOBODY, 1000, False)],
)
def test_the_symlink_rule(link_uid: int, target_uid: int, followed: bool) -> None:
    why = trust.link_problem("/l", "/t", link_uid, target_uid)
    assert (why is None) == followed
    assert trust.link_problem("/l", "/t", 1000, 0, JOB) is None  # the job's own link


def test_open_directory_follows_a_symlink_only_by_the_rule(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    for name, target in (("to-private", private), ("to-theirs", theirs)):
        (tmp_path / name).symlink_to(target)
        os.lchown(tmp_path / name, NOBODY, NOBODY)
    (tmp_path / "root-link").symlink_to(private)
    with pytest.raises(trust.Untrusted) as refused:
        trust.open_directory(str(tmp_path / "to-private" / "."))
    assert str(refused.value) == (
        f"{tmp_path}/to-private: symlink not followed: it belongs to nobody and points to "
        f"{private}, which belongs to root (a symlink is followed only when root or the "
        f"owner of its target made it): remove it, or if it is right: sudo chown -h root: "
        f"{tmp_path}/to-private"
    )
    for name, owner in (("to-theirs", NOBODY), ("root-link", 0)):
        fd = trust.open_directory(str(tmp_path / name))
        try:
            assert os.fstat(fd).st_uid == owner
        finally:
            os.close(fd)
    with pytest.raises(FileNotFoundError):
        trust.open_directory(str(tmp_path / "missing"))
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError, match="symbolic links"):
        trust.open_directory(str(loop))


def test_a_write_through_a_refused_symlink_is_one_line_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(private)
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(WriteError) as refused:
        write_atomic(link / "x.ocsp", b"der")
    assert str(refused.value).startswith(
        f"cannot write {link}/x.ocsp: {link}: symlink not followed: it belongs to nobody"
    )
    assert list(private.iterdir()) == []
