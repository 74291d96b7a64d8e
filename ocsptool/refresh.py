"""One refresh run, stage by stage, each handing plain values to the next:

    sources -> targets -> decide (pure) -> fetch + verify -> sinks -> store

- ``ocsptool.sources``: ``scan()`` lists candidates; ``target()`` parses one (only those
  that ``plan.triage`` cannot settle from their record).
- ``ocsptool.plan``: ``triage`` and ``decide``, pure: fresh, due, waiting, unusable.
- ``ocsptool.retrieval``: fetch + verify, one ``Retrieved`` per due target.
- ``ocsptool.sinks``: the ``.ocsp`` file first, then each consumer (HAProxy socket).
- ``ocsptool.store``: the lock, the records (``State`` tracks what changed), the last run.
- Then the on-change hook (``ocsptool.hooks``), once, if a staple file changed.

With ``Settings.store`` (a fleet's shared store, ``ocsptool.shared_store``) the fetch of
each due target goes through ``StoreRun.obtain``: the store is opened only when there is
something due, once per run, and its failure is ``RunReport.store_problem`` (exit 69).

``run_refresh`` takes ``now`` and the HTTP session as parameters and returns a plain
``RunReport``; it prints nothing. The fast path (nothing due) only stats files and reads
the state: cryptography and requests are imported only when there is work.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool import scan as scanning
from ocsptool.errors import CertificateError, FetchError, OcspToolError
from ocsptool.files import read_file, remove_leftovers
from ocsptool.freshness import cert_expired
from ocsptool.limits import MAX_RESPONSE_BYTES, Timeouts
from ocsptool.pacing import DEFAULT_JOBS_PER_HOST
from ocsptool.plan import Action, Plan, all_fresh, decide, triage
from ocsptool.scan import Found
from ocsptool.sources import Route, Source, sources_for
from ocsptool.state import Record, StapleRecord, State
from ocsptool.store import Store, store_for
from ocsptool.target import IssuerOrigin
from ocsptool.times import from_epoch, to_epoch

if TYPE_CHECKING:
    import requests
    from cryptography import x509

    from ocsptool.ocsp import Staple
    from ocsptool.responders import Overrides
    from ocsptool.retrieval import Retrieved
    from ocsptool.shared_store import StoreRun
    from ocsptool.sinks import Delivery, Publication, Sink
    from ocsptool.status import CertStatus
    from ocsptool.target import Target

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
    #: The fleet's shared staple store (``redis://...``), or None.
    store: str | None = None
    #: The on-change hook: a shell string or an argv tuple (killed after the read timeout).
    on_change: str | tuple[str, ...] | None = None
    #: HAProxy configurations (one per instance): their certificates, routed to their sockets.
    haproxy_configs: tuple[Path, ...] = ()
    #: Requests in flight per responder host (under ``jobs``).
    jobs_per_host: int = DEFAULT_JOBS_PER_HOST
    #: ``responder_overrides`` from the config file: an issuer's URL replaces the leaf's.
    responder_overrides: Overrides | None = None
    #: ``renew --responder``: ask this URL instead of the certificates' own.
    responder: str | None = None
    #: CA certificates for https:// responders, and a forward proxy (``fetch.new_session``).
    ca_bundle: Path | None = None
    proxy: str | None = None
    #: Load a renewed certificate into HAProxy with its staple (``--update-certs``).
    update_certs: bool = False


@dataclass
class Outcome:
    """What happened to one certificate in this run."""

    path: str
    action: Action
    name: str | None = None
    ocsp_url: str | None = None
    status: str | None = None  # the staple on disk: good | revoked | None
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    next_due: dt.datetime | None = None
    error: str | None = None
    pushed: list[str] = field(default_factory=list)
    push_errors: list[str] = field(default_factory=list)
    #: Where the staple on disk came from: responder | store (None: not known).
    origin: str | None = None
    #: The node that fetched it from the responder (this one, or another via the store).
    fetched_by: str | None = None
    #: HAProxy addresses that staple this certificate themselves (``ocsp-update on``).
    self_stapled: list[str] = field(default_factory=list)
    #: HAProxy addresses that have not loaded this certificate (nothing pushed there).
    not_loaded: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, view: CertStatus, action: Action, rec: Record) -> Outcome:
        """The outcome of ``action`` for the certificate ``view`` describes (``status.recorded``
        of its record: the same facts ``status`` reads). Only ``next_due`` reads ``rec``: a
        certificate never scheduled (due 0) says the epoch here, where the view says None."""
        return cls(
            path=view.path,
            action=action,
            name=view.name,
            ocsp_url=view.ocsp_url,
            status=None if view.status == "none" else view.status,  # None: no staple
            this_update=view.this_update,
            next_update=view.next_update,
            next_due=from_epoch(rec.get("due")) if view.ocsp_url else None,
            error=None if action is Action.FETCHED else view.last_error,
            origin=view.origin,
            fetched_by=view.fetched_by,
            self_stapled=list(view.self_stapled),
        )


@dataclass
class RunReport:
    #: One line each, ``<file>: <what went wrong>``; any problem makes the exit code 1.
    problems: list[str] = field(default_factory=list)
    #: One line each, worth saying but not a failure (e.g. a corrupt state moved aside).
    notes: list[str] = field(default_factory=list)
    fetched: int = 0
    #: The one line naming the shared store and why this run gave it up (exit 69).
    store_problem: str | None = None
    #: The staple files this run changed (what the on-change hook is given).
    changed: list[str] = field(default_factory=list)
    #: Builds the per-certificate outcomes when someone asks (a quiet no-op run never does).
    build_outcomes: Callable[[], list[Outcome]] = field(default=list, repr=False)
    #: What the run scanned (staple inodes as the run left them) and the records it left:
    #: ``status.view(report.scan, report.state, now)`` reads them without a second scan.
    scan: scanning.ScanResult = field(default_factory=scanning.ScanResult, repr=False)
    load_state: Callable[[], State] = field(default=State, repr=False)

    @cached_property
    def state(self) -> State:
        """The records the run left (loaded when asked, after a run that needed none)."""
        return self.load_state()

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
    if settings.store:  # a bad --store is a usage error on every run, not only a busy one
        from ocsptool.shared_store import check_store_url

        check_store_url(settings.store)
    store: Store = store_for(settings.state_path)
    sources = sources_for(
        settings.paths,
        settings.extensions,
        settings.excludes,
        settings.haproxy_configs,
        settings.sockets,
        cache=settings.state_path.with_name(settings.state_path.name + ".discovery"),
    )
    routing = _Routing.of(sources, settings.sockets)
    forced = frozenset(force)
    with store.locked():
        with _gc_paused():  # tens of thousands of long-lived dicts and tuples: no garbage
            scans = [source.scan() for source in sources]
            settled = _all_fresh(store, scans, now, forced, settings.sockets, routing=routing)
        if settled is not None:  # the no-op run: nothing to do, and the records not loaded
            report = _fresh_report(settings, store, scans, settled, now)
            report.notes[:0] = routing.warnings
            store.record_run(int(now.timestamp()), report.ok)
            return report
        with _gc_paused():
            state = store.load(now)
        report = RunReport(notes=[*routing.warnings, *state.notes])
        run = _Run(settings, state, report, now, routing, session_factory=session_factory)
        plan = Plan()
        try:
            for source, found in zip(sources, scans, strict=True):
                remove_leftovers(found.leftovers)
                report.problems.extend(f"{path}: {why}" for path, why in found.problems)
                with _gc_paused():
                    settled = triage(found.found, state.certs, now, forced)
                plan.merge(settled)
                targets = run.targets(source, settled.parse)
                plan.merge(decide(targets, state.certs, now, forced))
            run.settle(plan)
            if plan.due:
                run.fetch(plan.due, progress)
                report.notes += routing.unpushed(run.published)
        finally:
            run.close()
        if routing.sockets:
            from ocsptool.sinks import sinks_for

            run.push(
                sinks_for(
                    routing.sockets,
                    timeout=settings.haproxy_timeout,
                    now=now,
                    update_certs=settings.update_certs,
                )
            )
        run.prune({f.path for found in scans for f in found.found})
        run.finish()
        report.scan, report.load_state = run.scanned(scans), lambda: state
        store.save(state)
        if settings.on_change and report.changed:
            run.on_change(settings.on_change)
        store.record_run(run.now_epoch, report.ok)
        return report


@dataclass(frozen=True)
class _Routing:
    """Which sinks get which staple, under which name: the -s sockets get every staple
    the PATHs name; a HAProxy configuration's certificates go to their instances."""

    #: Every sink's socket, in order: the -s ones, then each instance's.
    sockets: tuple[str, ...]
    #: Per certificate key from a configuration: who serves it (else: every -s socket).
    routes: Mapping[str, Route]
    #: Configuration lines skipped, one ``file:line: ...`` each (notes, not failures).
    warnings: tuple[str, ...] = ()
    #: Keys served by an instance with no socket -> its configuration.
    socketless: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, sources: Sequence[Source], sockets: Sequence[str]) -> _Routing:
        from ocsptool.sources import HAProxyConfigSource

        routes: dict[str, Route] = {}
        socketless: dict[str, str] = {}
        found, warnings = list(sockets), list[str]()
        for source in sources:
            if isinstance(source, HAProxyConfigSource):
                routes.update(source.routes)
                found += source.sockets
                warnings += source.warnings
                socketless.update(source.socketless)
        return cls(tuple(dict.fromkeys(found)), routes, tuple(warnings), socketless)

    def unpushed(self, written: Iterable[str]) -> list[str]:
        """One note per instance with no socket that this run wrote new staples for."""
        counts = Counter(self.socketless[k] for k in written if k in self.socketless)
        return [
            f"{config}: {n} new staple{'s' if n > 1 else ''} written, not pushed: it names "
            "no stats socket (add 'stats socket ... level admin', or give -s); HAProxy "
            "serves them after its next reload"
            for config, n in sorted(counts.items())
        ]

    def sinks_of(self, key: str) -> Sequence[str]:
        route = self.routes.get(key)
        return self.sockets if route is None else route.sinks

    def name_for(self, key: str, sink: str) -> str:
        """The name the instance behind ``sink`` loaded ``key`` under."""
        route = self.routes.get(key)
        if route is None:
            return key
        for sockets, name, _update in route.served:
            if sockets and sockets[0] == sink:
                return name
        return route.served[0][1]

    def staple_path(self, key: str) -> Path:
        route = self.routes.get(key)
        return Path(route.staple_path if route else key + ".ocsp")


