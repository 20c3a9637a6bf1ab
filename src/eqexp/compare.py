"""Rebuild a sweep's side-by-side table and coefficient plot, choosing and ordering its jobs.

    python -m eqexp.compare outputs/sweeps/2026-01-01_12-00-00-000000
    python -m eqexp.compare <parent run id> --tracking-uri sqlite:///outputs/mlflow.db
    python -m eqexp.compare <sweep> --jobs hetero=region hetero=ownership      # these, in this order
    python -m eqexp.compare <sweep> --jobs 'trim=*' --order estimate --descending   # by the treatment coefficient
    python -m eqexp.compare <sweep> --jobs 0 3 5 --out paper/robustness

A job is selected by its number, its label (the overrides that name it, e.g.
`hetero=region`) or a shell pattern on the label. `--order` is `plan` (the sweep's
order), `given` (the order of --jobs, the default when --jobs is given), or one of
`label`, `estimate`, `t`, `n_obs` (the key results of the job's last model);
`--descending` (or `--order=-estimate`) reverses it. Writes combined.{md,tex,html,txt,docx}, combined_coefficients.csv
and coefplot.png into --out (default: <sweep>/compare, or outputs/compare/<run id>).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from eqexp import sweep
from eqexp.spec import OUTPUTS
from eqexp.sweep import JobRecord
from eqexp.sweep.side_by_side import combined_coefficients, key_results, write_side_by_side

ORDER_KEYS = ("plan", "given", "label", "estimate", "t", "n_obs")


@dataclass
class SweepResults:
    name: str
    records: list[JobRecord]
    coefficients: pd.DataFrame  # long, as sweep.combined_coefficients
    source: str


def from_directory(sweep_dir: Path) -> SweepResults:
    sweep_dir = Path(sweep_dir).resolve()
    if not (sweep_dir / sweep.PLAN_FILE).exists() and not (sweep_dir / sweep.STATUS_DIR).is_dir():
        raise SystemExit(f"{sweep_dir} is not an eqexp sweep directory (no {sweep.PLAN_FILE} or {sweep.STATUS_DIR}/).")
    records = sweep.job_records(sweep_dir)
    coefficients = {r.num: c for r in records if (c := sweep.read_coefficients(r)) is not None}
    return SweepResults(sweep_dir.name, records, combined_coefficients(records, coefficients), str(sweep_dir))


def _default_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(OUTPUTS, 'mlflow.db').resolve()}"


def from_mlflow(parent_run_id: str, uri: str | None = None) -> SweepResults:
    """The sweep of an MLflow parent run: its own summary artifacts, else rebuilt from its child runs."""
    from mlflow.tracking import MlflowClient

    uri = uri or _default_uri()
    client = MlflowClient(uri)
    parent = client.get_run(parent_run_id)
    name = parent.info.run_name or parent_run_id
    artifacts = {a.path for a in client.list_artifacts(parent_run_id)}
    with tempfile.TemporaryDirectory() as tmp:
        if {"jobs.json", "combined_coefficients.csv"} <= artifacts:
            jobs = json.loads(Path(client.download_artifacts(parent_run_id, "jobs.json", tmp)).read_text())
            long = pd.read_csv(client.download_artifacts(parent_run_id, "combined_coefficients.csv", tmp))
            return SweepResults(name, [JobRecord.from_dict(j) for j in jobs], long, f"MLflow run {parent_run_id}")
        return _from_children(client, parent, name, Path(tmp))


def _from_children(client, parent, name: str, tmp: Path) -> SweepResults:
    """A sweep whose parent process died before its summary: every child run is still there."""
    runs = client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=5000)
    status = {"FINISHED": sweep.FINISHED, "FAILED": sweep.FAILED, "KILLED": sweep.NEVER, "RUNNING": sweep.NEVER}
    records, frames = [], []
    for i, run in enumerate(sorted(runs, key=lambda r: (int(r.data.tags.get("eqexp.job_num", 10**6)), r.info.start_time))):
        tags, params = run.data.tags, run.data.params
        num = int(tags.get("eqexp.job_num", i))
        state = tags.get("eqexp.status") or status.get(run.info.status, sweep.NEVER)
        labels = {k.removeprefix("report.labels."): v for k, v in params.items() if k.startswith("report.labels.")}
        labels |= _json_params(params.get("report.labels"))  # the labels MLflow could not name a param by
        record = JobRecord(num=num, label=run.info.run_name or str(num), status=state, run_id=run.info.run_id,
                           reused_run_id=tags.get("eqexp.reused_run_id"), job_key=tags.get("job_key"),
                           reason=tags.get("eqexp.error", ""), treatment=params.get("model.treatment"),
                           fixed_effects=json.loads(params.get("model.fixed_effects", "[]")), labels=labels)
        records.append(record)
        source = record.reused_run_id or run.info.run_id
        if state in sweep.OK_STATUSES and "coefficients.csv" in {a.path for a in client.list_artifacts(source)}:
            frames.append(pd.read_csv(client.download_artifacts(source, "coefficients.csv", str(tmp / source))))
        else:
            frames.append(None)
    coefficients = {r.num: f for r, f in zip(records, frames) if f is not None}
    return SweepResults(name, records, combined_coefficients(records, coefficients), f"MLflow run {parent.info.run_id}")


def _json_params(text: str | None) -> dict[str, str]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:  # cut at MLflow's 6,000 characters
        return {}
    return found if isinstance(found, dict) else {}


def load(source: str, uri: str | None = None) -> SweepResults:
    path = Path(source)
    if path.is_dir():
        return from_directory(path)
    return from_mlflow(source, uri)


def select(records: list[JobRecord], selectors: list[str] | None) -> list[JobRecord]:
    """Jobs matching the selectors, in the selectors' order (each job once)."""
    if not selectors:
        return list(records)
    chosen: dict[int, JobRecord] = {}
    for part in selectors:
        matched = [r for r in records if (part.isdigit() and r.num == int(part)) or r.label == part]
        matched = matched or [r for r in records if fnmatch.fnmatchcase(r.label, part)]
        if not matched:
            known = ", ".join(f"{r.num}: {r.label}" for r in records)
            raise SystemExit(f"--jobs '{part}' matches no job of this sweep. Jobs: {known}")
        for r in matched:
            chosen.setdefault(r.num, r)
    return list(chosen.values())


