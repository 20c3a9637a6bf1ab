"""The local workers of a sweep: one process pool, started before the jobs are planned.

Hydra's joblib launcher starts its loky workers when the jobs are launched; each worker then
starts a Python, imports everything, composes its job's config again (Hydra's sweeper has
composed it twice already) and reads its data. On a few cores that start-up is a large share
of a sweep. The eqexp launcher (`hydra_plugins.eqexp_sweeps`) uses the pool this module
starts at the very beginning of the sweep, forked from the parent once it has imported what
a job needs (so no worker imports anything again), and the first job's panel (so the workers
share its pages): the workers compose the jobs beside the parent and read the sweep's other
data while it plans; each job then runs on the config composed
once (`COMPOSED`), longest first (`COSTS`), so that no worker waits at the end for the
other's long job, and jobs on the same prepared panel one after another in the same worker
(`SHARES`, `chains`), which keeps that panel's work.

A low layer of the sweep package: of the others it imports only `plan`'s name for chains kept whole.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from eqexp.sweep.plan import BOOTSTRAP_CHAIN

# Filled by the planning in the parent (`start._compose_jobs`), read by the launcher.
COMPOSED: dict[tuple[str, ...], Any] = {}  # job overrides -> the job's composed config
SPECS: dict[tuple[str, ...], Any] = {}  # job overrides -> its validated Spec (the job does not load it again)
COSTS: dict[tuple[str, ...], float] = {}  # job overrides -> its estimated cost
SHARES: dict[tuple[str, ...], tuple[str, int]] = {}  # job overrides -> (its prepared panel's key, its models' width)

_POOL: dict[str, Any] = {}  # the sweep's executor, its size and its workers' environment


def pool(n_workers: int, env: dict[str, str]) -> ProcessPoolExecutor:
    """The sweep's pool of `n_workers` processes with `env` set in them (reused while alive).

    Forked: a worker starts with this process's modules (`warm_up` imports a job's here first),
    instead of a new interpreter importing them again. The pool forks all its workers at its
    first task, before this process starts any thread (Python's executor forks them at once).
    """
    executor = _POOL.get("executor")
    if executor is None or _POOL.get("size") != n_workers or _POOL.get("env") != env or not alive(executor):
        if executor is not None:
            kill()
        warm_up()
        # The workers' collector then skips every object they inherit: collecting them would
        # write to the pages the workers share with this process, copying them one by one.
        gc.freeze()
        executor = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("fork"), initializer=start_worker, initargs=(env,))
        _POOL.update(executor=executor, size=n_workers, env=env)
    return executor


def alive(executor: ProcessPoolExecutor) -> bool:
    return not executor._broken and not executor._shutdown_thread


def submit(executor: ProcessPoolExecutor, function: Any, *args: Any) -> Pickled:
    """`function(*args)` in a worker, both ways with cloudpickle as joblib does (Hydra's context
    and configs hold classes of plugins that Hydra imports twice, which the standard pickle refuses)."""
    import cloudpickle

    return Pickled(executor.submit(_call_pickled, cloudpickle.dumps((function, args))))


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


def start_worker(env: dict[str, str]) -> None:
    """In a new worker: its environment and thread caps; SIGTERM ends it (the parent's handler
    records the sweep, which only the parent does)."""
    from eqexp import helper
    from eqexp.sweep.threads import THREADS_ENV, cap_threads

    helper.forget_inherited()  # the parent's MLflow process must see the parent's end, not a worker's
    os.environ.update(env)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    cap_threads(int(env[THREADS_ENV]))  # BLAS was loaded by the parent with its own pool


def kill() -> None:
    """Kill the pool's workers (their jobs end now) and wait until the pool is down."""
    executor = _POOL.get("executor")
    _POOL.clear()
    if executor is None:
        return
    for pid in list(executor._processes or {}):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # gone already
            pass
    executor.shutdown(wait=True, cancel_futures=True)


class Warmup:
    """A new pool forked while the parent plans: the workers compose jobs beside the parent
    (`compose`) with the parent's Hydra state, which they inherit, then read the sweep's data
    (`load`).

    The panels of `shared` (DataSpecs) whose cache exists are read here before the fork: the
    workers inherit them, and their pages stay shared as long as nobody writes to them
    (nothing modifies a panel in place), so two workers hold one copy, not two. This process
    then gives its own back.
    """

    def __init__(self, n_workers: int, env: dict[str, str], loader: Any, cfg: Any, shared: Sequence[Any] = ()):
        from eqexp.data import load as data_load

        self.n_workers = n_workers
        kill()  # a pool forked earlier holds an earlier sweep's state
        _PLANNING.update(loader=loader, cfg=cfg)
        load_data(list(shared))
        self.executor = pool(n_workers, env)
        for _ in range(n_workers):
            submit(self.executor, os.getpid)  # forks the workers now, before this process starts threads
        data_load.release()

    def compose(self, compose_job: Any, overrides: list[str]) -> Pickled:
        """`compose_job(loader, cfg, overrides)` in a worker, on the sweep's loader and config as
        they were when it was forked (nothing of Hydra's travels with the task)."""
        return submit(self.executor, _compose_planned, compose_job, overrides)

    def load(self, data: Sequence[Any]) -> None:
        """Each worker reads the sweep's data (DataSpecs) whose cache exists (never a build)."""
        for _ in range(self.n_workers):
            submit(self.executor, load_data, list(data))


def warm_up() -> None:
    """Here, before the workers are forked: the imports of a job."""
    import hydra.core.utils  # noqa: F401
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401  (backend_agg does not import it: each worker would)

    import eqexp.cli  # noqa: F401  (the runner, the analyses, pandas, numpy, scipy.special)
    import eqexp.report.figures  # noqa: F401
    import eqexp.runner  # noqa: F401


def load_data(data: list) -> int:
    """The panels whose cache exists, kept for the jobs of this process (`eqexp.data.load`)."""
    from eqexp.data import load as data_load

    for spec in data:
        try:
            if (Path(spec.cache_dir).resolve() / data_load.fingerprint(spec) / "panel.parquet").exists():
                data_load.load(spec)
        except Exception:  # the job itself will report it
            pass
    return os.getpid()


_PLANNING: dict[str, Any] = {}  # the sweep's config loader and config, inherited by the workers


def _compose_planned(compose_job: Any, overrides: list[str]) -> Any:
    return compose_job(_PLANNING["loader"], _PLANNING["cfg"], overrides)


def run_composed(idx: int, config: Any, spec: Any, hydra_context: Any, task_function: Any) -> Any:
    """In a worker: Hydra's `run_job` on a config the parent composed (as joblib's `execute_job`,
    minus composing; Hydra's singletons came with the fork), its Spec, validated there, handed
    to the job (`take_spec`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job, setup_globals
    from omegaconf import open_dict

    setup_globals()
    with open_dict(config):
        config.hydra.job.id = f"{config.hydra.job.name}_{idx}"
        config.hydra.job.num = idx
    HydraConfig.instance().set_config(config)
    _NEXT_SPEC[idx] = spec
    try:
        return run_job(hydra_context=hydra_context, config=config, task_function=task_function,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    finally:
        _NEXT_SPEC.pop(idx, None)


_NEXT_SPEC: dict[int, Any] = {}  # in a worker: the Spec of the job it runs now


def take_spec(idx: int) -> Any:
    """In a job of this worker: its Spec as the parent validated it, or None (load it)."""
    return _NEXT_SPEC.pop(idx, None)


class Call:
    """`function(*args)` started in a worker of the sweep's pool if it is alive (the parent
    goes on meanwhile); `result()` waits for it, or runs it here."""

    def __init__(self, function: Any, *args: Any):
        self.function, self.args, self.future = function, args, None
        executor = _POOL.get("executor")
        if executor is not None and alive(executor):
            self.future = submit(executor, function, *args)

    def result(self) -> Any:
        if self.future is not None:
            try:
                return self.future.result()
            except Exception:  # the pool broke meanwhile: do it here
                pass
        return self.function(*self.args)


def chains(job_overrides: Sequence[Sequence[str]], n_workers: int) -> list[list[int]]:
    """The jobs as chains that one worker runs in a row, longest chain first (unknown costs last).

    Jobs of a multiverse on the same prepared panel (`SHARES`: its control sets, vcov choices) form
    a chain, widest model first, so that a worker prepares the panel, absorbs its columns and
    draws its resampling moments once for all of them. A chain is at most 1/(2·workers) of
    the jobs long, so that the workers still share the sweep evenly; mediation jobs that share
    one bootstrap (`BOOTSTRAP_CHAIN` keys) stay whole: each bootstrap sums all of their
    mediators, and those after the first cost a fraction of it."""
    keys = [SHARES.get(tuple(o), (f"job-{i}", 0)) for i, o in enumerate(job_overrides)]
    groups: dict[str, list[int]] = {}
    for i in sorted(range(len(job_overrides)), key=lambda i: -keys[i][1]):
        groups.setdefault(keys[i][0], []).append(i)
    longest = max(1, -(-len(job_overrides) // (2 * max(n_workers, 1))))
    split = [g[j : j + step] for key, g in groups.items()
             for step in [len(g) if key.startswith(BOOTSTRAP_CHAIN) else longest] for j in range(0, len(g), step)]
    return sorted(split, key=lambda chain: -sum(COSTS.get(tuple(job_overrides[i]), 0.0) for i in chain))


def run_chain(items: list[tuple[int, Any, Any]], hydra_context: Any, task_function: Any) -> list[Any]:
    """In a worker: `run_composed` for each (index, config, spec) of a chain, in order."""
    return [run_composed(idx, config, spec, hydra_context, task_function) for idx, config, spec in items]