def _all_fresh(
    store: Store,
    scans: list[scanning.ScanResult],
    now: dt.datetime,
    force: frozenset[str],
    sockets: Sequence[str],
    *,
    routing: _Routing,
) -> Plan | None:
    """Every certificate plainly fresh (or without OCSP URL), by the store's fresh index;
    else None."""
    if any(scan.problems or scan.leftovers for scan in scans):
        return None
    index = store.index()
    if index is None:
        return None
    found = [f for scan in scans for f in scan.found]
    try:
        sinks = {k: r.sinks for k, r in routing.routes.items()} if routing.routes else None
        return all_fresh(found, index, now, force, sockets, routed=sinks)
    except (TypeError, IndexError, KeyError):  # a damaged index: load the records
        return None


def _fresh_report(
    settings: Settings,
    store: Store,
    scans: list[scanning.ScanResult],
    plan: Plan,
    now: dt.datetime,
) -> RunReport:
    """The report of a run that found everything fresh; the outcomes and the records
    (for --metrics or -v) are read from the store only when asked for."""
    report = RunReport()

    def state() -> State:
        return store.load(now, read_only=True)

    def outcomes() -> list[Outcome]:
        run = _Run(settings, report.state, RunReport(), now, _Routing((), {}))
        run.settle(plan)
        return run._all_outcomes()

    report.build_outcomes = outcomes
    report.load_state = state
    merged = scanning.ScanResult()
    for scan in scans:
        merged.found += scan.found
    report.scan = merged
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
    """What one run knows between stages: the records (``state``), the targets parsed,
    the staples fetched, and the outcomes. Each stage method takes the previous stage's
    values."""

    def __init__(
        self,
        settings: Settings,
        state: State,
        report: RunReport,
        now: dt.datetime,
        routing: _Routing,
        *,
        session_factory: Callable[[], requests.Session] | None = None,
    ):
        self.settings = settings
        self.routing = routing
        self.session_factory = session_factory
        self._session: requests.Session | None = None
        self.state = state
        self.report = report
        self.now = now
        self.now_epoch = int(now.timestamp())
        self.outcomes: dict[str, Outcome] = {}
        #: Certificates with a fresh staple: their Outcome is built only if asked for.
        self.fresh: list[str] = []
        #: Fresh certificates whose staple says revoked (reported on every run).
        self.revoked: list[str] = []
        self.targets_by_key: dict[str, Target] = {}
        #: The staples this run fetched and wrote, ready for the consumer sinks.
        self.published: dict[str, Publication] = {}
        #: What the consumer sinks did, per key: applied to the Outcomes when they are
        #: built (a quiet run never builds them).
        self.push_facts = _PushFacts()

    # -- the HTTP session: made when the first request is (a run may need none) -----------

    def session(self) -> requests.Session:
        if self._session is None:
            if self.session_factory is not None:
                self._session = self.session_factory()
            else:
                from ocsptool.fetch import new_session

                self._session = new_session(self.settings.ca_bundle, self.settings.proxy)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- targets -------------------------------------------------------------------------

    def targets(self, source: Source, found: list[Found]) -> list[Target]:
        """Parse what triage could not settle; update its record; adopt its staple file."""
        targets = []
        for scanned in found:
            old = self.state.certs.get(scanned.path)
            f = scanned
            try:
                target, f = self._target(source, scanned)
            except Exception as e:  # one certificate never stops the others, not even a bug
                from ocsptool.retrieval import unexpected

                # A caIssuers fetch fails with a FetchError, a write with a WriteError.
                error = e if isinstance(e, OcspToolError) else unexpected(e)
                rec: Record = {
                    "stat": f.stat,
                    "issuer_stat": f.issuer_stat,
                    "cert_error": str(error),
                }
                if isinstance(error, FetchError):  # caIssuers unreachable: retry, backing off
                    rec.update(self._issuer_retry(old, error))
                self.state.put(f.path, rec)
                self._fail_cert(f.path, str(error), self.state.certs[f.path])
                continue
            rec = _describe_target(target, f)
            if old is not None and old.get("fingerprint") == rec["fingerprint"]:
                for key in (
                    "staple",
                    "due",
                    "failures",
                    "last_error",
                    "pushed",
                    "responder",
                    "self_stapled",
                ):
                    if key in old:
                        rec[key] = old[key]
            self.state.put(target.key, rec)
            self.targets_by_key[target.key] = target
            staple = rec.get("staple")
            if (
                target.ocsp_urls
                and not cert_expired(target.leaf.not_valid_after_utc, self.now)
                and (staple is None or staple.get("inode") != f.ocsp_inode)
            ):
                self._adopt_disk_staple(target, f.ocsp_inode)
            targets.append(target)
        return targets

    def _target(self, source: Source, f: Found) -> tuple[Target, Found]:
        """``source.target(f)``, with the OCSP URLs to ask (an override, ``--responder``);
        a leaf-only bundle gets its issuer from the leaf's caIssuers URL first."""
        import dataclasses

        try:
            target = source.target(f)
        except CertificateError:
            from ocsptool.issuers import ca_issuers_urls, leaf_without_issuer

            leaf = leaf_without_issuer(Path(f.path))
            if leaf is None or not ca_issuers_urls(leaf):
                raise  # parse_bundle's line says what to do
            f = self._fetch_issuer(f, leaf)
            target = dataclasses.replace(source.target(f), issuer_origin=IssuerOrigin.AIA)
        urls = target.ocsp_urls
        if self.settings.responder is not None:
            urls = (self.settings.responder,)
        elif urls and self.settings.responder_overrides:
            from ocsptool.responders import urls_for

            urls = tuple(urls_for(target.leaf, target.issuer, self.settings.responder_overrides))
        if urls != target.ocsp_urls:
            target = dataclasses.replace(target, ocsp_urls=urls)
        return target, f

    def _fetch_issuer(self, f: Found, leaf: x509.Certificate) -> Found:
        """Fetch the issuer via AIA caIssuers and write ``<cert>.issuer`` (the cache: the
        next run parses it like any other); say once that the bundle lacks its chain."""
        from ocsptool.issuers import ca_issuers_urls, chain_warning, fetch_issuer, write_issuer

        path = Path(f.path)
        issuer = fetch_issuer(
            self.session(),
            leaf,
            now=self.now,
            timeouts=self.settings.timeouts,
            max_bytes=self.settings.max_response_bytes,
        )
        written = write_issuer(path, issuer)
        urls = ca_issuers_urls(leaf)
        self.report.notes.append(chain_warning(path, issuer, urls[0] if len(urls) == 1 else None))
        return f._replace(issuer_stat=scanning.stat_key(os.stat(written)))

    def _issuer_retry(self, old: Record | None, error: FetchError) -> Record:
        """When to try a failed caIssuers fetch again (``plan.triage`` reparses then)."""
        from ocsptool.schedule import retry_due

        failures = int(old.get("failures", 0)) + 1 if old and old.get("cert_error") else 1
        due = retry_due(failures, self.now, retry_after=error.retry_after)
        return {"failures": failures, "due": int(due.timestamp())}

    def _adopt_disk_staple(self, target: Target, inode: int | None) -> None:
        """Read the staple file; keep it (and its schedule) if it still verifies."""
        from ocsptool.ocsp import verify

        self.state.update(target.key, {"staple": None, "pushed": []})
        if inode is None:
            return
        try:
            staple = verify(read_file(target.staple_path), target.bundle, self.now)
        except Exception:  # whatever is wrong with the staple on disk, fetch a new one
            return
        # We cannot know whether HAProxy has this staple: it is pushed once (pushed = []).
        self.state.update(
            target.key, {"staple": _describe_staple(staple, inode), "due": _due(target, staple)}
        )

    # -- the plan ------------------------------------------------------------------------

    def settle(self, plan: Plan) -> None:
        """Outcomes of everything the plan settled without a fetch."""
        certs = self.state.certs
        self.fresh, self.revoked = plan.fresh, plan.revoked
        for key in plan.broken:
            self._fail_cert(key, str(certs[key].get("cert_error")), certs[key])
        for key in plan.no_ocsp:
            self._outcome(key, certs[key], Action.NO_OCSP)
        for key, why in plan.expired:
            self._fail_cert(key, why, certs[key])
        for key in plan.waiting:
            rec = certs[key]
            retry = from_epoch(rec.get("due"))
            when = f"; next try {retry:%Y-%m-%d %H:%M} UTC" if retry else ""
            self._fail_cert(key, f"no staple yet: {rec.get('last_error')}{when}", rec)

    # -- fetch + verify, then the file sink ----------------------------------------------

    def fetch(self, due: list[Target], progress: Progress | None) -> None:
        from ocsptool.pacing import HostLimiter
        from ocsptool.retrieval import retrieve
        from ocsptool.sinks.file import FileSink

        certs = self.state.certs
        held = {t.key: certs[t.key].get("staple") for t in due}
        remembered = {t.key: certs[t.key].get("responder") for t in due}
        files = FileSink(self.settings.jobs)
        staples: dict[str, Retrieved] = {}

        def write(result: Retrieved) -> None:
            """Each staple goes to the file sink as it arrives: writes overlap fetches."""
            from ocsptool.sinks import Publication

            target = result.target
            self.report.notes.extend(f"{target.key}: {note}" for note in result.notes)
            if result.staple is None:
                assert result.error is not None
                self._failed(target, result.error, "")  # the error names each URL
                return
            staples[target.key] = result
            item = Publication(
                target.key,
                str(target.cert_path),
                target.staple_path,
                result.staple.der,
                target.issuer_pem,
                serial=target.leaf.serial_number,
            )
            self.published[target.key] = item
            files.submit(item)

        shared = self._store_run()
        try:
            retrieve(
                due,
                held,
                self.session(),
                now=self.now,
                timeouts=self.settings.timeouts,
                max_bytes=self.settings.max_response_bytes,
                jobs=self.settings.jobs,
                progress=progress,
                on_result=write,
                store=shared,
                remembered=remembered,
                limiter=HostLimiter(self.settings.jobs_per_host),
            )
        finally:
            self.close()
            deliveries = files.collect()
            if shared is not None:
                shared.store.close()
                self.report.store_problem = shared.problem
        self._written(deliveries, staples)

    def _store_run(self) -> StoreRun | None:
        """The shared store for this run's fetches (opened now: there is work)."""
        if not self.settings.store:
            return None
        from ocsptool.shared_store import StoreRun, open_store

        return StoreRun(open_store(self.settings.store, timeout=self.settings.timeouts.read))

    def _written(self, deliveries: list[Delivery], results: dict[str, Retrieved]) -> None:
        """Record what the file sink wrote (and fail what it could not)."""
        for delivery in deliveries:
            target = self.targets_by_key[delivery.key]
            if not delivery.done:
                del self.published[delivery.key]
                # A write fault is about our disk, not the responder: don't blame its URL.
                self._failed(target, OcspToolError(delivery.error or "write failed"), "")
                continue
            self.report.fetched += 1
            result = results[delivery.key]
            staple = result.staple
            assert staple is not None
            record = _describe_staple(staple, delivery.inode)
            record.update(result.provenance())
            old = self.state.certs[delivery.key]
            before = old.get("staple") or {}
            if before.get("sha256") != record["sha256"]:
                self.report.changed.append(str(target.staple_path))
            self.state.update(
                delivery.key,
                {
                    "last_attempt": self.now_epoch,
                    "staple": record,
                    "due": _due(target, staple),
                    "failures": 0,
                    "last_error": None,
                    "last_success": self.now_epoch,
                    "pushed": [],
                    # From the store: keep the URL this node's last fetch worked with.
                    "responder": result.responder or old.get("responder"),
                },
            )
            self._outcome(delivery.key, self.state.certs[delivery.key], Action.FETCHED)
            self._warn(target, staple)

    def _warn(self, target: Target, staple: Staple) -> None:
        """Notes (not failures) on a new staple: it outlives the certificate, or is short."""
        from ocsptool.schedule import response_warnings

        for warning in response_warnings(staple, target.leaf):
            self.report.notes.append(f"{target.key}: {warning}")

    def _failed(self, target: Target, error: OcspToolError, where: str) -> None:
        key = target.key
        rec = self.state.certs[key]
        failures = int(rec.get("failures", 0)) + 1
        message = f"{where}{error}"
        staple: StapleRecord = rec.get("staple") or {}
        retry = _retry_due(failures, self.now, error, staple, from_epoch(rec.get("not_after")))
        self.state.update(
            key,
            {
                "last_attempt": self.now_epoch,
                "failures": failures,
                "last_error": message,
                "due": int(retry.timestamp()),
            },
        )
        out = self._outcome(key, self.state.certs[key], Action.FAILED)
        out.error = message
        self.report.problems.append(f"{key}: {message}")

    def on_change(self, command: str | tuple[str, ...]) -> None:
        """Run the on-change hook once with the staple files this run changed."""
        from ocsptool.hooks import run_hook

        result = run_hook(command, sorted(self.report.changed), timeout=self.settings.timeouts.read)
        if result.problem is not None:
            self.report.problems.append(result.problem)

    # -- the consumer sinks --------------------------------------------------------------

    def push(self, sinks: list[Sink]) -> None:
        if not sinks:
            return
        certs = self.state.certs
        # Certificates that may have a staple on disk: fresh ones and those handled.
        stapled = [
            k for k in dict.fromkeys([*self.fresh, *self.outcomes]) if certs[k].get("staple")
        ]
        sinks_of = self.routing.sinks_of
        for sink in sinks:
            pending = [
                k
                for k in stapled
                if sink.name not in certs[k].get("pushed", []) and sink.name in sinks_of(k)
            ]
            if pending:
                self._publish_to(sink, pending)

    def _publish_to(self, sink: Sink, keys: list[str]) -> None:
        items = []
        for key in keys:
            item = self.published.get(key)
            if item is None:
                try:
                    item = self._on_disk(key)
                except (OSError, OcspToolError) as e:
                    self._push_failed(key, sink.name, f"cannot read the staple to push it: {e}")
                    continue
            name = self.routing.name_for(key, sink.name)
            items.append(item if name == item.cert_path else replace(item, name=name))
        if not items:
            return
        try:
            deliveries = sink.publish(items)
        except OcspToolError as e:
            self.report.problems.append(str(e))
            for item in items:
                self.state.update(item.key, {"push_error": str(e)})
                self.push_facts.push_errors.append((item.key, str(e)))
            return
        for delivery in deliveries:
            self._delivered(sink.name, delivery)

    def _delivered(self, name: str, delivery: Delivery) -> None:
        """Record one consumer's Delivery: only a published staple counts as pushed."""
        from ocsptool.sinks import DeliveryState

        key = delivery.key
        if not delivery.done:
            self._push_failed(key, name, delivery.error or "push failed")
            return
        rec = self.state.certs[key]
        # Done (never asked again for this staple): published, stapled by HAProxy
        # itself, or not served by this consumer at all.
        fields: Record = {"pushed": [*rec.get("pushed", []), name], "push_error": None}
        before = rec.get("self_stapled")
        others = [a for a in before if a != name] if before else []
        facts = self.push_facts
        if delivery.state is DeliveryState.PUBLISHED:
            facts.pushed.append((key, name))
        elif delivery.state is DeliveryState.SELF_STAPLED:
            others.append(name)
        else:  # said once per staple: the next runs find it done
            facts.not_loaded.append((key, name))
            self.report.notes.append(f"{key}: not pushed: HAProxy {name} {delivery.error}")
        if others or before:
            fields["self_stapled"] = others
        self.state.update(key, fields)
        facts.self_stapled[key] = others

    def _on_disk(self, key: str) -> Publication:
        """A fresh staple for a consumer that lacks it: its file, and the issuer if needed."""
        from ocsptool.sinks import Publication

        target = self.targets_by_key.get(key)
        staple_path = target.staple_path if target else self.routing.staple_path(key)
        der = read_file(staple_path)
        issuer_pem = None
        rec = self.state.certs[key]
        serial = rec.get("serial")
        if rec.get("issuer_file"):
            if target is None:
                from ocsptool.certs import parse_bundle

                issuer_pem = parse_bundle(Path(key)).issuer_pem()
            else:
                issuer_pem = target.issuer_pem
        return Publication(
            key, key, staple_path, der, issuer_pem, serial=int(serial, 16) if serial else None
        )

    def _push_failed(self, key: str, name: str, why: str) -> None:
        self.state.update(key, {"push_error": f"{name}: {why}"})
        self.push_facts.push_errors.append((key, f"{name}: {why}"))
        self.report.problems.append(f"{key}: HAProxy {name}: {why}")

    # -- record --------------------------------------------------------------------------

    def prune(self, seen: set[str]) -> None:
        """Forget certificates whose files are gone."""
        for key in [k for k in self.state.certs if k not in seen]:
            if not os.path.lexists(key):
                self.state.drop(key)

    def finish(self) -> None:
        certs = self.state.certs
        handled = [k for k in self.outcomes if _staple_status(certs[k]) == "revoked"]
        for key in dict.fromkeys([*self.revoked, *handled]):
            from ocsptool.status import recorded  # only when something is revoked

            view = recorded(key, certs[key])
            since = view.revocation_time
            when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
            reason = view.revocation_reason
            self.report.problems.append(
                f"{key}: REVOKED{when}"
                + (f" ({reason})" if reason else "")
                + "; the staple tells clients so; replace this certificate"
            )
        self.report.build_outcomes = self._all_outcomes
        self.report.problems.sort()  # fetches finish in any order; report in a stable one

    def scanned(self, scans: list[scanning.ScanResult]) -> scanning.ScanResult:
        """The scans as one, with the inode of each staple file this run wrote."""
        merged = scanning.ScanResult()
        for scan in scans:
            merged.problems += scan.problems
            merged.found += scan.found
        if self.published:
            certs = self.state.certs
            merged.found = [
                f._replace(ocsp_inode=(certs[f.path].get("staple") or {}).get("inode"))
                if f.path in self.published
                else f
                for f in merged.found
            ]
        return merged

    def _outcome_of(self, key: str) -> Outcome:
        """The Outcome of ``key``, built now for a fresh certificate."""
        if key not in self.outcomes:
            self._outcome(key, self.state.certs[key], Action.FRESH)
        return self.outcomes[key]

    def _all_outcomes(self) -> list[Outcome]:
        for key in self.fresh:
            self._outcome_of(key)
        self.push_facts.apply(self.outcomes)
        return sorted(self.outcomes.values(), key=lambda o: o.path)

    def _fail_cert(self, key: str, message: str, rec: Record) -> None:
        out = self._outcome(key, rec, Action.SKIPPED)
        out.error = message
        self.report.problems.append(f"{key}: {message}")

    def _outcome(self, key: str, rec: Record, action: Action) -> Outcome:
        from ocsptool.status import recorded

        out = Outcome.of(recorded(key, rec), action, rec)
        self.outcomes[key] = out
        return out


