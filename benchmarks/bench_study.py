"""Benchmark: the whole reference study (Tables 2-11) as one eqexp sweep, against the same
regressions in a plain pyfixest script (../shared/peers/pyfixest_study.py), on the same
cached panel, in the same invocation, alternating.

    .venv/bin/python benchmarks/bench_study.py [--rounds 3] [--scales 1,2,4] [--skip-scaling]
    FIXEST_LIB=<R library with fixest> .venv/bin/python benchmarks/bench_study.py   # with R fixest too

Per round, in this order: the pyfixest script, the R fixest script (../shared/peers/study.R,
2 threads, when `FIXEST_LIB` names an R library holding fixest: ../shared/peers/README.md
says how to build it; it reads the same panel as CSV), the sweep with tracking off, the sweep with
MLflow tracking (a store created beforehand; force=true so no job is skipped as already
done). Reported: median wall of the whole process, the ratio eqexp / pyfixest, the peak
memory of the whole process tree (the largest sum over its processes at one moment, RSS and
PSS: workers share their libraries' pages), a single warm `python run.py` (Table 4), how the
sweep's time grows with the panel (1x, 2x, 4x rows via data.params), where the sweep's
wall went (start, jobs, end, from its jobs' status files), and the largest
relative difference between eqexp's and pyfixest's coefficients and standard errors.
Appends a section to benchmarks/results.md with the machine's core count.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
from record import append_results

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "pyfixest_study.py"
FIXEST = ROOT.parent / "shared" / "peers" / "study.R"
PY = sys.executable
STUDY = ["-m", "experiment=glob(table*)"]
TABLES = {"table4": "table4_baseline", "table5": "table5_lags", "table6": "table6_mediation_humancapital",
          "table7": "table7_mediation_rd", "table8": "table8_ownership", "table9": "table9_industry",
          "table10": "table10_period", "table11": "table11_region"}


def run_measured(args: list[str], interval: float = 0.1) -> dict:
    """Wall seconds, exit code and the peak of the summed RSS and PSS of the command's process tree."""
    start, started_at = time.perf_counter(), time.time()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"rss": 0.0, "pss": 0.0}

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            rss = pss = 0.0
            try:
                for p in [root, *root.children(recursive=True)]:
                    info = p.memory_full_info()
                    rss, pss = rss + info.rss, pss + info.pss
            except psutil.Error:
                continue
            peak["rss"], peak["pss"] = max(peak["rss"], rss / 2**20), max(peak["pss"], pss / 2**20)
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    thread.join()
    return {"seconds": time.perf_counter() - start, "started_at": started_at, "code": proc.returncode, "rss": peak["rss"],
            "pss": peak["pss"], "out": out}


def phases(sweep_dir: Path, run: dict) -> dict[str, float]:
    """Where a sweep's wall went, from its jobs' status files: the start (until the first job
    starts), the jobs (first start to last end), the end (to the process's exit), and the jobs'
    own seconds summed (their CPU, roughly, on busy workers)."""
    jobs = [json.loads(f.read_text()) for f in (sweep_dir / "status").glob("*.json")]
    first, last = min(j["started"] for j in jobs), max(j["ended"] for j in jobs)
    return {"start": first - run["started_at"], "jobs": last - first, "end": run["started_at"] + run["seconds"] - last,
            "summed": sum(j["seconds"] for j in jobs)}


def panel_of(data_overrides: list[str]) -> Path:
    """Build (if needed) and return the cached panel that `data_overrides` select."""
    from hydra import compose, initialize_config_dir

    from eqexp.data import load as data_load
    from eqexp.spec import load_spec

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        spec = load_spec(compose(config_name="config", overrides=["tracking=off", *data_overrides]))
    return data_load.load(replace(spec.data, cache_dir=str(ROOT / spec.data.cache_dir))).directory / "panel.parquet"


def sweep_args(tmp: Path, name: str, tracking: bool, extra: list[str]) -> list[str]:
    track = [f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"tracking.artifact_root={tmp}/mlartifacts", "force=true"] if tracking else ["tracking=off"]
    return [PY, "run.py", *STUDY, *track, f"hydra.sweep.dir={tmp}/{name}", *extra]


