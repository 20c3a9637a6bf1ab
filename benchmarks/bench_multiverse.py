"""Benchmark: a multiverse end to end (`python run.py -m +multiverse=<name>`), with MLflow
tracking into a fresh store, and where its time goes.

    .venv/bin/python benchmarks/bench_multiverse.py                          # the reference, default data
    .venv/bin/python benchmarks/bench_multiverse.py --data synthetic_small --draws 500
    .venv/bin/python benchmarks/bench_multiverse.py --multiverse measurement

Reported: wall, CPU seconds (user + system, of the whole process tree) and the peak RSS of
its processes; the phases read from the sweep's own
records: planning (start to `sweep.json`: composing and validating every job, data builds),
jobs (first start to last end, and the sum of the jobs' own times), the parent's end (MLflow
runs, summary) and the curve; how many specs took their draws' moments from an earlier spec
on the same rows (a worker cache hit); the load average, since a shared machine slows
everything. Appends a section to benchmarks/results.md with the machine's core count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from peak import run_with_peaks
from record import append_results

from eqexp.inference import hypothesis

ROOT = Path(__file__).resolve().parents[1]


def phases(sweep_dir: Path, started: float) -> dict[str, float]:
    plan = json.loads((sweep_dir / "sweep.json").read_text())
    statuses = [json.loads(p.read_text()) for p in (sweep_dir / "status").glob("*.json")]
    first, last = min(s["started"] for s in statuses), max(s["ended"] for s in statuses)
    summary, curve = (sweep_dir / "summary.csv").stat().st_mtime, (sweep_dir / "curve.png").stat().st_mtime
    return {"planning": plan["created"] - started, "jobs": last - first, "job_sum": sum(s["seconds"] for s in statuses),
            "end": summary - last, "curve": curve - summary, "specs": len(statuses)}


def shared_moments(sweep_dir: Path) -> tuple[int, int]:
    """Specs whose draws reused an earlier spec's moments (multiverse.json), of all specs with draws."""
    models = [m for p in sweep_dir.glob("*/multiverse.json") for m in json.loads(p.read_text())]
    return sum(m["moments_shared"] for m in models), len(models)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--multiverse", default="reference")
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("overrides", nargs="*", help="more overrides, e.g. lags=none,l1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        command = [sys.executable, "run.py", "-m", f"+multiverse={args.multiverse}", f"data={args.data}",
                   f"multiverse.draws={args.draws}", f"tracking.uri=sqlite:///{base / 'mlflow.db'}",
                   f"tracking.artifact_root={base / 'art'}", f"hydra.sweep.dir={base / 'sweep'}", *args.overrides]
        load, started, before = os.getloadavg()[0], time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, peaks, code = run_with_peaks(command, ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime  # the process tree's, workers included
        if code:
            raise SystemExit(f"the multiverse failed ({code}): {' '.join(command)}")
        p = phases(base / "sweep", started)
        shared, total = shared_moments(base / "sweep")
        joint = [f"{t.hypothesis} {t.estimate:.6g} p = {t.p_value:.4g} ({t.draws} draws)"
                 for t in hypothesis.read(base / "sweep" / "curve_joint.csv").itertuples()]
    append_results(
        f"\n## A multiverse (`bench_multiverse.py`) — {date.today()}, {os.cpu_count()} cores, load average {load:.1f} at the start\n\n"
        f"`python run.py -m +multiverse={args.multiverse} data={args.data} multiverse.draws={args.draws} {' '.join(args.overrides)}`"
        f" with MLflow tracking: {p['specs']} specs in **{wall:.0f} s** ({cpu:.0f} CPU seconds); peak RSS summed over the process tree's processes "
        f"{sum(peaks.values()):,.0f} MiB, the largest process {max(peaks.values()):,.0f} MiB.\n\n"
        "| phase | seconds |\n|---|---:|\n"
        f"| planning: every job composed and validated, data built | {p['planning']:.1f} |\n"
        f"| jobs, first start to last end (their own times summed: {p['job_sum']:.0f} s) | {p['jobs']:.1f} |\n"
        f"| the parent's end: MLflow runs of every job and model, summary, combined table | {p['end']:.1f} |\n"
        f"| the curve: table, joint test, figure | {p['curve']:.1f} |\n\n"
        f"{shared} of {total} specs took their draws' moments from an earlier spec on the same rows. Joint test "
        f"(statistic, as reported, p under the null): {'; '.join(joint)}.\n"
    )


if __name__ == "__main__":
    main()
