"""Delivering staples to the consumers (the servers), the run's last stage before the store.

Each consumer gets, in one ``publish`` call, every staple it lacks: the record's
``pushed`` list names the consumers that have the current staple (or need none from us).
A staple fetched in this run goes as it was written; an older one is read back from its
file. What each consumer answered is recorded (``ocsptool.state.events``) and kept as plain
facts for the run's report.

Several consumers given for the same certificates (``-s A -s B`` with PATHs): a consumer
that has not loaded a certificate another one serves is quiet; only a certificate that no
consumer asked in this run loads is said, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ocsptool.errors import OcspToolError
from ocsptool.inventory import Inventory
from ocsptool.sinks import Delivery, DeliveryState, Publication, Sink
from ocsptool.state import State, events

#: A Delivery's method when the consumer as a whole could not be used.
_UNREACHABLE = "unreachable"


@dataclass
class Delivered:
    """What the consumers did, as (key, value) pairs in the order it happened."""

    pushed: list[tuple[str, str]] = field(default_factory=list)
    #: Of those, where the renewed certificate itself was loaded too (``--update-certs``).
    certs_loaded: list[tuple[str, str]] = field(default_factory=list)
    not_loaded: list[tuple[str, str]] = field(default_factory=list)
    push_errors: list[tuple[str, str]] = field(default_factory=list)
    #: The key's self-stapling consumers after its last delivery.
    self_stapled: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def deliver(
    sinks: Sequence[Sink],
    keys: Sequence[str],
    state: State,
    inventory: Inventory,
    *,
    published: Mapping[str, Publication],
    on_disk: Callable[[str], Publication],
) -> Delivered:
    """Give each sink the staples of ``keys`` it lacks (``published``: this run's,
    ``on_disk(key)``: an older one, read from its file)."""
    done = Delivered()
    certs = state.certs
    before = {k: list(certs[k].get("pushed", ())) for k in keys}
    asked: dict[str, list[tuple[Sink, Delivery]]] = {}
    for sink in sinks:
        pending = [
            k for k in keys if sink.name not in before[k] and sink.name in inventory.sinks_of(k)
        ]
        if pending:
            results = _publish(
                sink, pending, inventory, published=published, on_disk=on_disk, done=done
            )
            for key, delivery in results:
                asked.setdefault(key, []).append((sink, delivery))
    for key, answers in asked.items():
        for sink, delivery in answers:
            _record(done, state, key, sink, delivery)
        _say_not_loaded(done, key, answers, before[key])
    return done


def _publish(
    sink: Sink,
    keys: list[str],
    inventory: Inventory,
    *,
    published: Mapping[str, Publication],
    on_disk: Callable[[str], Publication],
    done: Delivered,
) -> list[tuple[str, Delivery]]:
    items = []
    for key in keys:
        item = published.get(key)
        if item is None:
            try:
                item = on_disk(key)
            except (OSError, OcspToolError) as e:
                why = f"cannot read the staple to push it: {e}"
                done.push_errors.append((key, f"{sink.name}: {why}"))
                done.problems.append(f"{key}: {sink.label}: {why}")
                continue
        name = inventory.name_for(key, sink.name)
        items.append(item if name == item.cert_path else replace(item, name=name))
    if not items:
        return []
    try:
        deliveries = sink.publish(items)
    except OcspToolError as e:  # the consumer as a whole: one line, each staple retried
        done.problems.append(str(e))
        failed = Delivery("", DeliveryState.FAILED, str(e), method=_UNREACHABLE)
        return [(item.key, replace(failed, key=item.key)) for item in items]
    finally:
        done.notes += getattr(sink, "notes", ())  # said once, about the consumer as a whole
    return [(d.key, d) for d in deliveries]


def _record(done: Delivered, state: State, key: str, sink: Sink, delivery: Delivery) -> None:
    """Record one consumer's Delivery: only a published staple counts as pushed."""
    if not delivery.done:
        why = delivery.error or "push failed"
        whole = delivery.method == _UNREACHABLE  # already one problem for the consumer
        message = why if whole else f"{sink.label}: {why}"
        events.undelivered(state, key, sink.name, message)
        done.push_errors.append((key, message))
        if not whole:
            done.problems.append(f"{key}: {message}")
        return
    itself = delivery.state is DeliveryState.SELF_STAPLED
    done.self_stapled[key] = events.delivered(state, key, sink.name, self_stapled=itself)
    if delivery.state is DeliveryState.PUBLISHED:
        done.pushed.append((key, sink.name))
        if delivery.method == "cert-loaded":
            done.certs_loaded.append((key, sink.name))
    elif delivery.state is DeliveryState.NOT_SERVED:
        done.not_loaded.append((key, sink.name))


def _say_not_loaded(
    done: Delivered, key: str, answers: list[tuple[Sink, Delivery]], before: list[str]
) -> None:
    """One note for a certificate that no consumer asked loads, and none had it before:
    with several consumers, one that lacks a certificate another serves is quiet."""
    if before or not all(d.state is DeliveryState.NOT_SERVED for _, d in answers):
        return
    sinks = [sink for sink, _ in answers]
    why = answers[0][1].error or "has not loaded this certificate"
    labels = [sink.label for sink in sinks]
    if len(labels) == 1:
        done.notes.append(f"{key}: not pushed: {labels[0]} {why}")
    else:  # "none of A, B has not loaded it" would say they all have: each one's reason
        names = f"{', '.join(labels[:-1])} and {labels[-1]}"
        done.notes.append(f"{key}: not pushed: {names} each {why}")
