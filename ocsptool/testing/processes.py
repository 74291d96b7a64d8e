"""Ending the peer processes the tests start (HAProxy, nginx, Redis, kube-apiserver)."""

from __future__ import annotations

import signal
import subprocess


def stop_process(process: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM, then SIGKILL when ``process`` is still running after ``grace`` seconds.

    A process that has already ended (or None) is left alone.
    """
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)
