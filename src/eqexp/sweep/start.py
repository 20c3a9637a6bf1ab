"""The start of a sweep, in the parent before any job runs: a sweep directory of its own, every
job composed and validated once (beside the local workers, when the sweep has them), the plan,
each data cache built once, the MLflow parent run and `sweep.json`. Returns the `Sweep`."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from eqexp.report import figures
from eqexp.sweep import runs
from eqexp.sweep.finish import Sweep, register
from eqexp.sweep.plan import Plan, PlannedJob, compose_job, estimated_cost, job_key, job_labels, share_bootstraps, share_key
from eqexp.sweep.records import PLAN_FILE, STATUS_DIR, JobRecord, SweepContext, write_json
from eqexp.sweep.threads import cores, launcher_workers, set_thread_env, threads_per_worker, worker_env
from eqexp.sweep.workers import Pickled, Pool


def claim_sweep_dir(cfg: DictConfig) -> Path:
    """A directory that no other sweep shares: the default name has microseconds, and if it exists
    all the same this sweep moves to `<name>-<pid>` (in Hydra's own overrides, which every job
    follows). One given explicitly (`hydra.sweep.dir=...`) may be reused: its old status records go."""
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    if any(str(o).startswith("hydra.sweep.dir=") for o in cfg.hydra.overrides.hydra):
        sweep_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(sweep_dir / STATUS_DIR, ignore_errors=True)
        return sweep_dir.resolve()
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        sweep_dir.mkdir()
    except FileExistsError:
        sweep_dir = sweep_dir.with_name(f"{sweep_dir.name}-{os.getpid()}")
        sweep_dir.mkdir()
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.sweep.dir = str(sweep_dir)
            cfg.hydra.overrides.hydra.append(f"hydra.sweep.dir={sweep_dir}")
    return sweep_dir.resolve()


def _compose_in_worker(hydra: bytes, overrides: list[str]) -> tuple:
    """In a worker: one job composed with Hydra's state, loader and config as the parent had them."""
    import cloudpickle
    from hydra.core.singleton import Singleton

    state, loader, cfg = cloudpickle.loads(hydra)
    Singleton.set_state(state)
    return compose_job(loader, cfg, overrides)


def compose_all(loader: Any, cfg: DictConfig, overrides: list[list[str]], pool: Pool | None, done: dict[int, tuple]) -> list[tuple]:
    """Every job composed (`done`: those composed already), here or by the pool's workers."""
    if pool is None:
        return [done[i] if i in done else compose_job(loader, cfg, o) for i, o in enumerate(overrides)]
    import cloudpickle
    from hydra.core.singleton import Singleton

    hydra = cloudpickle.dumps((Singleton.get_state(), loader, cfg))
    futures: dict[int, Pickled] = {i: pool.submit(_compose_in_worker, hydra, list(o)) for i, o in enumerate(overrides) if i not in done}
    try:
        return [done[i] if i in done else futures[i].result() for i in range(len(overrides))]
    except BaseException:  # a job that cannot be composed: the workers stop composing the others
        for future in futures.values():
            future.cancel()
        raise


def plan_jobs(overrides: list[list[str]], labels: list[str], composed: list[tuple], share: bool) -> tuple[Plan, list[JobRecord], dict]:
    """The plan, each job's record, and the data configs to build once (`share`: mediation
    jobs on one bootstrap share it, worth it only when the sweep has more jobs than workers)."""
    from eqexp.data import load as data_load

    plan, records, data, fingerprints = Plan(), [], {}, {}
    for num, (job_overrides, label, (config, spec, reason)) in enumerate(zip(overrides, labels, composed)):
        job = PlannedJob(num, list(job_overrides), label, config, spec, reason)
        record = JobRecord(num=num, label=label, overrides=list(job_overrides), reason=reason)
        if spec is not None:
            try:
                job.cost, record.analysis, record.treatment = estimated_cost(spec), spec.analysis, spec.model.treatment
                data_key = json.dumps(dataclasses.asdict(spec.data), sort_keys=True, default=str)
                data.setdefault(data_key, (spec.data, data_load.fingerprint(spec.data)))
                record.fingerprint = fingerprints[num] = data[data_key][1]
                if spec.multiverse.draws:  # many small jobs on few panels: chained (a study's few large jobs balance better alone)
                    job.share = share_key(spec, record.fingerprint)
                record.job_key, record.force = job_key(spec, record.fingerprint), spec.force
            except Exception as err:  # recorded: the job itself will fail with the same message
                job.reason = record.reason = f"{type(err).__name__}: {err}"
        plan.jobs.append(job)
        records.append(record)
    if share:
        share_bootstraps(plan.jobs, fingerprints)
    return plan, records, {k: v[0] for k, v in data.items()}


def _cached(spec: Any) -> bool:
    from eqexp.data import load as data_load

    return (Path(spec.cache_dir).resolve() / data_load.fingerprint(spec) / "panel.parquet").exists()


