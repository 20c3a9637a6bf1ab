"""Threads: local workers × threads per worker ≤ cores, and the caps on the numerical
libraries' pools (environment variables for the workers, threadpoolctl inside a job)."""

from __future__ import annotations

import logging
import os

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

# Environment variables read by the numerical libraries when they start their thread pools.
# They must be set in the parent before joblib spawns its workers (pyfixest's Rust demeaner
# reads RAYON_NUM_THREADS once, BLAS and OpenMP read theirs when loaded).
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "POLARS_MAX_THREADS",
)
THREADS_ENV = "EQEXP_THREADS_PER_JOB"


def cores() -> int:
    from joblib import cpu_count

    return max(1, cpu_count())


def threads_per_worker(n_workers: int, n_cores: int | None = None) -> int:
    """So that workers × threads ≤ cores."""
    return max(1, (n_cores or cores()) // max(1, n_workers))


def set_thread_env(threads: int, environ: dict | None = None) -> dict[str, str]:
    """Cap every numerical library's pool for processes started from now on; a user's own setting wins."""
    env = os.environ if environ is None else environ
    applied = {}
    for var in THREAD_VARS:
        if var not in env:
            env[var] = str(threads)
            applied[var] = str(threads)
    env[THREADS_ENV] = str(threads)
    # pyfixest 0.60's results depend on Python's string hashing in the last digits (~1e-13):
    # one seed for every worker makes a sweep reproducible run after run (run.py pins it too).
    env.setdefault("PYTHONHASHSEED", "0")
    return applied


def worker_env(threads: int) -> dict[str, str]:
    """What a local worker's environment sets: every library's thread cap (a user's own setting wins)."""
    env = {var: os.environ.get(var, str(threads)) for var in THREAD_VARS}
    return {**env, THREADS_ENV: str(threads), "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}


def cap_threads(threads: int | None) -> None:
    """Inside a job: limit the pools already loaded in this process (BLAS, OpenMP)."""
    if not threads:
        return
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(threads))
    except Exception as err:  # never fail a job because a pool could not be limited
        log.debug("threadpoolctl: %s", err)


def launcher_workers(cfg: DictConfig, n_jobs_planned: int | None) -> int | None:
    """Concurrent local workers for the joblib launcher; None for launchers that run elsewhere."""
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "")
    if "joblib" not in target.lower():
        return None
    from joblib import effective_n_jobs

    n_jobs = OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=-1)
    workers = effective_n_jobs(-1 if n_jobs is None else int(n_jobs))
    return min(workers, n_jobs_planned) if n_jobs_planned else workers
