"""Benchmark: the panel built from a raw-sources folder on each customs engine (pandas, DuckDB), at several sizes.

    .venv/bin/python benchmarks/bench_build_engines.py [--scales 1,4] [--rounds 1] [--memory-limit 4GB] [--no-append]

For each scale the synthetic world (scale × the reference size: 100,000 firms, 594,596 firm-years)
is drawn and its raw sources written as Parquet, once. Then, alternating the engines in the same
invocation, a fresh process reads the folder (`read_sources`) and builds the panel
(`eqexp.build.build`, `data.build.engine`); its wall time and the peak resident memory of its
whole process tree (sampled every 0.1 s) are recorded with the core count in benchmarks/results.md,
and the panels of the two engines compared.
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
BASE = {"n_firms": 100_000, "n_obs": 594_596}

WRITE = """
import sys
from eqexp.data.synthetic import WorldParams, generate_sources, generate_world
scale = int(sys.argv[1])
world = generate_world(WorldParams(n_firms=100000 * scale, n_obs=594596 * scale))
generate_sources(world).write(sys.argv[2])
"""

BUILD = """
import json, sys, time
start = time.perf_counter()
from eqexp.build import build
from eqexp.data.sources import read_sources
raw = read_sources(sys.argv[1])
read = time.perf_counter()
built = build(raw, {"engine": sys.argv[2]}, memory_limit=sys.argv[3])
done = time.perf_counter()
built.panel.to_parquet(sys.argv[4])
json.dump({"records": len(raw.customs), "read": read - start, "build": done - read, "rows": len(built.panel),
           "stages": built.seconds}, open(sys.argv[5], "w"))
"""


def tree_peak(peaks: dict[int, float]) -> float:
    return sum(peaks.values())  # one process here; the sum covers any child it starts


def run(code: str, args: list[str]) -> tuple[float, float]:
    wall, peaks, rc = run_with_peaks([sys.executable, "-c", code, *args], ROOT, interval=0.1)
    if rc:
        raise SystemExit(f"child failed ({rc}): {args}")
    return wall, tree_peak(peaks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1,4")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    import numpy as np
    import pandas as pd

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for scale in map(int, args.scales.split(",")):
            folder = tmp / f"raw{scale}"
            run(WRITE, [str(scale), str(folder)])
            for r in range(args.rounds):
                for engine in (("pandas", "duckdb") if r % 2 == 0 else ("duckdb", "pandas")):
                    out = tmp / f"{scale}-{engine}.json"
                    wall, peak = run(BUILD, [str(folder), engine, args.memory_limit, str(tmp / f"{scale}-{engine}.parquet"),
                                             str(out)])
                    rows.append({"scale": scale, "engine": engine, "wall": wall, "peak": peak, **json.loads(out.read_text())})
                    print(rows[-1], flush=True)
            a, b = (pd.read_parquet(tmp / f"{scale}-{e}.parquet") for e in ("pandas", "duckdb"))
            rows[-1]["quality_diff"] = float(np.abs(a["quality"] - b["quality"]).max()) if len(a) == len(b) else None
            rows[-1]["same_rest"] = bool(a.drop(columns="quality").equals(b.drop(columns="quality")))
            for f in folder.iterdir():
                f.unlink()
    table = pd.DataFrame(rows)
    lines = [f"\n## Panel built from a raw-sources folder, pandas vs DuckDB customs engine (`bench_build_engines.py`) — "
             f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
             f"Python {platform.python_version()}, DuckDB memory limit {args.memory_limit}\n",
             "Each row a fresh process: read the Parquet folder (`read_sources`) and build the panel; peak RSS of its "
             "process tree sampled every 0.1 s; the engines alternate within one invocation on the same files.\n",
             "| scale | customs records | engine | whole process | read | build | quality stage | peak RSS |",
             "|---:|---:|:---|---:|---:|---:|---:|---:|"]
    for _, r in table.iterrows():
        lines.append(f"| {r.scale}x | {r.records:,} | {r.engine} | {r.wall:.1f} s | {r.read:.1f} s | {r.build:.1f} s | "
                     f"{r.stages.get('quality', float('nan')):.1f} s | {r.peak:,.0f} MiB |")
    for scale, group in table.groupby("scale"):
        last = group.iloc[-1]
        lines.append(f"\n{scale}x: panels of the two engines: {int(last.rows):,} rows each; other columns equal: "
                     f"{last.get('same_rest')}; quality's largest difference {last.get('quality_diff')}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
