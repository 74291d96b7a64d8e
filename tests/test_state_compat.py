"""A state file written by ocsptool 0.1.0 (before issue 9) keeps loading and keeps its schedule.

``tests/fixtures/release-0.1.0`` was written by that release: a refresh of five
certificates (a good staple, one whose issuer is a ``.issuer`` side file, one without an
OCSP URL, one whose responder was down, and a file that is no certificate), with the
paths then renamed to ``/srv/ocsptool-fixture/certs`` and saved by that release's
``state.save``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from ocsptool import state as statefile
from ocsptool.refresh import run_refresh
from ocsptool.settings import Settings

FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.0"
WRITTEN = dt.datetime.fromisoformat((FIXTURE / "NOW").read_text().strip())
PLACE = "/srv/ocsptool-fixture/certs"


def test_the_release_state_loads_as_written() -> None:
    loaded = statefile.load(FIXTURE / "state.json", WRITTEN, read_only=True)
    assert (loaded.notes, loaded.dirty) == ([], False)  # its digest is accepted
    assert sorted(loaded.certs) == [
        f"{PLACE}/{name}.pem" for name in ("broken", "down", "good", "nocsp", "sidefile")
    ]
    good = loaded.certs[f"{PLACE}/good.pem"]
    assert good["name"] == "good.test"
    assert good["staple"] is not None and good["staple"]["status"] == "good"
    assert loaded.certs[f"{PLACE}/sidefile.pem"]["issuer_file"] == f"{PLACE}/sidefile.pem.issuer"
    assert loaded.certs[f"{PLACE}/down.pem"]["failures"] == 1
    assert loaded.certs[f"{PLACE}/broken.pem"]["cert_error"] == (
        "not a certificate (neither PEM nor DER)"
    )


def test_a_run_on_the_release_state_keeps_its_schedule(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    shutil.copytree(FIXTURE / "certs", certs)
    text = (FIXTURE / "state.json").read_text().replace(PLACE, str(certs))
    state = tmp_path / "state.json"
    state.write_text(text)  # its digest no longer matches: every record is checked in full
    now = WRITTEN + dt.timedelta(seconds=60)
    report = run_refresh(Settings(paths=(str(certs),), state_path=state), now=now)
    # Nothing fetched: the staples on disk are adopted, the failed one keeps its backoff.
    assert report.fetched == 0
    down = json.loads(text)["certs"][f"{certs}/down.pem"]
    retry = dt.datetime.fromtimestamp(down["due"], dt.UTC)
    assert report.problems == [
        f"{certs}/broken.pem: not a certificate (neither PEM nor DER)",
        f"{certs}/down.pem: no staple yet: {down['last_error']}; "
        f"next try {retry:%Y-%m-%d %H:%M} UTC",
    ]
    actions = {Path(o.path).name: o.action for o in report.outcomes}
    assert actions == {
        "broken.pem": "skipped",
        "down.pem": "skipped",
        "good.pem": "fresh",
        "nocsp.pem": "no-ocsp",
        "sidefile.pem": "fresh",
    }
    saved = statefile.load(state, now).certs
    assert saved[f"{certs}/down.pem"]["failures"] == 1
    assert (
        saved[f"{certs}/good.pem"]["staple"]["sha256"]
        == (json.loads(text)["certs"][f"{certs}/good.pem"]["staple"]["sha256"])
    )
