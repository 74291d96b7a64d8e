"""ocsptool.plan: triage and decide are pure; tested directly with plain values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ocsptool.certs import parse_bundle
from ocsptool.plan import Plan, decide, triage
from ocsptool.scan import Found
from ocsptool.state import Record
from ocsptool.state.index import NO_STAPLE, FreshIndex
from ocsptool.target import IssuerOrigin, target_of
from ocsptool.testing.pki import Authority

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
EPOCH = int(NOW.timestamp())
STAT = [1, 2, 3, 4]
FOUND = Found("/c/a.pem", STAT, 7, None)
GOOD: Record = {
    "stat": STAT,
    "issuer_stat": None,
    "url": "http://ocsp.test/",
    "not_after": EPOCH + 86400,
    "due": EPOCH + 3600,
    "failures": 0,
    "staple": {"status": "good", "this_update": 0, "next_update": 0, "inode": 7},
}


def rec(**changes: Any) -> Record:
    out: dict[str, Any] = {**GOOD, **changes}
    return out  # type: ignore[return-value]


def where(plan: Plan) -> list[str]:
    """The lists of the plan that name the certificate."""
    lists = {
        "parse": [f.path for f in plan.parse],
        "fresh": plan.fresh,
        "revoked": plan.revoked,
        "no_ocsp": plan.no_ocsp,
        "broken": plan.broken,
        "waiting": plan.waiting,
    }
    return [name for name, keys in lists.items() if FOUND.path in keys]


TRIAGE = {
    "fresh": (FOUND, rec(), [], ["fresh"]),
    "fresh, revoked": (
        FOUND,
        rec(staple={**GOOD["staple"], "status": "revoked"}),  # type: ignore[dict-item]
        [],
        ["fresh", "revoked"],
    ),
    "no record": (FOUND, None, [], ["parse"]),
    "file changed": (FOUND._replace(stat=[1, 2, 3, 5]), rec(), [], ["parse"]),
    "issuer file appeared": (FOUND._replace(issuer_stat=[9, 9, 9, 9]), rec(), [], ["parse"]),
    "forced": (FOUND, rec(), [FOUND.path], ["parse"]),
    "broken": (FOUND, {"stat": STAT, "issuer_stat": None, "cert_error": "bad"}, [], ["broken"]),
    "no OCSP URL": (FOUND, rec(url=None, staple=None), [], ["no_ocsp"]),
    "due": (FOUND, rec(due=EPOCH), [], ["parse"]),
    "certificate expired": (FOUND, rec(not_after=EPOCH), [], ["parse"]),
    "staple file replaced": (FOUND._replace(ocsp_inode=8), rec(), [], ["parse"]),
    "staple file removed": (FOUND._replace(ocsp_inode=None), rec(), [], ["parse"]),
    "no staple, backing off": (
        FOUND._replace(ocsp_inode=None),
        rec(staple=None, failures=2, due=EPOCH + 60),
        [],
        ["waiting"],
    ),
    "no staple, retry time come": (
        FOUND._replace(ocsp_inode=None),
        rec(staple=None, failures=2, due=EPOCH),
        [],
        ["parse"],
    ),
    "no staple recorded, but a file appeared": (
        FOUND,
        rec(staple=None, failures=2, due=EPOCH + 60),
        [],
        ["parse"],
    ),
}


@pytest.mark.parametrize("case", sorted(TRIAGE))
def test_triage(case: str) -> None:
    found, record, force, expected = TRIAGE[case]
    records = {} if record is None else {FOUND.path: record}
    assert where(triage([found], records, NOW, frozenset(force))) == expected


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca = Authority.root().intermediate("Plan CA")
    leaf = ca.leaf("plan.test", ocsp_url="http://ocsp.test/")
    return leaf.write_bundle(tmp_path_factory.mktemp("plan") / "a.pem")


DECIDE = {
    "fresh": (rec(), [], "fresh"),
    "due": (rec(due=EPOCH), [], "due"),
    "forced": (rec(), ["KEY"], "due"),
    "no staple": (rec(staple=None, due=EPOCH + 60), [], "due"),
    "no staple, backing off": (rec(staple=None, failures=1, due=EPOCH + 60), [], "waiting"),
}


@pytest.mark.parametrize("case", sorted(DECIDE))
def test_decide(case: str, bundle_path: Path) -> None:
    record, force, expected = DECIDE[case]
    target = target_of(parse_bundle(bundle_path))
    force = [target.key if k == "KEY" else k for k in force]
    plan = decide([target], {target.key: record}, NOW, frozenset(force))
    got = [name for name in ("due", "fresh", "waiting") if getattr(plan, name)]
    assert got == [expected]
    assert (plan.due == [target]) == (expected == "due")


def test_decide_an_expired_certificate_is_not_fetched(bundle_path: Path) -> None:
    target = target_of(parse_bundle(bundle_path))
    later = target.leaf.not_valid_after_utc + dt.timedelta(days=1)
    plan = decide([target], {target.key: rec(due=0)}, later, frozenset())
    expiry = f"{target.leaf.not_valid_after_utc:%Y-%m-%d %H:%M}"
    assert plan.expired == [
        (target.key, f"certificate expired on {expiry} UTC; renew it; not fetching")
    ]
    assert plan.due == []


def test_the_target_carries_what_the_later_stages_need(bundle_path: Path) -> None:
    from cryptography.x509 import ocsp

    from ocsptool.haproxy import certid_key
    from ocsptool.ocsp import build_request

    target = target_of(parse_bundle(bundle_path))
    request = ocsp.load_der_ocsp_request(build_request(target))
    assert target.certid == certid_key(
        request.issuer_name_hash, request.issuer_key_hash, request.serial_number
    )
    assert (target.key, target.staple_path) == (str(bundle_path), Path(f"{bundle_path}.ocsp"))
    assert (target.ocsp_urls, target.issuer_origin) == (("http://ocsp.test/",), IssuerOrigin.CHAIN)
    assert (target.issuer_pem, target.consumers) == (None, ())


# -- all_fresh: the no-op run from the store's fresh index ---------------------------------

ENTRY = (STAT, None, 7, EPOCH + 3600, ("sock",))
ALL_FRESH = {
    "fresh": (FOUND, ENTRY, [], [], [FOUND.path]),
    "fresh, pushed to the socket asked for": (FOUND, ENTRY, [], ["sock"], [FOUND.path]),
    "a socket that lacks it": (FOUND, ENTRY, [], ["other"], None),
    "not in the index": (FOUND, "absent", [], [], None),
    "not fresh-able": (FOUND, None, [], [], None),
    "file changed": (FOUND._replace(stat=[9, 9, 9, 9]), ENTRY, [], [], None),
    "issuer file appeared": (FOUND._replace(issuer_stat=STAT), ENTRY, [], [], None),
    "staple replaced": (FOUND._replace(ocsp_inode=8), ENTRY, [], [], None),
    "due": (FOUND, (STAT, None, 7, EPOCH, ()), [], [], None),
    "forced": (FOUND, ENTRY, [FOUND.path], [], None),
    "no OCSP URL, any staple file, any time, any socket": (
        FOUND._replace(ocsp_inode=None),
        (STAT, None, -1, 0, ()),
        [],
        ["sock"],
        "no-ocsp",
    ),
    "no OCSP URL, but the file changed": (
        FOUND._replace(stat=[9, 9, 9, 9]),
        (STAT, None, -1, 0, ()),
        [],
        [],
        None,
    ),
}


def packed(entries: dict[str, Any]) -> FreshIndex:
    return FreshIndex.of(entries)


def unpacked(entries: dict[str, Any]) -> FreshIndex:
    """Every entry as it is, none packed (as an issuer file or a huge inode leaves them)."""
    return FreshIndex(others=entries)


@pytest.mark.parametrize("form", [packed, unpacked])
@pytest.mark.parametrize("case", sorted(ALL_FRESH))
def test_all_fresh(case: str, form: Any) -> None:
    from ocsptool.plan import all_fresh

    found, entry, force, consumers, expected = ALL_FRESH[case]
    index = form({} if entry == "absent" else {FOUND.path: entry})
    plan = all_fresh([found], index, NOW, frozenset(force), consumers)
    if expected is None:
        assert plan is None
    elif expected == "no-ocsp":
        assert plan is not None and (plan.fresh, plan.no_ocsp) == ([], [FOUND.path])
    else:
        assert plan is not None and (plan.fresh, plan.no_ocsp) == (expected, [])
        assert where(plan) == ["fresh"]


@pytest.mark.parametrize("form", [packed, unpacked])
def test_all_fresh_needs_the_index_to_hold_exactly_the_files_found(form: Any) -> None:
    from ocsptool.plan import all_fresh

    index = form({FOUND.path: ENTRY, "/c/gone.pem": ENTRY})  # a record to prune: load them
    assert all_fresh([FOUND], index, NOW, frozenset(), []) is None


@pytest.mark.parametrize("form", [packed, unpacked])
def test_all_fresh_asks_a_routed_certificate_for_its_own_sinks(form: Any) -> None:
    """A certificate a configuration routes needs its staple at its route's sinks (not
    the -s ones); any other, at every -s socket."""
    from ocsptool.plan import all_fresh

    other = Found("/c/b.pem", [1, 2, 3, 5], 8, None)
    index = form({FOUND.path: ENTRY, other.path: (other.stat, None, 8, EPOCH + 60, ())})
    routed = {FOUND.path: ("sock",)}

    def fresh(routed: dict[str, tuple[str, ...]], consumers: list[str]) -> list[str] | None:
        plan = all_fresh([FOUND, other], index, NOW, (), consumers, routed=routed)
        return None if plan is None else plan.fresh

    assert fresh(routed, []) == [FOUND.path, other.path]
    assert fresh(routed, ["given"]) is None  # b has no route: every -s socket
    assert fresh({**routed, other.path: ()}, ["given"]) == [FOUND.path, other.path]
    assert fresh({FOUND.path: ("sock", "more")}, []) is None
    assert fresh({}, ["sock"]) is None  # b lacks it


def test_all_fresh_in_any_order_packed_or_not_each_file_by_its_own_entry() -> None:
    """The index is in the state's order, often not the order found (a certificate added
    later); entries that do not pack (an issuer file, an inode past int64) are mixed in:
    each file is still compared with its own entry, and only with it."""
    from ocsptool.plan import all_fresh

    files = [
        Found(f"/c/{n}.pem", [1, n, 3, 4], 100 + n, [5, n, 5, 5] if n % 3 == 0 else None)
        for n in range(10)
    ]
    files.append(Found("/c/huge.pem", [1, 2**64 - 1, 3, 4], 2**63, None))
    entries: dict[str, Any] = {
        f.path: (f.stat, f.issuer_stat, f.ocsp_inode, EPOCH + 60, ("sock",)) for f in files
    }
    entries = dict(reversed(list(entries.items())))
    index = FreshIndex.of(entries)
    assert len(index.names) == 6 and sorted(index.others) == sorted(
        [*(f"/c/{n}.pem" for n in (0, 3, 6, 9)), "/c/huge.pem"]
    )
    plan = all_fresh(files, index, NOW, frozenset(), ["sock"])
    assert plan is not None and plan.fresh == [f.path for f in files]
    for n, f in enumerate(files):  # any one file changed, in any way: not all fresh
        for changed in (
            f._replace(stat=[*f.stat[:3], 5]),
            f._replace(ocsp_inode=None),
            f._replace(issuer_stat=None if f.issuer_stat else [5, 5, 5, 5]),
        ):
            assert all_fresh([*files[:n], changed, *files[n + 1 :]], index, NOW, (), []) is None
    swapped = [files[1]._replace(path=files[2].path), files[2]._replace(path=files[1].path)]
    assert all_fresh([files[0], *swapped, *files[3:]], index, NOW, (), []) is None


def test_the_index_packs_and_reads_back_as_json_does() -> None:
    import json

    entries: dict[str, Any] = {
        "/c/a.pem": ([1, 2, 3, 4], None, 7, EPOCH, ("s1", "s2")),
        "/c/b.pem": ([1, 3, 3, -4], None, NO_STAPLE, 0, ()),
        "/c/c.pem": ([1, 4, 3, 4], [1, 1, 1, 1], 8, EPOCH, ()),
        "/c/d.pem": None,
        "/c/e.pem": ([1, 5, 3, 4], None, None, EPOCH, ()),
        "kubernetes:web/f": ([1, 6, 3, 4], None, 9, EPOCH, ("s1", "s2")),
        "g": ([1, 7, 70_000, 2**40], None, 10, EPOCH, ()),
        "/c/h.pem": ([1, 8, 3, 4], None, 11, EPOCH, ()),
    }
    index = FreshIndex.of(entries)
    assert index.folders == ["/c/", "kubernetes:web/", ""]
    assert index.names == ["a.pem", "b.pem", "f", "g", "h.pem"]
    assert index.consumers == [("s1", "s2"), ()]
    assert [list(c) for c in index.columns] == [
        [0, 0, 1, 2, 0], [1, 1, 1, 1, 1], [2, 3, 6, 7, 8], [3, 3, 3, 70_000, 3],
        [4, -4, 4, 2**40, 4], [7, NO_STAPLE, 9, 10, 11], [EPOCH, 0, EPOCH, EPOCH, EPOCH],
        [0, 1, 0, 1, 1],
    ]  # fmt: skip
    assert [c.typecode for c in index.columns] == ["b", "b", "b", "i", "q", "b", "i", "b"]
    assert index.others == {k: entries[k] for k in ("/c/c.pem", "/c/d.pem", "/c/e.pem")}
    assert index.rows() == {"/c/a.pem": 0, "/c/b.pem": 1, "kubernetes:web/f": 2, "g": 3,
                            "/c/h.pem": 4}  # fmt: skip
    again = FreshIndex.loads(json.loads(json.dumps(index.dumps())))
    assert (again.folders, again.names, again.consumers, again.columns) == (
        index.folders,
        index.names,
        index.consumers,
        index.columns,
    )
    assert again.others == json.loads(json.dumps(index.others))
    folders, names, consumers, columns, others = index.dumps()
    for bad in (
        [folders, names[:2], consumers, columns, others],  # columns longer than the names
        [folders, names, consumers, columns[:7], others],
        [folders, names, consumers[:1], columns, others],  # a row's consumers not there
        [folders[:2], names, consumers, columns, others],  # a row's folder not there
        [folders, names, consumers, [*columns[:7], columns[4]], others],  # out of the table
        [folders, names, consumers, columns, []],
        [folders, names, consumers, [[c, t[:-4]] for c, t in columns], others],  # cut short
        [folders, names, consumers, [["l", t] for _, t in columns], others],  # not a size kept
        [[1], names, consumers, columns, others],
    ):
        with pytest.raises((ValueError, TypeError)):
            FreshIndex.loads(json.loads(json.dumps(bad)))


INDEX_ENTRY = {
    "good staple": (rec(pushed=["sock"]), (STAT, None, 7, EPOCH + 3600, ("sock",))),
    "expires before it is due": (rec(not_after=EPOCH + 60), (STAT, None, 7, EPOCH + 60, ())),
    "revoked: reported every run": (
        rec(staple={**GOOD["staple"], "status": "revoked"}),  # type: ignore[dict-item]
        None,
    ),
    "no staple": (rec(staple=None), None),
    "no OCSP URL": (rec(url=None), (STAT, None, -1, 0, ())),
    "broken": ({"stat": STAT, "issuer_stat": None, "cert_error": "bad"}, None),
}


@pytest.mark.parametrize("case", sorted(INDEX_ENTRY))
def test_index_entry(case: str) -> None:
    from ocsptool.state.index import index_entry

    record, expected = INDEX_ENTRY[case]
    assert index_entry(record) == expected
