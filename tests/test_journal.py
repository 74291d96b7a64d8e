"""journald priorities: a real ``$JOURNAL_STREAM`` naming the real stderr of a real process.

systemd sets ``JOURNAL_STREAM=device:inode`` of the stream it connected to the journal;
here the stream is a pipe (as journald's is a socket) or a file, and the variable carries
its real numbers, or another file's, or nonsense.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from ocsptool import journal

#: What the child does: the lead's output handler in miniature, through both entry points.
CHILD = """
import logging, sys
from ocsptool import journal
if journal.journal_stream_active(sys.stderr):
    line = journal.prefix_lines("ocsptool: site.pem: fetch failed", logging.ERROR)
    sys.stderr.write(line + "\\n")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(journal.journal_formatter("ocsptool: %(message)s"))
    log = logging.getLogger("t")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.warning("site.pem: staple expires in 2 days\\nsecond line")
    log.info("refreshed 3 staples")
    log.debug("GET http://ocsp.test/")
else:
    sys.stderr.write("plain\\n")
"""


def run_child(stderr: int, journal_stream: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env["PYTHONPATH"] = str(ROOT)
    if journal_stream is not None:
        env["JOURNAL_STREAM"] = journal_stream
    subprocess.run([sys.executable, "-c", CHILD], stderr=stderr, env=env, timeout=60, check=True)


def dev_ino(fd: int) -> str:
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


PREFIXED = (
    "<3>ocsptool: site.pem: fetch failed\n"
    "<4>ocsptool: site.pem: staple expires in 2 days\n"
    "<4>second line\n"
    "<6>ocsptool: refreshed 3 staples\n"
    "<7>ocsptool: GET http://ocsp.test/\n"
)


def test_a_pipe_named_by_journal_stream_gets_priorities() -> None:
    read_end, write_end = os.pipe()
    try:
        run_child(write_end, dev_ino(write_end))
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == PREFIXED


def test_a_file_named_by_journal_stream_gets_priorities(tmp_path: Path) -> None:
    with (tmp_path / "stderr").open("w") as out:
        run_child(out.fileno(), dev_ino(out.fileno()))
    assert (tmp_path / "stderr").read_text() == PREFIXED


@pytest.mark.parametrize("kind", ["another file", "same inode, other device", "garbage", "unset"])
def test_a_stderr_that_is_not_the_journal_stream_gets_none(tmp_path: Path, kind: str) -> None:
    """The variable is inherited: a stderr redirected to a file under the unit must stay
    plain, so only the stream whose numbers match gets prefixes."""
    other = tmp_path / "other"
    other.write_text("")
    with (tmp_path / "stderr").open("w") as out:
        st = os.fstat(out.fileno())
        value = {
            "another file": f"{other.stat().st_dev}:{other.stat().st_ino}",
            "same inode, other device": f"{st.st_dev + 1}:{st.st_ino}",
            "garbage": "journal",
            "unset": None,
        }[kind]
        run_child(out.fileno(), value)
    assert (tmp_path / "stderr").read_text() == "plain\n"


def test_priority_prefixes_follow_sd_daemon() -> None:
    levels = [logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG, 0]
    assert [journal.priority_prefix(level) for level in levels] == [
        "<2>",
        "<3>",
        "<4>",
        "<6>",
        "<7>",
        "<7>",
    ]
    assert (journal.CRITICAL, journal.ERROR, journal.WARNING, journal.INFO, journal.DEBUG) == (
        logging.CRITICAL,
        logging.ERROR,
        logging.WARNING,
        logging.INFO,
        logging.DEBUG,
    )


def test_a_stream_without_a_descriptor_is_not_the_journal() -> None:
    import io

    assert not journal.journal_stream_active(io.StringIO(), {"JOURNAL_STREAM": "1:1"})


def test_prefix_lines_keeps_a_final_newline_and_splits_at_newlines_only() -> None:
    assert journal.prefix_lines("a\nb\n", logging.WARNING) == "<4>a\n<4>b\n"
    assert journal.prefix_lines("a\rb", logging.ERROR) == "<3>a\rb"
    assert journal.prefix_lines("", logging.INFO) == "<6>"