def _build_data(data_specs: list[Any]) -> None:
    """Build each data cache once, here, so that workers never race to build it (a worker reads
    a panel at its first job on it, unless it inherited it)."""
    from eqexp.data import load as data_load

    for spec in (s for s in data_specs if not _cached(s)):
        try:
            start = time.perf_counter()
            data_load.load(spec)
            print(f"[eqexp] data '{spec.name}' built in {time.perf_counter() - start:.1f} s", flush=True)
        except Exception as err:  # the jobs that need it will fail and say why
            print(f"[eqexp] could not build data '{spec.name}': {err}", flush=True)


def _start_pool(workers: int, threads: int, loader: Any, cfg: DictConfig, first: list[str] | None, composed: dict[int, tuple]) -> Pool:
    """The local workers, forked with the first job's panel (when cached), whose pages they then
    share instead of each reading a copy; this process gives its own back."""
    from eqexp.cache import PROCESS

    if first is not None:
        composed[0] = compose_job(loader, cfg, first)
        if composed[0][1] is not None and _cached(composed[0][1].data):
            PROCESS.load(composed[0][1].data)
    pool = Pool(workers, worker_env(threads))
    PROCESS.reset()
    return pool


def start_sweep(cfg: DictConfig, loader: Any, overrides: list[list[str]], local: bool) -> Sweep:
    """Everything the parent does before the first job runs; `local`: eqexp's launcher, whose
    workers start now and compose jobs and read data while this process plans."""
    from eqexp import tracking

    start = time.perf_counter()
    root = Path(str(OmegaConf.select(cfg, "hydra.runtime.cwd", default=os.getcwd())))
    labels = job_labels(overrides)
    workers = launcher_workers(cfg, len(overrides))
    threads = threads_per_worker(workers) if workers else None
    sweep_dir = claim_sweep_dir(cfg)  # before composing: every job's config carries the directory
    multiverse = OmegaConf.select(cfg, "multiverse", default=None)
    ctx = SweepContext(sweep_dir=str(sweep_dir), root=str(root), labels=dict(enumerate(labels)), threads=threads, workers=workers,
                       n_planned=len(overrides), multiverse=OmegaConf.to_container(multiverse, resolve=True) if multiverse is not None else None)
    tspec = runs.tracking_spec(cfg)
    task_overrides = list(OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False))
    if not tspec.enabled:
        tracking.discard_preloaded()
    figures.discard_preloaded()  # a sweep set by its config (hydra.mode): each worker draws its own jobs' figures
    parent = runs.ParentRun(tspec, root, sweep_dir, task_overrides, ctx) if tspec.enabled else None  # MLflow loads meanwhile
    pool, composed = None, {}
    try:  # a job that cannot be composed (a misspelt group) stops the sweep here, its parent run FAILED
        if local and workers:
            pool = _start_pool(workers, threads, loader, cfg, overrides[0] if overrides else None, composed)
        plan, records, data = plan_jobs(overrides, labels, compose_all(loader, cfg, overrides, pool, composed),
                                        share=bool(workers) and len(overrides) > workers)
    except BaseException:
        if pool is not None:
            pool.kill()
        if parent is not None:
            parent.fail()
        raise
    if parent is not None:
        ctx.tracking_uri = tracking.resolve_uri(tspec, root)
        ctx.experiment, ctx.artifact_root = tspec.experiment, tspec.artifact_root
        try:
            ctx.parent_run_id = parent.run_id()
        except Exception as err:
            parent.close()
            raise runs.SweepError(tracking.store_error(ctx.tracking_uri, err)) from err
        ctx.job_keys = {r.num: r.job_key for r in records if r.job_key}
        ctx.earlier = parent.call(runs.earlier_runs, parent.uri, tspec.experiment, records)
    _print_plan(ctx, records, time.perf_counter() - start)
    _build_data(list(data.values()))  # after the store's check: a long build comes after its error
    if threads and not pool:  # after the build, which may use every core; before any worker starts
        set_thread_env(threads)
    write_json(sweep_dir / PLAN_FILE, {"context": dataclasses.asdict(ctx), "task_overrides": task_overrides,
                                        "jobs": [dataclasses.asdict(r) for r in records], "created": time.time()})
    return register(Sweep(ctx, plan, pool, runs.JobLogger(ctx, root, parent) if parent is not None else None))


def _print_plan(ctx: SweepContext, records: list[JobRecord], seconds: float) -> None:
    print(f"[eqexp] sweep of {ctx.n_planned} jobs into {ctx.sweep_dir} (planned and validated in {seconds:.1f} s)", flush=True)
    if ctx.workers:
        print(f"[eqexp] {ctx.workers} local workers × {ctx.threads} thread(s) each on {cores()} cores", flush=True)
    for record in records:
        note = f"  (will fail: {record.reason})" if record.reason else ""
        if ctx.earlier and ctx.earlier.get(record.num):
            note = f"  (skip: finished in run {ctx.earlier[record.num]})"
        print(f"[eqexp]   #{record.num} {record.label}{note}", flush=True)
