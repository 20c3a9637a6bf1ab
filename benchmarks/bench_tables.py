"""Benchmark: every table of the reference study as one sweep at the synthetic size
(`python run.py -m 'experiment=glob(table*)'`, bootstrap and permutations at 1,000 draws),
against the same regressions called directly in pyfixest in one process.

    .venv/bin/python benchmarks/bench_tables.py

Appends a section to benchmarks/results.md with the machine's core count.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from peak import run_with_peaks

ROOT = Path(__file__).resolve().parents[1]
CONTROLS = ["scale", "age", "roa", "rdebt", "fic"]


def direct(panel_file: Path) -> tuple[float, int]:
    """Tables 4–11's regressions (no inference beyond pyfixest's), straight in pyfixest."""
    import pandas as pd
    import pyfixest as pf

    warnings.simplefilter("ignore")
    df = pd.read_parquet(panel_file)
    lagged = df[["firm_id", "year", "market", *CONTROLS]]
    for k in (1, 2, 3):
        lag = lagged.assign(year=lagged.year + k).rename(columns=lambda c: c if c in ("firm_id", "year") else f"L{k}_{c}")
        df = df.merge(lag, on=["firm_id", "year"], how="left")
    for x in ["market", "L1_market", "L2_market", "L3_market"]:
        df[f"{x}_sq"] = df[x] ** 2
    fe, vcov = "| firm_id + year", {"CRV1": "firm_id"}
    base = f"market + market_sq + {' + '.join(CONTROLS)}"
    formulas = [(f"quality ~ market + market_sq {fe}", df), (f"quality ~ {base} {fe}", df)]
    formulas += [(f"quality ~ L{k}_market + L{k}_market_sq + {' + '.join(CONTROLS)} {fe}", df) for k in (1, 2, 3)]
    formulas += [(f"quality ~ L{k}_market + L{k}_market_sq + {' + '.join(f'L{k}_{c}' for c in CONTROLS)} {fe}", df) for k in (1, 2, 3)]
    for m in ("humancapital", "rd"):
        formulas += [(f"quality ~ {base} {fe}", df), (f"{m} ~ market + {' + '.join(CONTROLS)} {fe}", df), (f"quality ~ {base} + {m} {fe}", df)]
    for query in ["soe == 1", "soe == 0", "intensity2 == 'labour'", "intensity2 == 'capital'", "year <= 2007", "year >= 2008",
                  "region == 'East'", "region == 'West'", "region == 'Central'"]:
        formulas.append((f"quality ~ {base} {fe}", df.query(query)))
    pf.feols(f"quality ~ market {fe}", df.head(5000), vcov=vcov)  # compilation, paid once
    start = time.perf_counter()
    for formula, data in formulas:
        pf.feols(formula, data, vcov=vcov)
    return time.perf_counter() - start, len(formulas)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args = [sys.executable, "run.py", "-m", "experiment=glob(table*)", f"hydra.sweep.dir={tmp}/sweep",
                f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"tracking.artifact_root={tmp}/artifacts"]
        seconds, peaks, code = run_with_peaks(args, ROOT)
        direct_seconds, n = direct(max((ROOT / "outputs" / "cache").glob("synthetic-*/panel.parquet"), key=os.path.getmtime))
    workers = sorted(peaks.values(), reverse=True)
    text = "\n".join([
        f"\n## Reference study, all tables as one sweep (`-m 'experiment=glob(table*)'`, data=synthetic) — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores\n",
        "| measure | value |", "|---|---|",
        f"| sweep wall time (10 jobs, bootstrap and permutations at 1,000 draws, exit code {code}) | {seconds:.1f} s |",
        f"| peak RSS, largest three processes of the sweep | {', '.join(f'{w:,.0f} MiB' for w in workers[:3])} |",
        f"| the same {n} regressions directly in pyfixest, one process, warm | {direct_seconds:.1f} s |",
    ]) + "\n"
    print(text)
    with open(ROOT / "benchmarks" / "results.md", "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
