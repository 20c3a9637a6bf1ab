"""Benchmark: the analysis panel built from raw sources at the `synthetic` size, cold and cached.

    .venv/bin/python benchmarks/bench_build.py [--data synthetic] [--no-append]

Cold: a fresh process loads `data=<data>` into an empty cache: the world is drawn, its raw
sources generated (customs flows included), every measure run and the entry written.
Cached: a second process loads the same entry; the load itself is timed inside the process
(what every job of a sweep pays), and the whole process too. Peak memory is the resident
set of each process, sampled every 0.1 s. Appends a section to benchmarks/results.md with
the machine's core count, the stage times, the build's scores against the world's truth (match,
firm linking, quality) and the rows dropped per build step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak import run_with_peaks  # noqa: E402
from record import append_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from hydra import compose, initialize_config_dir
from eqexp.spec import load_spec
from eqexp.data.load import load
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    spec = load_spec(compose("config", overrides=[f"data={sys.argv[2]}", f"data.cache_dir={sys.argv[3]}"]))
start = time.perf_counter()
loaded = load(spec.data)
seconds = time.perf_counter() - start
json.dump({"load_seconds": seconds, "rows": len(loaded.panel), "directory": str(loaded.directory)}, open(sys.argv[4], "w"))
"""


def child(data: str, cache: Path, out: Path) -> dict:
    args = [sys.executable, "-c", CHILD, str(ROOT / "conf"), data, str(cache), str(out)]
    wall, peaks, code = run_with_peaks(args, ROOT, interval=0.1)
    if code:
        raise SystemExit(f"child failed with exit code {code}: {' '.join(args[:2])} ...")
    return json.loads(out.read_text()) | {"wall": wall, "peak_mib": max(peaks.values(), default=float("nan"))}


def _quality_r(entry: Path) -> float | None:
    """Correlation of the built quality with the world's latent quality, where the entry has it."""
    import numpy as np
    import pandas as pd

    if not (entry / "latent.parquet").exists():
        return None
    m = pd.read_parquet(entry / "panel.parquet").merge(pd.read_parquet(entry / "latent.parquet"), on=["firm_id", "year"])
    return float(np.corrcoef(m["quality"], m["quality_latent"])[0, 1])


def _truth_line(scores: dict, quality_r: float | None) -> str:
    """The build against the synthetic world's truth (issue 13's criteria)."""
    if not scores:
        return ""
    parts = [f"match precision {scores['match_precision']:.4f}, recall {scores['match_recall']:.4f}"] if "match_recall" in scores else []
    if "link_recall" in scores:
        parts.append(f"firm linking recall {scores['link_recall']:.4f} (over re-IDed firms' years "
                     f"{scores['link_recall_re_ided']:.4f}), precision {scores['link_precision']:.4f}")
    if quality_r is not None:
        parts.append(f"quality's correlation with the latent quality {quality_r:.4f}")
    return "Against the world's truth (`truth_scores` in build_log.json): " + "; ".join(parts) + "."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold = child(args.data, tmp / "cache", tmp / "cold.json")
        cached = child(args.data, tmp / "cache", tmp / "cached.json")
        entry = Path(cold["directory"])
        log = json.loads((entry / "build_log.json").read_text())
        size_mib = sum(f.stat().st_size for f in entry.iterdir()) / 2**20
        quality_r = _quality_r(entry)

    stages = log.get("seconds", {})
    lines = [
        f"\n## Panel built from raw sources (`data={args.data}`, `bench_build.py`) — {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}\n",
        f"Raw sources: {', '.join(f'{k} {v:,}' for k, v in log.get('sources', {}).items())} rows; "
        f"panel {cold['rows']:,} firm-years; cache entry {size_mib:.0f} MiB. Options: defaults "
        f"(sigma={log['options']['sigma']}, pairs={log['options']['pairs']}, transform={log['options']['transform']}).\n",
        "| measure | value | target |", "|:---|---:|---:|",
        f"| cold build, whole process (imports, world, sources, measures, writing the entry) | {cold['wall']:.1f} s | < 60 s |",
        f"| cold build, `load()` inside the process | {cold['load_seconds']:.1f} s | |",
        f"| cached load, `load()` inside the process | {cached['load_seconds']:.3f} s | < 1 s |",
        f"| cached load, whole process (interpreter, imports, config) | {cached['wall']:.1f} s | |",
        f"| peak RSS, cold build | {cold['peak_mib']:,.0f} MiB | |",
        f"| peak RSS, cached load | {cached['peak_mib']:,.0f} MiB | |",
        "", _truth_line(log.get("truth_scores", {}), quality_r),
        "", "Stages of the cold build (seconds): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        + f"; writing and the rest {cold['load_seconds'] - sum(stages.values()):.1f}.", "",
        "Rows dropped per build step (steps that dropped nothing are left out):", "",
        "| stage | step | rows in | dropped | rows out | why |", "|:---|:---|---:|---:|---:|:---|",
    ]
    for s in log["steps"]:
        if s["dropped"]:
            lines.append(f"| {s['stage']} | {s['step']} | {s['rows_in']:,} | {s['dropped']:,} | {s['rows_out']:,} | {s['reason']} |")
    text = "\n".join(lines) + "\n"
    if args.no_append:
        print(text)
    else:
        append_results(text)


if __name__ == "__main__":
    main()
