"""One refresh run: scan → parse → decide → fetch → verify → write → push → record.

``run_refresh`` takes ``now`` and the HTTP session as parameters and returns a plain
``RunReport``; it prints nothing. The fast path (nothing due) only stats files and reads
the state: cryptography and requests are imported only when there is work.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocsptool import scan as scanning
from ocsptool import state as statefile
from ocsptool.errors import (
    CertificateError,
    FetchError,
    HAProxyError,
    OcspToolError,
    ResponseRejected,
    WriteError,
)
from ocsptool.files import fsync_dir, remove_leftovers, run_lock, write_atomic
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts
from ocsptool.state import Record, State
from ocsptool.times import from_epoch, iso, to_epoch

if TYPE_CHECKING:
    import requests

    from ocsptool.certs import Bundle
    from ocsptool.ocsp import Staple

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Settings:
    paths: tuple[str, ...]
    state_path: Path
    sockets: tuple[str, ...] = ()
    jobs: int = 8
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_response_bytes: int = MAX_RESPONSE_BYTES
    extensions: tuple[str, ...] = scanning.DEFAULT_EXTENSIONS
    excludes: tuple[str, ...] = ()
    haproxy_timeout: float = 10.0


@dataclass
class Outcome:
    """What happened to one certificate in this run."""

    path: str
    action: str  # fetched | fresh | no-ocsp | failed | skipped
    name: str | None = None
    ocsp_url: str | None = None
    status: str | None = None  # the staple on disk: good | revoked | None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    next_due: dt.datetime | None = None
    error: str | None = None
    pushed: list[str] = field(default_factory=list)
    push_errors: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    #: One line each, ``<file>: <what went wrong>``; any problem makes the exit code 1.
    problems: list[str] = field(default_factory=list)
    #: One line each, worth saying but not a failure (e.g. a corrupt state moved aside).
    notes: list[str] = field(default_factory=list)
    fetched: int = 0
    #: Builds the per-certificate outcomes when someone asks (a quiet no-op run never does).
    build_outcomes: Callable[[], list[Outcome]] = field(default=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @cached_property
    def outcomes(self) -> list[Outcome]:
        """One ``Outcome`` per certificate, sorted by path."""
        return self.build_outcomes()


def run_refresh(
    settings: Settings,
    *,
    now: dt.datetime,
    session_factory: Callable[[], requests.Session] | None = None,
    progress: Progress | None = None,
    force: Sequence[str] = (),
) -> RunReport:
    """Refresh what is due (and everything in ``force``, given as absolute paths)."""
    with run_lock(settings.state_path) as lock:
        with _gc_paused():  # tens of thousands of long-lived dicts and tuples: no garbage
            state = statefile.load(settings.state_path, now)
            found = scanning.scan(settings.paths, settings.extensions, settings.excludes)
        report = RunReport(notes=list(state.notes))
        remove_leftovers(found.leftovers)
        report.problems.extend(f"{path}: {why}" for path, why in found.problems)
        run = _Run(settings, state, report, now, set(force))
        with _gc_paused():
            due = run.decide(found.found)
        if due:
            from ocsptool.fetch import new_session

            session = (session_factory or new_session)()
            try:
                run.fetch_all(due, session, progress)
            finally:
                session.close()
        run.push()
        run.prune({f.path for f in found.found})
        run.finish()
        if state.dirty:
            statefile.save(settings.state_path, state)
        lock.record_run(run.now_epoch, report.ok)
        return report


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while building big containers that are never garbage
    (it would otherwise walk them again and again as they grow: ~15% of a no-op run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Run:
    def __init__(
        self, settings: Settings, state: State, report: RunReport, now: dt.datetime, force: set[str]
    ) -> None:
        self.settings = settings
        self.state = state
        self.report = report
        self.now = now
        self.now_epoch = int(now.timestamp())
        self.force = force
        self.outcomes: dict[str, Outcome] = {}
        #: Certificates with a fresh staple: their Outcome is built only if asked for.
        self.fresh: list[str] = []
        #: Fresh certificates whose staple says revoked (reported on every run).
        self.revoked: list[str] = []
        self.bundles: dict[str, Bundle] = {}
        self.fetched_der: dict[str, bytes] = {}

    # -- decide --------------------------------------------------------------------------

    def decide(self, found: list[scanning.Found]) -> list[Bundle]:
        """Which certificates to fetch for. Parses only new or changed files."""
        due: list[Bundle] = []
        certs = self.state.certs
        for f in found:
            rec = certs.get(f.path)
            cached = rec is not None and cache_valid(rec, f) and f.path not in self.force
            if cached and rec is not None and not self._cached(f, rec):
                continue
            bundle = self._parse(f, rec)
            if bundle is not None and self._needs_fetch(f, bundle):
                due.append(bundle)
        return due

    def _cached(self, f: scanning.Found, rec: Record) -> bool:
        """Handle an unchanged file from its record; True if it needs parsing after all."""
        error = rec.get("cert_error")
        if error:
            self._fail_cert(f.path, error, rec)
            return False
        if not rec.get("url"):
            self._outcome(f.path, rec, "no-ocsp")
            return False
        staple = rec.get("staple")
        if staple is None and f.ocsp_inode is None and self._backing_off(rec):
            self._waiting(f.path, rec)
            return False
        if staple is None or staple.get("inode") != f.ocsp_inode:
            return True  # staple file appeared, vanished or was replaced: look at it
        expiry = rec.get("not_after", 0)
        if self.now_epoch >= rec.get("due", 0) or self.now_epoch >= expiry:
            return True
        self._fresh(f.path, staple)
        return False

    def _parse(self, f: scanning.Found, old: Record | None) -> Bundle | None:
        from ocsptool.certs import parse_bundle

        try:
            bundle = parse_bundle(Path(f.path))
        except Exception as e:  # one certificate never stops the others, not even a bug
            error = e if isinstance(e, CertificateError) else _unexpected(e)
            rec = {"stat": f.stat, "issuer_stat": f.issuer_stat, "cert_error": str(error)}
            self.state.certs[f.path] = rec
            self.state.dirty = True
            self._fail_cert(f.path, str(error), rec)
            return None
        rec = _describe_bundle(bundle, f)
        if old is not None and old.get("fingerprint") == rec["fingerprint"]:
            for key in ("staple", "due", "failures", "last_error", "pushed"):
                if key in old:
                    rec[key] = old[key]
        self.state.certs[f.path] = rec
        self.state.dirty = True
        self.bundles[f.path] = bundle
        return bundle

    def _needs_fetch(self, f: scanning.Found, bundle: Bundle) -> bool:
        from ocsptool.certs import validity_problem

        rec = self.state.certs[f.path]
        if not rec.get("url"):
            self._outcome(f.path, rec, "no-ocsp")
            return False
        problem = validity_problem(bundle.leaf, self.now)
        if problem and self.now > bundle.leaf.not_valid_after_utc:
            self._fail_cert(f.path, problem + "; not fetching", rec)
            return False
        staple = rec.get("staple")
        if staple is None or staple.get("inode") != f.ocsp_inode:
            self._adopt_disk_staple(f, bundle, rec)
        if f.path in self.force or self.now_epoch >= rec.get("due", 0):
            return True
        if rec.get("staple") is None:
            if self._backing_off(rec):
                self._waiting(f.path, rec)
                return False
            return True
        self._fresh(f.path, rec["staple"])
        return False

    def _fresh(self, path: str, staple: dict[str, Any]) -> None:
        self.fresh.append(path)
        if staple.get("status") == "revoked":
            self.revoked.append(path)

    def _backing_off(self, rec: Record) -> bool:
        """A recent failure, and its retry time has not come yet."""
        return bool(rec.get("failures")) and self.now_epoch < rec.get("due", 0)

    def _waiting(self, path: str, rec: Record) -> None:
        """No staple yet, and the last try failed: say so again, retry when due."""
        retry = from_epoch(rec.get("due"))
        when = f"; next try {retry:%Y-%m-%d %H:%M} UTC" if retry else ""
        self._fail_cert(path, f"no staple yet: {rec.get('last_error')}{when}", rec)

    def _adopt_disk_staple(self, f: scanning.Found, bundle: Bundle, rec: Record) -> None:
        """Read ``<cert>.ocsp``; keep it (and its schedule) if it still verifies."""
        from ocsptool.certs import read_file
        from ocsptool.ocsp import verify

        rec["staple"] = None
        rec["pushed"] = []
        if f.ocsp_inode is None:
            return
        try:
            der = read_file(Path(f.path + ".ocsp"))
            staple = verify(der, bundle, self.now)
        except Exception:  # whatever is wrong with the staple on disk, fetch a new one
            return  # no usable staple on disk: fetch one
        rec["staple"] = _describe_staple(staple, f.ocsp_inode)
        rec["due"] = _due(f.path, staple)
        # We cannot know whether HAProxy has this staple: push it once.

    # -- fetch, verify, write ------------------------------------------------------------

    def fetch_all(
        self, due: list[Bundle], session: requests.Session, progress: Progress | None
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        jobs = max(1, min(self.settings.jobs, len(due)))
        done = 0
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fetch") as pool:
            futures = {pool.submit(self._fetch_one, b, session): b for b in due}
            for future in as_completed(futures):
                bundle = futures[future]
                self._record_fetch(bundle, future.result())
                done += 1
                if progress is not None:
                    progress(done, len(due))
        for directory in {b.path.parent for b in due}:
            fsync_dir(directory)

    def _fetch_one(self, bundle: Bundle, session: requests.Session) -> Staple | OcspToolError:
        from ocsptool.fetch import fetch
        from ocsptool.ocsp import build_request, verify

        url = bundle.ocsp_url
        assert url is not None
        try:
            fetched = fetch(
                session,
                url,
                build_request(bundle),
                timeouts=self.settings.timeouts,
                max_bytes=self.settings.max_response_bytes,
            )
            staple = verify(fetched.body, bundle, self.now)
            _check_not_older(staple, self.state.certs[str(bundle.path)].get("staple"))
            write_atomic(Path(str(bundle.path) + ".ocsp"), staple.der, sync_dir=False)
        except OcspToolError as e:
            return e
        except Exception as e:  # one certificate never stops the others, not even a bug
            return _unexpected(e)
        return staple

    def _record_fetch(self, bundle: Bundle, result: Staple | OcspToolError) -> None:
        path = str(bundle.path)
        rec = self.state.certs[path]
        self.state.dirty = True
        rec["last_attempt"] = self.now_epoch
        if isinstance(result, OcspToolError):
            failures = int(rec.get("failures", 0)) + 1
            rec["failures"] = failures
            # A write fault is about our disk, not the responder: don't blame its URL.
            where = "" if isinstance(result, WriteError) else f"{bundle.ocsp_url}: "
            message = f"{where}{result}"
            rec["last_error"] = message
            staple = rec.get("staple") or {}
            rec["due"] = to_epoch(_retry_due(failures, self.now, result, staple))
            out = self._outcome(path, rec, "failed")
            out.error = message
            self.report.problems.append(f"{path}: {message}")
            return
        self.report.fetched += 1
        inode = os.stat(path + ".ocsp").st_ino
        rec["staple"] = _describe_staple(result, inode)
        rec["due"] = _due(path, result)
        rec["failures"] = 0
        rec["last_error"] = None
        rec["last_success"] = self.now_epoch
        rec["pushed"] = []
        self.fetched_der[path] = result.der
        self._outcome(path, rec, "fetched")

    # -- push ----------------------------------------------------------------------------

    def push(self) -> None:
        if not self.settings.sockets:
            return
        certs = self.state.certs
        stapled = [p for p in self._stapled() if certs[p].get("staple")]
        for address in self.settings.sockets:
            pending = [p for p in stapled if address not in certs[p].get("pushed", [])]
            if pending:
                self._push_to(address, pending)

    def _stapled(self) -> list[str]:
        """Certificates that may have a staple on disk: fresh ones and those handled."""
        return list(dict.fromkeys([*self.fresh, *self.outcomes]))

    def _outcome_of(self, path: str) -> Outcome:
        """The Outcome of ``path``, built now for a fresh certificate."""
        if path not in self.outcomes:
            self._outcome(path, self.state.certs[path], "fresh")
        return self.outcomes[path]

    def _push_to(self, address: str, paths: list[str]) -> None:
        from ocsptool.certs import read_file
        from ocsptool.haproxy import PushItem, push_staples

        items = []
        for path in paths:
            der = self.fetched_der.get(path)
            try:
                if der is None:
                    der = read_file(Path(path + ".ocsp"))
                issuer_pem = self._issuer_pem(path)
            except (OSError, OcspToolError) as e:
                self._push_failed(path, address, f"cannot read the staple to push it: {e}")
                continue
            items.append(PushItem(path, der, issuer_pem))
        if not items:
            return
        try:
            results = push_staples(address, items, timeout=self.settings.haproxy_timeout)
        except HAProxyError as e:
            self.report.problems.append(str(e))
            for item in items:
                self.state.certs[item.cert_path]["push_error"] = str(e)
                self._outcome_of(item.cert_path).push_errors.append(str(e))
            self.state.dirty = True
            return
        for result in results:
            rec = self.state.certs[result.cert_path]
            if result.ok or result.method == "not-loaded":
                rec.setdefault("pushed", []).append(address)
                rec["push_error"] = None
                self._outcome_of(result.cert_path).pushed.append(address)
                if result.method == "not-loaded":
                    self.report.notes.append(
                        f"{result.cert_path}: HAProxy {address}: {result.error}"
                    )
            else:
                self._push_failed(result.cert_path, address, result.error or "push failed")
        self.state.dirty = True

    def _issuer_pem(self, path: str) -> bytes | None:
        if not self.state.certs[path].get("issuer_file"):
            return None
        bundle = self.bundles.get(path)
        if bundle is None:
            from ocsptool.certs import parse_bundle

            bundle = parse_bundle(Path(path))
        return bundle.issuer_pem()

    def _push_failed(self, path: str, address: str, why: str) -> None:
        self.state.certs[path]["push_error"] = f"{address}: {why}"
        self._outcome_of(path).push_errors.append(f"{address}: {why}")
        self.report.problems.append(f"{path}: HAProxy {address}: {why}")
        self.state.dirty = True

    # -- record --------------------------------------------------------------------------

    def prune(self, seen: set[str]) -> None:
        """Forget certificates whose files are gone."""
        for path in [p for p in self.state.certs if p not in seen]:
            if not os.path.lexists(path):
                del self.state.certs[path]
                self.state.dirty = True

    def finish(self) -> None:
        certs = self.state.certs
        handled = [p for p in self.outcomes if _staple_status(certs[p]) == "revoked"]
        for path in dict.fromkeys([*self.revoked, *handled]):
            staple = certs[path]["staple"]
            since = from_epoch(staple.get("revocation_time"))
            when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
            reason = staple.get("revocation_reason")
            self.report.problems.append(
                f"{path}: REVOKED{when}"
                + (f" ({reason})" if reason else "")
                + "; the staple tells clients so; replace this certificate"
            )
        self.report.build_outcomes = self._all_outcomes
        self.report.problems.sort()  # fetches finish in any order; report in a stable one

    def _all_outcomes(self) -> list[Outcome]:
        for path in self.fresh:
            self._outcome_of(path)
        return sorted(self.outcomes.values(), key=lambda o: o.path)

    def _fail_cert(self, path: str, message: str, rec: Record) -> None:
        out = self._outcome(path, rec, "skipped")
        out.error = message
        self.report.problems.append(f"{path}: {message}")

    def _outcome(self, path: str, rec: Record, action: str) -> Outcome:
        staple = rec.get("staple") or {}
        out = Outcome(
            path=path,
            action=action,
            name=rec.get("name"),
            ocsp_url=rec.get("url"),
            status=staple.get("status"),
            this_update=from_epoch(staple.get("this_update")),
            next_update=from_epoch(staple.get("next_update")),
            next_due=from_epoch(rec.get("due")) if rec.get("url") else None,
            error=rec.get("last_error") if action != "fetched" else None,
        )
        self.outcomes[path] = out
        return out


def _staple_status(rec: Record) -> str | None:
    staple = rec.get("staple")
    return staple.get("status") if staple else None


def cache_valid(rec: Record, f: scanning.Found) -> bool:
    return rec["stat"] == f.stat and rec.get("issuer_stat") == f.issuer_stat


def _describe_bundle(bundle: Bundle, f: scanning.Found) -> Record:
    from ocsptool.certs import describe_name

    leaf = bundle.leaf
    return {
        "stat": f.stat,
        "issuer_stat": f.issuer_stat,
        "fingerprint": bundle.fingerprint,
        "name": bundle.name,
        "issuer": describe_name(leaf.issuer),
        "issuer_file": str(bundle.issuer_file) if bundle.issuer_file else None,
        "url": bundle.ocsp_url,
        "serial": f"{leaf.serial_number:x}",
        "not_before": to_epoch(leaf.not_valid_before_utc),
        "not_after": to_epoch(leaf.not_valid_after_utc),
        "must_staple": bundle.must_staple,
        "staple": None,
        "due": 0,
        "failures": 0,
        "last_error": None,
        "pushed": [],
    }


def _describe_staple(staple: Staple, inode: int | None) -> dict[str, Any]:
    import hashlib

    return {
        "status": staple.status,
        "this_update": to_epoch(staple.this_update),
        "next_update": to_epoch(staple.next_update),
        "produced_at": to_epoch(staple.produced_at),
        "signer": staple.signer,
        "revocation_time": to_epoch(staple.revocation_time),
        "revocation_reason": staple.revocation_reason,
        "sha256": hashlib.sha256(staple.der).hexdigest(),
        "inode": inode,
    }


def _unexpected(error: Exception) -> OcspToolError:
    """A bug met while handling one certificate: report it on that certificate's line."""
    return OcspToolError(f"unexpected {type(error).__name__}: {error} (a bug; please report it)")


