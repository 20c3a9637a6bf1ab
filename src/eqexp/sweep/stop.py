"""A sweep stopped before its end, in the parent. SIGTERM (`kill`, a scheduler, a container
stop) ends it as Ctrl-C does: the exception reaches `finish.main_with_summary`, which kills the
jobs in flight (`kill_jobs`) and records the sweep, so that MLflow shows the parent run and those
jobs KILLED. What no process could mark (SIGKILL) the next sweep marks (`runs.close_abandoned`)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

from eqexp.sweep.workers import Pool


class Stopped(KeyboardInterrupt):
    """SIGTERM in the parent: it unwinds Hydra and the launchers as Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum  # as a shell reports a process ended by that signal


def _raise(signum: int, frame: Any) -> None:
    raise Stopped(signum)


def _wait(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_DFL)
    print(f"[eqexp] {signal.Signals(signum).name}: the sweep ends once it is recorded (the same signal again ends it now)",
          file=sys.stderr, flush=True)


def _on_sigterm(handler: Any) -> None:
    if threading.current_thread() is threading.main_thread():  # Python sets handlers only there
        signal.signal(signal.SIGTERM, handler)


def stop_on_sigterm() -> None:
    """When the sweep starts: SIGTERM stops it (Ray's driver ends a SIGTERM with `sys.exit`
    instead; the sweep is recorded all the same)."""
    _on_sigterm(_raise)
    # Ray's failure-signal handler would abort the driver 3 s after a SIGTERM, before the sweep is recorded
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")


def recording() -> None:
    """While the sweep is recorded: a first SIGTERM waits for the records, a second ends the process."""
    _on_sigterm(_wait)


def kill_jobs(pools: list[Pool]) -> None:
    """The sweep is over before its end: its workers are killed, so that no job ends after the
    sweep is recorded (those in flight are recorded as never finished, KILLED in MLflow)."""
    recording()
    for pool in pools:
        pool.kill()
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()  # a local instance stops its workers; a cluster cancels this driver's tasks