@dataclass
class _PushFacts:
    """What the consumer sinks did, kept as plain (key, value) pairs in the order it
    happened; ``apply`` puts them on the Outcomes (once: then they are cleared)."""

    pushed: list[tuple[str, str]] = field(default_factory=list)
    not_loaded: list[tuple[str, str]] = field(default_factory=list)
    push_errors: list[tuple[str, str]] = field(default_factory=list)
    #: The key's self-stapling sinks after its last delivery.
    self_stapled: dict[str, list[str]] = field(default_factory=dict)

    def apply(self, outcomes: Mapping[str, Outcome]) -> None:
        for key, name in self.pushed:
            outcomes[key].pushed.append(name)
        for key, name in self.not_loaded:
            outcomes[key].not_loaded.append(name)
        for key, error in self.push_errors:
            outcomes[key].push_errors.append(error)
        for key, names in self.self_stapled.items():
            outcomes[key].self_stapled = list(names)
        self.pushed, self.not_loaded, self.push_errors, self.self_stapled = [], [], [], {}


def _staple_status(rec: Record) -> str | None:
    staple = rec.get("staple")
    return staple.get("status") if staple else None


def cache_valid(rec: Record, f: Found) -> bool:
    return rec["stat"] == f.stat and rec.get("issuer_stat") == f.issuer_stat


