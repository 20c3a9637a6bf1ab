"""Benchmark: a 12-job sweep on N workers against the same 12 jobs one after another in one
process, and eqexp's per-job overhead (start-up, config, data load, files, logging, sweep
bookkeeping) against the estimation itself.

    .venv/bin/python benchmarks/bench_sweep.py                          # data=synthetic, 2 workers
    .venv/bin/python benchmarks/bench_sweep.py --data synthetic_small --workers 2

Appends a section to benchmarks/results.md with the machine's core count. Everything it
writes (sweep, MLflow stores, job directories) goes to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ("trim=none,p1,p5", "lags=none,l1", "vcov=firm,robust")  # 12 jobs, 2 models each


def job_overrides() -> list[list[str]]:
    import itertools

    axes = [[f"{o.split('=')[0]}={v}" for v in o.split("=")[1].split(",")] for o in SWEEP]
    return [list(job) for job in itertools.product(*axes)]


def common(data: str, base: Path, store: str) -> list[str]:
    return [f"data={data}", f"data.cache_dir={base / 'cache'}", f"tracking.uri=sqlite:///{base / store}",
            f"tracking.artifact_root={base / (store + '.artifacts')}"]


def startup_seconds() -> float:
    """What a fresh worker pays once: the interpreter and eqexp's imports (pyfixest, MLflow, Hydra)."""
    code = "import eqexp.cli, eqexp.sweep, mlflow.tracking"
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def sequential(data: str, base: Path) -> tuple[float, list[dict]]:
    """The 12 jobs with `runner.run_job` in a loop, in this process, each phase timed."""
    from hydra import compose, initialize_config_dir
    from mlflow.tracking import MlflowClient

    from eqexp import runner, tracking
    from eqexp.spec import load_spec

    phases: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] += time.perf_counter() - start
        return wrapper

    runner.data_load.load = timed("data load", runner.data_load.load)
    runner.prepare = timed("prepare (lags, sample, trim)", runner.prepare)
    runner.analyses.run = timed("estimation and inference", runner.analyses.run)
    runner.write_outputs = timed("files (csv, tables)", runner.write_outputs)
    runner.tracking.log_run = timed("MLflow logging", runner.tracking.log_run)
    runner.to_text = timed("printing tables", runner.to_text)

    jobs = []
    start_all = time.perf_counter()
    parent = None
    for i, overrides in enumerate(job_overrides()):
        phases.clear()
        t0 = time.perf_counter()
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[*common(data, base, "sequential.db"), *overrides])
        spec = load_spec(cfg)
        phases["config (compose, validate)"] += time.perf_counter() - t0
        if parent is None:
            experiment = tracking.ensure_experiment(spec.tracking, ROOT)
            parent = MlflowClient(tracking.resolve_uri(spec.tracking, ROOT)).create_run(experiment, run_name="sequential").info.run_id
        t1 = time.perf_counter()
        runner.run_job(spec, base / "sequential" / str(i), root=ROOT, run_name=",".join(overrides), parent_run_id=parent)
        total = time.perf_counter() - t1 + phases["config (compose, validate)"]
        jobs.append({"job": i, "total": total, **phases})
        print(f"[bench] sequential job {i + 1}/12: {total:.1f} s", flush=True)
    return time.perf_counter() - start_all, jobs