def order(records: list[JobRecord], long: pd.DataFrame, key: str, plan_order: list[int]) -> list[JobRecord]:
    descending = key.startswith("-")
    key = key.lstrip("-")
    if key not in ORDER_KEYS:
        raise SystemExit(f"--order '{key}' is not one of {', '.join(ORDER_KEYS)} (with '-' for descending).")
    if key == "given":
        ordered = list(records)
    elif key == "plan":
        ordered = sorted(records, key=lambda r: plan_order.index(r.num) if r.num in plan_order else r.num)
    elif key == "label":
        ordered = sorted(records, key=lambda r: r.label)
    else:
        def value(r: JobRecord) -> float:
            part = long[long.job == r.num]
            res = key_results(part, r.treatment)
            v = res.get(key)
            return float("inf") if v is None else float(v) * (-1 if descending else 1)

        return sorted(records, key=value)  # jobs without results last, either way
    return ordered[::-1] if descending else ordered


def compare(results: SweepResults, jobs: list[str] | None = None, order_by: str | None = None, out: Path | None = None,
            title: str | None = None) -> tuple[list[JobRecord], list[Path]]:
    chosen = select(results.records, jobs)
    key = order_by or ("given" if jobs else "plan")
    chosen = order(chosen, results.coefficients, key, [r.num for r in results.records])
    nums = [r.num for r in chosen]
    long = results.coefficients
    long = long[long.job.isin(nums)].copy()
    long["_order"] = long.job.map({n: i for i, n in enumerate(nums)})
    long = long.sort_values("_order", kind="stable").drop(columns="_order")
    title = title or f"Sweep {results.name}: treatment coefficients across jobs"
    written = write_side_by_side(chosen, long, Path(out), title)
    return chosen, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eqexp.compare", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[-1])
    parser.add_argument("source", help="a sweep directory, or the MLflow run id of a sweep's parent run")
    parser.add_argument("--jobs", nargs="+", help="job numbers, labels or label patterns, in the order wanted")
    parser.add_argument("--order", help=f"one of {', '.join(ORDER_KEYS)}; '-' in front for descending")
    parser.add_argument("--descending", action="store_true", help="reverse the order")
    parser.add_argument("--out", help="output directory")
    parser.add_argument("--tracking-uri", help="MLflow store of the parent run (default: $MLFLOW_TRACKING_URI or sqlite:///outputs/mlflow.db)")
    parser.add_argument("--title", help="table title")
    args = parser.parse_args(argv)
    results = load(args.source, args.tracking_uri)
    if args.out:
        out = Path(args.out)
    elif Path(args.source).is_dir():
        out = Path(args.source) / "compare"
    else:
        out = Path(OUTPUTS, "compare") / args.source
    order_by = args.order or ("given" if args.jobs else "plan")
    if args.descending and not order_by.startswith("-"):
        order_by = "-" + order_by
    chosen, written = compare(results, args.jobs, order_by, out, args.title)
    print(f"[eqexp] {len(chosen)} job(s) from {results.source}: {', '.join(f'{r.num} {r.label} ({r.status})' for r in chosen)}")
    for path in written:
        print(f"[eqexp] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
