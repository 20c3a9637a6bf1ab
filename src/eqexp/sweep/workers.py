"""A sweep's local workers: one pool of processes, forked when the sweep starts, once the
parent has imported what a job needs and read the first job's panel (Hydra's joblib launcher
starts loky workers that each import everything and read their data again). Forking is only
an optimisation: every task receives what it needs as arguments, cloudpickled as joblib does."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from eqexp.sweep.threads import THREADS_ENV, cap_threads


class Pool:
    """`n_workers` forked processes with `env` set in them; it knows their pids (to kill them)
    and whether it broke (a worker died), from its own bookkeeping."""

    def __init__(self, n_workers: int, env: dict[str, str]):
        warm_up()
        gc.freeze()  # the workers' collector skips what they inherit: collecting would copy the shared pages
        context = multiprocessing.get_context("fork")
        started = context.SimpleQueue()
        self.size, self.env, self.broken = n_workers, env, False
        self.executor = ProcessPoolExecutor(n_workers, mp_context=context, initializer=_start_worker, initargs=(env, started))
        self.submit(os.getpid)  # the executor forks every worker at its first task, before this process starts threads
        self.pids = [started.get() for _ in range(n_workers)]

    def submit(self, function: Callable[..., Any], *args: Any) -> Pickled:
        """`function(*args)` in a worker, cloudpickled both ways (Hydra's context and configs hold
        classes of plugins that Hydra imports twice, which the standard pickle refuses)."""
        import cloudpickle

        future = self.executor.submit(_call_pickled, cloudpickle.dumps((function, args)))
        future.add_done_callback(self._note_broken)
        return Pickled(future)

    def _note_broken(self, future: Future) -> None:
        if not future.cancelled() and isinstance(future.exception(), BrokenProcessPool):
            self.broken = True

    def alive(self) -> bool:
        return not self.broken and bool(self.pids)

    def kill(self) -> None:
        """Kill the workers (their jobs end now) and wait until the pool is down."""
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # gone already
                pass
        self.pids = []
        self.executor.shutdown(wait=True, cancel_futures=True)


class Pickled:
    """A future whose result comes cloudpickled."""

    def __init__(self, future: Future):
        self.future = future

    def cancel(self) -> bool:
        return self.future.cancel()

    def result(self, timeout: float | None = None) -> Any:
        import cloudpickle

        return cloudpickle.loads(self.future.result(timeout))


def _call_pickled(payload: bytes) -> bytes:
    import cloudpickle

    function, args = cloudpickle.loads(payload)
    return cloudpickle.dumps(function(*args))


def _start_worker(env: dict[str, str], started: Any) -> None:
    """In a new worker: its environment and thread caps; SIGTERM ends it (the parent's handler
    records the sweep, which only the parent does); its pid told to the parent."""
    from eqexp import helper

    helper.forget_inherited()  # the parent's MLflow process must see the parent's end, not a worker's
    os.environ.update(env)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cap_threads(int(env[THREADS_ENV]))  # BLAS was loaded by the parent with its own pool
    started.put(os.getpid())


def warm_up() -> None:
    """Here, before the workers are forked: the imports of a job (matplotlib's figure too: backend_agg does not import it)."""
    import hydra.core.utils  # noqa: F401
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    import eqexp.runner  # noqa: F401  (the analyses, the figures, pandas, numpy, scipy.special)


class Call:
    """`function(*args)` started in a worker of `pool` if it is alive (the caller goes on
    meanwhile); `result()` waits for it, or runs it here."""

    def __init__(self, pool: Pool | None, function: Callable[..., Any], *args: Any):
        self.function, self.args = function, args
        self.future = pool.submit(function, *args) if pool is not None and pool.alive() else None

    def result(self) -> Any:
        if self.future is not None:
            try:
                return self.future.result()
            except Exception:  # the pool broke meanwhile: do it here
                pass
        return self.function(*self.args)
