"""Threads: local workers × threads per worker ≤ cores, and the caps on the numerical
libraries' pools (environment variables for the workers, threadpoolctl inside a job)."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

# Read by the numerical libraries when they start their pools, so set before a worker starts
# (pyfixest's Rust demeaner reads RAYON_NUM_THREADS once, BLAS and OpenMP theirs when loaded).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS", "POLARS_MAX_THREADS")
THREADS_ENV = "EQEXP_THREADS_PER_JOB"


def cores() -> int:
    from joblib import cpu_count

    return max(1, cpu_count())


def threads_per_worker(n_workers: int, n_cores: int | None = None) -> int:
    """So that workers × threads ≤ cores."""
    return max(1, (n_cores or cores()) // max(1, n_workers))


def worker_env(threads: int, environ: dict | None = None) -> dict[str, str]:
    """A worker's environment: every library's thread cap (a user's own setting wins), and one
    string-hash seed (pyfixest's results depend on it in the last digits, ~1e-13; run.py pins it too)."""
    env = os.environ if environ is None else environ
    return {**{var: env.get(var, str(threads)) for var in THREAD_VARS}, THREADS_ENV: str(threads),
            "PYTHONHASHSEED": env.get("PYTHONHASHSEED", "0")}


def set_thread_env(threads: int, environ: dict | None = None) -> None:
    """`worker_env` for the processes started from now on (another launcher's workers)."""
    env = os.environ if environ is None else environ
    env.update(worker_env(threads, env))


def cap_threads(threads: int | None) -> None:
    """Inside a job: limit the pools already loaded in this process (BLAS, OpenMP)."""
    from threadpoolctl import threadpool_limits

    if threads:
        threadpool_limits(limits=int(threads))


def launcher_workers(cfg: DictConfig, n_jobs_planned: int) -> int | None:
    """Concurrent local workers for a joblib launcher; None for launchers that run elsewhere."""
    from joblib import effective_n_jobs

    if "joblib" not in str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "").lower():
        return None
    n_jobs = OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=-1)
    return min(effective_n_jobs(-1 if n_jobs is None else int(n_jobs)), max(n_jobs_planned, 1))
