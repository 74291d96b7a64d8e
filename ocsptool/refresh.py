"""One refresh run: the orchestrator. Each stage hands plain values to the next:

    inventory -> triage (pure) -> targets -> decide (pure) -> fetch + verify
              -> staple files -> consumers -> state

- ``ocsptool.sources.discover``: the ``Inventory`` (every command builds it the same way).
- ``ocsptool.plan``: ``triage`` and ``decide``, pure: fresh, due, waiting, unusable.
- ``ocsptool.target.prepare``: a certificate parsed, its issuer fetched if the bundle
  lacks it, the URLs to ask; ``ocsptool.state.events`` records it.
- ``ocsptool.retrieval``: fetch + verify, one ``Retrieved`` per due target, each written
  to its home as it arrives (``ocsptool.sinks.Home``: the staple file, or a TLS Secret's
  data key), by the home's writer; the staple held there is what the run adopts.
- ``ocsptool.sinks.delivery``: each consumer (a server) gets the staples it lacks.
- ``ocsptool.state``: the lock, the records (``State`` tracks what changed), the last run.
- Then the on-change hook (``ocsptool.hooks``), once, if a staple file changed.

With ``Settings.store`` (a fleet's shared store, ``ocsptool.fleet``) the fetch of
each due target goes through ``StoreRun.obtain``: the store is opened only when there is
something due, once per run, and its failure is ``RunReport.store_problem`` (exit 69).

``run_refresh`` takes ``now`` and the HTTP session as parameters and returns a plain
``RunReport``; it prints nothing. The fast path (nothing due) only stats files and reads
the state: cryptography and requests are imported only when there is work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocsptool.errors import CertificateError, OcspToolError
from ocsptool.files import remove_leftovers
from ocsptool.freshness import cert_expired
from ocsptool.gcpause import paused
from ocsptool.inventory import Inventory, Part
from ocsptool.outcome import Outcome, RunReport
from ocsptool.plan import Action, Plan, all_fresh, decide, triage
from ocsptool.scan import Found
from ocsptool.state import Record, State, StateFile, events, state_file
from ocsptool.times import from_epoch

if TYPE_CHECKING:
    import requests

    from ocsptool.fleet.run import StoreRun
    from ocsptool.ocsp import Staple
    from ocsptool.retrieval import Retrieved
    from ocsptool.settings import Settings
    from ocsptool.sinks import Delivery, Home, HomeWriter, Publication
    from ocsptool.sinks.delivery import Delivered
    from ocsptool.target import Asking, Target

Progress = Callable[[int, int], None]


def run_refresh(
    settings: Settings,
    inventory: Inventory | None = None,
    *,
    now: dt.datetime,
    session_factory: Callable[[], requests.Session] | None = None,
    progress: Progress | None = None,
    force: Sequence[str] = (),
) -> RunReport:
    """Refresh what is due in ``inventory`` (default: ``inventory_of(settings)``) and
    every key in ``force``."""
    if inventory is None:
        from ocsptool.sources import inventory_of

        inventory = inventory_of(settings)
    if settings.store:  # a bad --store is a usage error on every run, not only a busy one
        from ocsptool.fleet import check_store_url

        check_store_url(settings.store)
    kept: StateFile = state_file(settings.state_path)
    forced = frozenset(force)
    with kept.locked():
        settled = _all_fresh(kept, inventory, now, forced)
        if settled is not None:  # the no-op run: nothing to do, and the records not loaded
            report = _fresh_report(settings, kept, inventory, settled, now)
            report.notes[:0] = inventory.warnings
            kept.record_run(int(now.timestamp()), report.ok)
            return report
        with paused():
            state = kept.load(now)
        run = _Run(settings, inventory, state, now, session_factory=session_factory)
        report = run.report
        try:
            remove_leftovers(inventory.leftovers)
            report.problems += [f"{path}: {why}" for path, why in inventory.problems]
            plan = Plan()
            for part in inventory.parts:
                with paused():
                    settled = triage(part.found, state.certs, now, forced)
                plan.merge(settled)
                plan.merge(decide(run.targets(part, settled.parse), state.certs, now, forced))
            run.settle(plan)
            if plan.due:
                run.fetch(plan.due, progress)
                report.notes += inventory.unpushed_notes(run.published)
        finally:
            run.close()
        run.deliver()
        run.prune({f.path for f in inventory.found})
        run.finish()
        report.inventory, report.load_state = inventory, lambda: state
        kept.save(state)
        if settings.on_change and report.changed:
            run.on_change(settings.on_change)
        kept.record_run(run.now_epoch, report.ok)
        return report


def _all_fresh(
    kept: StateFile, inventory: Inventory, now: dt.datetime, force: frozenset[str]
) -> Plan | None:
    """Every certificate plainly fresh (or without OCSP URL), by the store's fresh index;
    else None."""
    if inventory.problems or inventory.leftovers:
        return None
    index = kept.index()
    if index is None:
        return None
    try:
        routes = inventory.routes
        sinks = {k: r.sinks for k, r in routes.items()} if routes else None
        return all_fresh(inventory.found, index, now, force, inventory.inputs.sockets, routed=sinks)
    except (TypeError, ValueError, IndexError, KeyError):  # a damaged index: load the records
        return None


def _fresh_report(
    settings: Settings, kept: StateFile, inventory: Inventory, plan: Plan, now: dt.datetime
) -> RunReport:
    """The report of a run that found everything fresh; the outcomes and the records
    (for --metrics or -v) are read from the store only when asked for."""
    report = RunReport(inventory=inventory)

    def state() -> State:
        return kept.load(now, read_only=True)

    def outcomes() -> list[Outcome]:
        run = _Run(settings, inventory, report.state, now)
        run.settle(plan)
        return run.all_outcomes()

    report.build_outcomes = outcomes
    report.load_state = state
    return report


class _Run:
    """What one run knows between stages: the records (``state``), the targets parsed,
    the staples fetched, and what happened to each certificate. Each stage method takes
    the previous stage's values and hands the work to the stage's own module."""

    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        state: State,
        now: dt.datetime,
        *,
        session_factory: Callable[[], requests.Session] | None = None,
    ):
        self.settings = settings
        self.inventory = inventory
        self.session_factory = session_factory
        self._session: requests.Session | None = None
        self.state = state
        self.report = RunReport(notes=[*inventory.warnings, *state.notes])
        self.now = now
        self.now_epoch = int(now.timestamp())
        self.outcomes: dict[str, Outcome] = {}
        #: Certificates with a fresh staple: their Outcome is built only if asked for.
        self.fresh: list[str] = []
        #: Fresh certificates whose staple says revoked (reported on every run).
        self.revoked: list[str] = []
        self.targets_by_key: dict[str, Target] = {}
        #: Where the staple of each target lives (its part's home).
        self.homes: dict[str, Home] = {}
        #: The staples this run fetched and wrote, ready for the consumers.
        self.published: dict[str, Publication] = {}
        #: What the consumers did: put on the Outcomes when they are built.
        self.delivered: Delivered | None = None

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

    def asking(self) -> Asking:
        from ocsptool.target import Asking

        s = self.settings
        return Asking(
            self.session, self.now, s.timeouts, s.max_response_bytes, s.responder,
            s.responder_overrides,
        )  # fmt: skip

    # -- targets -------------------------------------------------------------------------

    def targets(self, part: Part, found: list[Found]) -> list[Target]:
        """Parse what triage could not settle; record it; adopt the staple its home holds."""
        if not found:
            return []
        from ocsptool.target import prepare

        inventory, asking = self.inventory, self.asking()
        targets = []
        routes = inventory.routes
        for scanned in found:
            route = routes.get(scanned.path)
            issuer = Path(route.issuer_path) if route and route.issuer_path else None
            try:
                prepared = prepare(lambda f: inventory.target(part, f), scanned, asking, issuer)
            except Exception as e:  # one certificate never stops the others, not even a bug
                from ocsptool.retrieval import unexpected

                # A caIssuers fetch fails with a FetchError, a write with a WriteError.
                error = e if isinstance(e, OcspToolError) else unexpected(e)
                rec = events.unusable(self.state, scanned, error, self.now)
                self._fail_cert(scanned.path, str(error), rec)
                continue
            target, f = prepared.target, prepared.found
            if prepared.note:
                self.report.notes.append(prepared.note)
            rec = events.parsed(self.state, target, f)
            self.targets_by_key[target.key] = target
            self.homes[target.key] = part.home
            staple = rec.get("staple")
            if (
                target.ocsp_urls
                and not cert_expired(target.leaf.not_valid_after_utc, self.now)
                and (staple is None or staple.get("inode") != f.ocsp_inode)
            ):
                held = self._held_staple(target, f, part.home)
                events.adopted(self.state, target, held, f.ocsp_inode)
            targets.append(target)
        return targets

    def _held_staple(self, target: Target, f: Found, home: Home) -> Staple | None:
        """The staple its home holds, when it still verifies (else a new one is fetched)."""
        if f.ocsp_inode is None:
            return None
        from ocsptool.ocsp import verify

        try:
            der = home.read(target.key, self.inventory.route(target.key))
            return None if der is None else verify(der, target.bundle, self.now)
        except Exception:  # whatever is wrong with the staple held, fetch a new one
            return None

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

    # -- fetch + verify, then each staple to its home -----------------------------------

    def fetch(self, due: list[Target], progress: Progress | None) -> None:
        from ocsptool.pacing import HostLimiter
        from ocsptool.retrieval import retrieve

        certs = self.state.certs
        held = {t.key: certs[t.key].get("staple") for t in due}
        remembered = {t.key: certs[t.key].get("responder") for t in due}
        writers: dict[Home, HomeWriter] = {}
        staples: dict[str, Retrieved] = {}

        def write(result: Retrieved) -> None:
            """Each staple goes to its home as it arrives: writes overlap fetches."""
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
            home = self.homes[target.key]
            if home not in writers:
                writers[home] = home.writer(self.settings.jobs, self.now)
            writers[home].submit(item)

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
            deliveries = [d for writer in writers.values() for d in writer.collect()]
            if shared is not None:
                shared.store.close()
                self.report.store_problem = shared.problem
        self._written(deliveries, staples)

    def _store_run(self) -> StoreRun | None:
        """The shared store for this run's fetches (opened now: there is work)."""
        if not self.settings.store:
            return None
        from ocsptool.fleet import open_store
        from ocsptool.fleet.run import StoreRun

        return StoreRun(open_store(self.settings.store, timeout=self.settings.timeouts.read))

    def _written(self, deliveries: list[Delivery], results: dict[str, Retrieved]) -> None:
        """Record what the homes hold now (and fail what they could not write)."""
        from ocsptool.sinks import DeliveryState

        for delivery in deliveries:
            target = self.targets_by_key[delivery.key]
            if delivery.state is DeliveryState.NOT_SERVED:  # the home no longer wants it
                del self.published[delivery.key]
                message = f"not written: {delivery.error}"
                self.report.notes.append(f"{delivery.key}: {message}")
                out = self._outcome(delivery.key, self.state.certs[delivery.key], Action.SKIPPED)
                out.error = message
                continue
            if not delivery.done:
                del self.published[delivery.key]
                # A write fault is about our disk, not the responder: don't blame its URL.
                self._failed(target, OcspToolError(delivery.error or "write failed"), "")
                continue
            self.report.fetched += 1
            result = results[delivery.key]
            staple = result.staple
            assert staple is not None
            record = events.describe_staple(staple, delivery.inode)
            record.update(result.provenance())
            due = events.due_of(target, staple)
            changed = events.fetched(
                self.state, target, record, due=due, now=self.now_epoch, responder=result.responder
            )
            if changed:
                home = self.homes[target.key]
                self.report.changed.append(home.where(target.key, self.inventory.route(target.key)))
            self._outcome(delivery.key, self.state.certs[delivery.key], Action.FETCHED)
            self._warn(target, staple)

    def _warn(self, target: Target, staple: Staple) -> None:
        """Notes (not failures) on a new staple: it outlives the certificate, or is short."""
        from ocsptool.schedule import response_warnings

        for warning in response_warnings(staple, target.leaf):
            self.report.notes.append(f"{target.key}: {warning}")

    def _failed(self, target: Target, error: OcspToolError, where: str) -> None:
        key = target.key
        message = f"{where}{error}"
        events.failed(self.state, key, message, error, self.now)
        out = self._outcome(key, self.state.certs[key], Action.FAILED)
        out.error = message
        self.report.problems.append(f"{key}: {message}")

    def on_change(self, command: str | tuple[str, ...]) -> None:
        """Run the on-change hook once with the staple files this run changed."""
        from ocsptool.hooks import run_hook

        result = run_hook(command, sorted(self.report.changed), timeout=self.settings.timeouts.read)
        self.report.notes.extend(result.notes)
        if result.problem is not None:
            self.report.problems.append(result.problem)

    # -- the consumers -------------------------------------------------------------------

    def deliver(self) -> None:
        """Each consumer gets the staples it lacks (``ocsptool.sinks.delivery``)."""
        inventory = self.inventory
        if not inventory.sockets:
            return
        from ocsptool.sinks import SinkOptions, sinks_for
        from ocsptool.sinks.delivery import deliver

        certs = self.state.certs
        # Certificates that may have a staple on disk: fresh ones and those handled.
        stapled = [
            k for k in dict.fromkeys([*self.fresh, *self.outcomes]) if certs[k].get("staple")
        ]
        options = SinkOptions(
            timeout=self.settings.haproxy_timeout,
            now=self.now,
            update_certs=self.settings.update_certs,
            nginx_reload=self.settings.nginx_reload,
        )
        done = deliver(
            sinks_for(inventory.sockets, options),
            stapled,
            self.state,
            inventory,
            published=self.published,
            on_disk=self._on_disk,
        )
        self.delivered = done
        self.report.notes += done.notes
        self.report.problems += done.problems

    def _on_disk(self, key: str) -> Publication:
        """A fresh staple for a consumer that lacks it: read from its home, with the issuer
        if needed."""
        from ocsptool.sinks import Publication

        target = self.targets_by_key.get(key)
        home = self.homes.get(key) or self.inventory.home(key)
        der = home.read(key, self.inventory.route(key))
        if der is None:
            raise CertificateError(home.missing)
        staple_path = target.staple_path if target else self.inventory.staple_path(key)
        issuer_pem = None
        rec = self.state.certs[key]
        serial = rec.get("serial")
        if rec.get("issuer_file"):
            if target is None:
                from ocsptool.certs import parse_bundle

                issuer_pem = parse_bundle(Path(key), *self.inventory.issuers(key)).issuer_pem()
            else:
                issuer_pem = target.issuer_pem
        return Publication(
            key, key, staple_path, der, issuer_pem, serial=int(serial, 16) if serial else None
        )

    # -- record --------------------------------------------------------------------------

    def prune(self, seen: set[str]) -> None:
        """Forget certificates that are gone (``Inventory.gone``)."""
        for key in [k for k in self.state.certs if k not in seen]:
            if self.inventory.gone(key):
                self.state.drop(key)

    def finish(self) -> None:
        certs = self.state.certs
        handled = [k for k in self.outcomes if events.staple_status(certs[k]) == "revoked"]
        for key in dict.fromkeys([*self.revoked, *handled]):
            self.report.problems.append(revoked_line(key, certs[key]))
        self.report.build_outcomes = self.all_outcomes
        self.report.problems.sort()  # fetches finish in any order; report in a stable one
        if self.published:  # the inventory as the run left it: each new staple's inode
            for part in self.inventory.parts:
                part.found[:] = [
                    f._replace(ocsp_inode=(certs[f.path].get("staple") or {}).get("inode"))
                    if f.path in self.published
                    else f
                    for f in part.found
                ]

    def _outcome_of(self, key: str) -> Outcome:
        """The Outcome of ``key``, built now for a fresh certificate."""
        if key not in self.outcomes:
            self._outcome(key, self.state.certs[key], Action.FRESH)
        return self.outcomes[key]

    def all_outcomes(self) -> list[Outcome]:
        for key in self.fresh:
            self._outcome_of(key)
        if self.delivered is not None:
            _apply(self.delivered, self.outcomes)
            self.delivered = None
        return sorted(self.outcomes.values(), key=lambda o: o.path)

    def _fail_cert(self, key: str, message: str, rec: Record) -> None:
        out = self._outcome(key, rec, Action.SKIPPED)
        out.error = message
        self.report.problems.append(f"{key}: {message}")

    def _outcome(self, key: str, rec: Record, action: Action) -> Outcome:
        from ocsptool.view import recorded

        out = Outcome.of(recorded(key, rec), action, rec)
        self.outcomes[key] = out
        return out


def revoked_line(key: str, rec: Record) -> str:
    """The REVOKED line, said on every run while the staple says so."""
    from ocsptool.view import recorded  # only when something is revoked

    view = recorded(key, rec)
    since = view.revocation_time
    when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
    reason = view.revocation_reason
    return (
        f"{key}: REVOKED{when}"
        + (f" ({reason})" if reason else "")
        + "; the staple tells clients so; replace this certificate"
    )


def _apply(done: Delivered, outcomes: dict[str, Outcome]) -> None:
    """What the consumers did, on the Outcomes."""
    for key, name in done.pushed:
        outcomes[key].pushed.append(name)
    for key, name in done.certs_loaded:
        outcomes[key].certificate_loaded.append(name)
    for key, name in done.not_loaded:
        outcomes[key].not_loaded.append(name)
    for key, error in done.push_errors:
        outcomes[key].push_errors.append(error)
    for key, names in done.self_stapled.items():
        outcomes[key].self_stapled = list(names)