def _check_not_older(new: Staple, held: dict[str, Any] | None) -> None:
    """Refuse a replay or a stale cache copy: it must not replace a newer staple we hold,
    and a 'good' never undoes a revocation (only certificateHold can be lifted)."""
    if not held:
        return
    held_this = from_epoch(held.get("this_update"))
    if held_this is not None and new.this_update < held_this:
        raise ResponseRejected(
            f"response is older than the staple we hold (thisUpdate {iso(new.this_update)} "
            f"< {iso(held_this)}); kept the newer one"
        )
    if (
        held.get("status") == "revoked"
        and new.status == "good"
        and held.get("revocation_reason") != "certificate_hold"
    ):
        raise ResponseRejected(
            "responder now says good, but the staple we hold says REVOKED; kept the revocation"
        )


def _due(path: str, staple: Staple) -> int:
    from ocsptool.schedule import next_due

    return int(next_due(staple.this_update, staple.next_update, path).timestamp())


def _retry_due(
    failures: int, now: dt.datetime, error: OcspToolError, staple: dict[str, Any]
) -> dt.datetime:
    from ocsptool.schedule import retry_due

    return retry_due(
        failures,
        now,
        retry_after=error.retry_after if isinstance(error, FetchError) else None,
        staple_this_update=from_epoch(staple.get("this_update")),
        staple_next_update=from_epoch(staple.get("next_update")),
    )
