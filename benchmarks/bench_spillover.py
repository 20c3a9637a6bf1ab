"""Benchmark of the second study (information spillover): the spillover measures at the
`synthetic` size, and the whole `glob(spill*)` sweep, with wall time and peak memory.

    .venv/bin/python benchmarks/bench_spillover.py                  # data=spill (full size)
    .venv/bin/python benchmarks/bench_spillover.py --data spill_small

Appends a section to benchmarks/results.md with the machine's core count. The sweep runs
cold (its own temporary cache, so every build is included) with tracking off.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peak import run_with_peaks  # noqa: E402
from record import append_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

MEASURES = """
import json, sys, time, yaml
from eqexp.data.synthetic import WorldParams, generate_world
from eqexp.data.synthetic import generate_sources
from eqexp.measures.spillover import spillover_measures
params = yaml.safe_load(open("conf/data/{data}.yaml"))["params"]
raw = generate_sources(generate_world(WorldParams(**params)))
acc = raw.accounts[["firm_id", "year", "industry", "city"]]
start = time.perf_counter()
table, log = spillover_measures(raw.customs, acc)
print(json.dumps({{"seconds": time.perf_counter() - start, "flows": len(raw.customs), "firm_years": len(acc),
                  "columns": len(table.columns) - 2}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="spill")
    args = parser.parse_args()
    py = sys.executable
    out = subprocess.run([py, "-c", MEASURES.format(data=args.data)], cwd=ROOT, capture_output=True, text=True, check=True)
    measures = json.loads(out.stdout.strip().splitlines()[-1])
    wall_m, peaks_m, _ = run_with_peaks([py, "-c", MEASURES.format(data=args.data)], ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [py, "run.py", "-m", "experiment=glob(spill*)", f"data={args.data}", "tracking=off",
               f"data.cache_dir={tmp}/cache", f"hydra.sweep.dir={tmp}/sweep"]
        wall, peaks, code = run_with_peaks(cmd, ROOT)
        jobs = len(list((ROOT / "conf" / "experiment").glob("spill*.yaml")))
    lines = [
        f"\n## Information-spillover study (bench_spillover.py, data={args.data})\n",
        f"Machine: {os.cpu_count()} cores, {platform.python_version()}.\n",
        f"- spillover_measures (all four scopes, lag 1) on {measures['flows']:,} customs records and "
        f"{measures['firm_years']:,} accounts firm-years: {measures['seconds']:.1f} s, {measures['columns']} columns; "
        f"the generating process (world + sources + measures) peaks at {max(peaks_m.values()):,.0f} MiB.",
        f"- `run.py -m 'experiment=glob(spill*)'`, {jobs} jobs, cold cache (builds included, two data variants: "
        f"general trade and peer_scale=count build their own panels): {wall:.0f} s wall, exit code {code}, peak RSS "
        f"{max(peaks.values()):,.0f} MiB in one process, {sum(peaks.values()):,.0f} MiB summed over the process tree.\n",
    ]
    append_results("\n".join(lines))


if __name__ == "__main__":
    main()