def _describe_target(target: Target, f: Found) -> Record:
    from cryptography.hazmat.primitives import hashes

    from ocsptool.certs import describe_name
    from ocsptool.target import has_crl

    bundle = target.bundle
    leaf = target.leaf
    return {
        "stat": f.stat,
        "issuer_stat": f.issuer_stat,
        "fingerprint": leaf.fingerprint(hashes.SHA256()).hex(),
        "name": bundle.name,
        "issuer": describe_name(leaf.issuer),
        "issuer_file": str(target.issuer_file) if target.issuer_file else None,
        "url": target.ocsp_url,
        "certid": target.certid,
        "serial": f"{leaf.serial_number:x}",
        "not_before": int(leaf.not_valid_before_utc.timestamp()),
        "not_after": int(leaf.not_valid_after_utc.timestamp()),
        "must_staple": bundle.must_staple,
        "crl": has_crl(leaf),
        "staple": None,
        "due": 0,
        "failures": 0,
        "last_error": None,
        "pushed": [],
    }


def _describe_staple(staple: Staple, inode: int | None) -> StapleRecord:
    import hashlib

    return {
        "status": staple.status,
        "this_update": int(staple.this_update.timestamp()),
        "next_update": int(staple.next_update.timestamp()),
        "produced_at": to_epoch(staple.produced_at),
        "signer": staple.signer,
        "revocation_time": to_epoch(staple.revocation_time),
        "revocation_reason": staple.revocation_reason,
        "sha256": hashlib.sha256(staple.der).hexdigest(),
        "inode": inode,
    }


def _due(target: Target, staple: Staple) -> int:
    from ocsptool.schedule import next_due

    not_after = target.leaf.not_valid_after_utc
    return int(
        next_due(
            staple.this_update, staple.next_update, target.key, not_after=not_after
        ).timestamp()
    )


def _retry_due(
    failures: int,
    now: dt.datetime,
    error: OcspToolError,
    staple: StapleRecord,
    not_after: dt.datetime | None,
) -> dt.datetime:
    from ocsptool.schedule import retry_due

    return retry_due(
        failures,
        now,
        retry_after=error.retry_after if isinstance(error, FetchError) else None,
        staple_this_update=from_epoch(staple.get("this_update")),
        staple_next_update=from_epoch(staple.get("next_update")),
        not_after=not_after,
    )
