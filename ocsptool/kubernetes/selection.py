"""Which TLS Secrets a run serves: a ``Selection`` (made only for ``--kubernetes``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ocsptool.kubernetes import DEFAULT_SECRET_KEY


@dataclass(frozen=True)
class Selection:
    """Which TLS Secrets a run serves (``--kubernetes``), and where their staples go."""

    #: The namespaces served; empty: the API configuration's own (the service account's in
    #: a pod, else the kubeconfig context's).
    namespaces: tuple[str, ...] = ()
    #: A label selector (``app=web,tier!=dev``), passed to the API server as is.
    selector: str | None = None
    #: The data key each staple goes under.
    secret_key: str = DEFAULT_SECRET_KEY
    #: ``--kubeconfig``; None: ``$KUBECONFIG``, else the in-cluster service account.
    kubeconfig: Path | None = None