def parallel(data: str, base: Path, workers: int) -> tuple[float, list[dict], dict]:
    """`python run.py -m` with the same 12 jobs on `workers` joblib workers (a fresh MLflow store: nothing skipped)."""
    name = f"sweep{workers}"
    args = [sys.executable, "run.py", "-m", *common(data, base, f"{name}.db"), f"hydra.sweep.dir={base / name}",
            f"hydra.launcher.n_jobs={workers}", *SWEEP]
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    records = [json.loads(p.read_text()) for p in sorted((base / name / "status").glob("*.json"))]
    plan = json.loads((base / name / "sweep.json").read_text())
    assert all(r["status"] == "finished" for r in records) and len(records) == 12
    return wall, records, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results.md"))
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")

    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        base = Path(tmp)
        from hydra import compose, initialize_config_dir

        from eqexp.data import load as data_load
        from eqexp.spec import load_spec

        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            spec = load_spec(compose("config", overrides=common(args.data, base, "x.db")))
        t = time.perf_counter()
        n_rows = len(data_load.load(spec.data).panel)
        build = time.perf_counter() - t
        print(f"[bench] data {args.data}: {n_rows:,} rows, built in {build:.1f} s", flush=True)

        startup = startup_seconds()
        sweep_wall, records, plan = parallel(args.data, base, args.workers)
        print(f"[bench] sweep on {args.workers} workers: {sweep_wall:.1f} s", flush=True)
        one_wall, one_records, one_plan = parallel(args.data, base, 1)
        print(f"[bench] sweep on 1 worker: {one_wall:.1f} s", flush=True)
        seq_wall, jobs = sequential(args.data, base)
        print(f"[bench] sequential: {seq_wall:.1f} s", flush=True)

    warm = jobs[1:]  # job 1 pays pyfixest's first-call compilation
    mean = lambda key: statistics.mean(j.get(key, 0.0) for j in warm)  # noqa: E731
    estimation = mean("estimation and inference")
    overhead_keys = ["config (compose, validate)", "data load", "files (csv, tables)", "printing tables", "MLflow logging"]
    overhead = sum(mean(k) for k in overhead_keys)
    prepare = mean("prepare (lags, sample, trim)")
    jobs_per_worker = len(records) / max(1, plan["context"]["workers"] or 1)
    # bookkeeping measured in the 1-worker sweep (one warm process, like the loop), jobs 2-12
    sweep_extra = statistics.mean(r["timings"].get("resume_check", 0) + r["timings"].get("tag", 0) for r in one_records[1:])
    job_seconds = [r["seconds"] for r in records]
    busy = sum(job_seconds) / args.workers

    lines = [
        "",
        f"## Sweep: 12 jobs, {args.workers} workers vs one process ({time.strftime('%Y-%m-%d')}, `bench_sweep.py`)",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), Python {platform.python_version()}; "
        f"data `{args.data}` ({n_rows:,} rows; cache built in {build:.1f} s, not counted below). "
        f"Jobs: `{' '.join(SWEEP)}` (2 models each), MLflow on SQLite.",
        "",
        "| | wall (s) |",
        "|:---|---:|",
        f"| 12 jobs one after another, one process (`runner.run_job` loop) | {seq_wall:.1f} |",
        f"| `python run.py -m` on {args.workers} joblib workers (whole command: start-up, plan, summary) | {sweep_wall:.1f} |",
        f"| speed-up | {seq_wall / sweep_wall:.2f}× |",
        f"| sweep: sum of job times / workers (the ideal for this schedule) | {busy:.1f} |",
        f"| sweep: outside the jobs (parent start-up, planning, worker start-up, summary, table, plot) | {sweep_wall - max(busy, max(job_seconds)):.1f} |",
        f"| `python run.py -m` on 1 worker × {one_plan['context']['threads']} threads (same jobs, no parallelism across jobs) | {one_wall:.1f} |",
        f"| 1 worker: sum of job times | {sum(r['seconds'] for r in one_records):.1f} |",
        f"| mean job time: one process / {args.workers} workers × {plan['context']['threads']} thread / 1 worker × {one_plan['context']['threads']} threads | "
        f"{statistics.mean(j['total'] for j in jobs):.2f} / {statistics.mean(job_seconds):.2f} / {statistics.mean(r['seconds'] for r in one_records):.2f} |",
        "",
        "Per job, warm (mean of jobs 2–12 in the one-process loop):",
        "",
        "| phase | seconds | share of estimation |",
        "|:---|---:|---:|",
        f"| estimation and inference (pyfixest fits, utest, tables) | {estimation:.3f} | 100 % |",
        f"| preparation (lags, sample, trim) | {prepare:.3f} | {100 * prepare / estimation:.1f} % |",
        *(f"| {k} | {mean(k):.3f} | {100 * mean(k) / estimation:.1f} % |" for k in overhead_keys),
        f"| sweep bookkeeping (spec, job key, resume look-up, status, run tags; 1-worker sweep, warm) | {sweep_extra:.3f} | {100 * sweep_extra / estimation:.1f} % |",
        f"| **eqexp overhead per warm job** (config, load, files, printing, logging, bookkeeping) | **{overhead + sweep_extra:.3f}** | **{100 * (overhead + sweep_extra) / estimation:.1f} %** |",
        f"| worker start-up, once per worker (interpreter + imports), per job at {jobs_per_worker:.0f} jobs/worker | {startup / jobs_per_worker:.3f} | {100 * startup / jobs_per_worker / estimation:.1f} % |",
        "",
        f"Worker start-up itself: {startup:.2f} s (median of 3 `python -c 'import eqexp.cli, eqexp.sweep, mlflow.tracking'`). "
        f"Threads per worker in the sweep: {plan['context']['threads']}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    results = Path(args.results)
    if not results.exists():
        results.write_text("# Benchmark results\n")
    with results.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
