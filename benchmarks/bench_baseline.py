"""Benchmark: `python run.py` at the synthetic size, cold (world generated) and warm (cached),
against the same two regressions called directly in pyfixest on the same data.

    .venv/bin/python benchmarks/bench_baseline.py [--data synthetic]

Appends a section to benchmarks/results.md with the machine's core count.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from record import append_results

ROOT = Path(__file__).resolve().parents[1]


def timed_run(cache: Path, out: Path, data: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `python run.py` in a child process."""
    args = [sys.executable, "run.py", f"data={data}", f"data.cache_dir={cache}", f"hydra.run.dir={out}",
            f"tracking.uri=sqlite:///{out.parent}/mlflow.db", f"tracking.artifact_root={out.parent}/artifacts"]
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def direct_pyfixest(panel_file: Path) -> float:
    """The two Table 4 regressions straight in pyfixest, warm (compilation paid beforehand)."""
    import pandas as pd
    import pyfixest as pf

    df = pd.read_parquet(panel_file).assign(market_sq=lambda d: d.market**2)
    controls = "scale + age + roa + rdebt + fic"
    warnings.simplefilter("ignore")
    pf.feols("quality ~ market + market_sq | firm_id + year", df.head(5000), vcov={"CRV1": "firm_id"})
    start = time.perf_counter()
    pf.feols("quality ~ market + market_sq | firm_id + year", df, vcov={"CRV1": "firm_id"})
    pf.feols(f"quality ~ market + market_sq + {controls} | firm_id + year", df, vcov={"CRV1": "firm_id"})
    return time.perf_counter() - start


def estimation_seconds(out: Path) -> float:
    """The runner's own estimation time: preparation plus fits, from a warm in-process job."""
    from eqexp.runner import run_job
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["tracking=off", f"data.cache_dir={out.parent / 'cache'}"])
    run_job(cfg, out / "warmup")  # pays pyfixest's first-call compilation
    start = time.perf_counter()
    run_job(cfg, out / "timed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="synthetic")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold, cold_mem = timed_run(tmp / "cache", tmp / "cold", args.data)
        warm, warm_mem = timed_run(tmp / "cache", tmp / "warm", args.data)
        (panel,) = (tmp / "cache").glob("*/panel.parquet")
        direct = direct_pyfixest(panel)
        job = estimation_seconds(tmp / "job") if args.data == "synthetic" else float("nan")
    lines = [
        f"\n## Baseline `python run.py` (data={args.data}) — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}\n",
        "| measure | value |", "|---|---|",
        f"| cold run (world, raw sources, measures built and cached) | {cold:.1f} s |",
        f"| warm run (panel cached), whole process | {warm:.1f} s |",
        f"| peak RSS of a run | {max(cold_mem, warm_mem):,.0f} MiB |",
        f"| run_job in a warm process (load + 2 fits + utest + tables + figures) | {job:.2f} s |",
        f"| the same 2 regressions directly in pyfixest (warm) | {direct:.2f} s |",
        f"| ratio run_job / direct pyfixest | {job / direct:.2f} |",
    ]
    append_results("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