def agreement(sweep_dir: Path, peer_csv: Path) -> tuple[float, float, int]:
    """Largest relative difference in estimates and SEs between the sweep's tables and the peer's rows."""
    peer = pd.read_csv(peer_csv)
    ours = []
    for job in sweep_dir.iterdir():
        name = next((t for t, e in TABLES.items() if f"experiment={e}," in f"{job.name},"), None)
        if name and (job / "coefficients.csv").exists():
            ours.append(pd.read_csv(job / "coefficients.csv").assign(table=name))
    merged = peer.merge(pd.concat(ours), on=["table", "model", "term"], suffixes=("_peer", ""))
    rel = lambda a, b: float(((merged[a] - merged[b]).abs() / merged[b].abs()).max())  # noqa: E731
    assert (merged.n_obs == merged.n_obs_peer).all(), "N differs"
    return rel("estimate", "estimate_peer"), rel("std_error", "std_error_peer"), len(merged)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scales", default="1,2,4")
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    # eqexp's modules as bytecode, as `make setup` leaves them (the peers' libraries are compiled at install)
    subprocess.run([PY, "-m", "compileall", "-q", "src", "run.py"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    panel = panel_of([])
    with_fixest = bool(os.environ.get("FIXEST_LIB"))
    results: dict[str, list[dict]] = {"pyfixest": [], **({"fixest": []} if with_fixest else {}), "eqexp": [], "eqexp_mlflow": [],
                                      "single": [], "single_mlflow": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if with_fixest:  # full precision, as the README of the peers says
            pd.read_parquet(panel).to_csv(tmp / "panel.csv", index=False)
        subprocess.run([PY, "run.py", "data=synthetic_small", f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                        f"tracking.artifact_root={tmp}/mlartifacts"], cwd=ROOT, capture_output=True, check=True)  # creates the store
        for r in range(args.rounds):
            results["pyfixest"].append(run_measured([PY, str(PEER), str(panel), str(tmp / "peer.csv")]))
            if with_fixest:
                results["fixest"].append(run_measured(["Rscript", str(FIXEST), str(tmp / "panel.csv"), str(tmp / "fixest.csv"), "2", "1e-11", "singleton"]))
            results["eqexp"].append(run_measured(sweep_args(tmp, f"off{r}", False, [])))
            results["eqexp"][-1]["phases"] = phases(tmp / f"off{r}", results["eqexp"][-1])
            results["eqexp_mlflow"].append(run_measured(sweep_args(tmp, f"on{r}", True, [])))
            results["eqexp_mlflow"][-1]["phases"] = phases(tmp / f"on{r}", results["eqexp_mlflow"][-1])
            results["single"].append(run_measured([PY, "run.py", "tracking=off", f"hydra.run.dir={tmp}/single{r}"]))
            results["single_mlflow"].append(run_measured([PY, "run.py", f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                                                          f"tracking.artifact_root={tmp}/mlartifacts", f"hydra.run.dir={tmp}/singlet{r}"]))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]['seconds']:.1f}s" for k, v in results.items()), flush=True)
        bad = {k: v[-1]["out"][-2000:] for k, v in results.items() if any(x["code"] for x in v)}
        assert not bad, bad
        max_est, max_se, n_rows = agreement(tmp / f"off{args.rounds - 1}", tmp / "peer.csv")
        scaling = {}
        if not args.skip_scaling:
            for scale in [int(s) for s in args.scales.split(",")]:
                data = [f"data.params.n_firms={100_000 * scale}", f"data.params.n_obs={594_596 * scale}"]
                panel_of(data)  # built once, not timed
                scaling[scale] = run_measured(sweep_args(tmp, f"scale{scale}", False, data))
                print(f"scale {scale}x: {scaling[scale]['seconds']:.1f}s", flush=True)
    med = {k: statistics.median(x["seconds"] for x in v) for k, v in results.items()}
    peak = {k: (max(x["rss"] for x in v), max(x["pss"] for x in v)) for k, v in results.items()}
    ratio = lambda k, peer: f"{med[k] / med[peer]:.2f}" if peer in med else "—"  # noqa: E731
    rows = [
        "| run | median wall (s) | ratio to pyfixest | ratio to fixest | peak RSS, tree (MiB) | peak PSS, tree (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {label} | {med[k]:.2f} | {ratio(k, 'pyfixest')} | {ratio(k, 'fixest')} | {peak[k][0]:,.0f} | {peak[k][1]:,.0f} |"
          for k, label in [("pyfixest", "`pyfixest_study.py` (23 regressions, pyfixest 0.60)"),
                           ("fixest", "`study.R` (23 regressions, R fixest 0.12.2, 2 threads)"),
                           ("eqexp", "`run.py -m 'experiment=glob(table*)' tracking=off` (10 jobs)"),
                           ("eqexp_mlflow", "the same with MLflow tracking (SQLite)"),
                           ("single", "`run.py tracking=off` (Table 4, warm)"),
                           ("single_mlflow", "`run.py` (Table 4, warm, MLflow)")] if k in med),
    ]
    lines = [f"\n## The reference study against a plain pyfixest script (`bench_study.py`) — {time.strftime('%Y-%m-%d')}, "
             f"{os.cpu_count()} cores, {len(pd.read_parquet(panel, columns=['year'])):,} firm-years, median of {args.rounds} alternating rounds\n",
             *rows, "",
             f"MLflow tracking adds {100 * (med['eqexp_mlflow'] / med['eqexp'] - 1):.0f} % to the sweep. "
             f"Agreement with pf.feols on {n_rows} rows (Tables 4-11): max relative difference {max_est:.1e} (estimates), {max_se:.1e} (SEs)."]
    split = {k: {p: statistics.median(x["phases"][p] for x in results[k]) for p in ("start", "jobs", "end", "summed")}
             for k in ("eqexp", "eqexp_mlflow")}
    lines += ["", "| sweep (medians, s) | start: to the first job | jobs: first start to last end | end: last end to exit | the jobs' own seconds, summed |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {label} | {split[k]['start']:.2f} | {split[k]['jobs']:.2f} | {split[k]['end']:.2f} | {split[k]['summed']:.1f} |"
              for k, label in (("eqexp", "`tracking=off`"), ("eqexp_mlflow", "with MLflow"))]
    if scaling:
        base = scaling[min(scaling)]["seconds"]
        lines += ["", "| rows | sweep wall (s) | relative to 1x | peak PSS, tree (MiB) |", "|---|---:|---:|---:|"]
        lines += [f"| {s}x | {m['seconds']:.1f} | {m['seconds'] / base:.2f} | {m['pss']:,.0f} |" for s, m in scaling.items()]
    append_results("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
