"""What a sweep directory says about its jobs (the lowest module of the package, it imports
none of the others): `sweep.json` (the plan's records and the sweep's context),
`status/<num>.json` (each job's latest state) and a finished job's `coefficients.csv`."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

PLAN_FILE = "sweep.json"
STATUS_DIR = "status"
FINISHED, FAILED, SKIPPED, STARTED, NEVER = "finished", "failed", "skipped", "started", "never finished"
OK_STATUSES = (FINISHED, SKIPPED)


@dataclass
class JobRecord:
    """What is known about one job of a sweep; `status/<num>.json` holds the latest state."""

    num: int
    label: str  # the overrides that vary across the sweep, e.g. "hetero=region"
    overrides: list[str] = field(default_factory=list)  # all of the job's task overrides
    status: str = "planned"  # planned | started | finished | failed | skipped | never finished
    reason: str = ""  # why it failed, was skipped or never finished
    run_id: str | None = None  # this job's MLflow run (a child of the sweep's parent run)
    reused_run_id: str | None = None  # skipped: the earlier FINISHED run it reuses
    job_key: str | None = None  # hash of the resolved spec (minus tracking/force) and the data fingerprint
    fingerprint: str | None = None
    force: bool = False
    dir: str | None = None
    pid: int | None = None
    host: str | None = None
    started: float | None = None
    ended: float | None = None
    seconds: float | None = None
    analysis: str = "regression"
    treatment: str | None = None
    fixed_effects: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # report.labels, for the combined table
    timings: dict[str, float] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)  # thread caps the job ran under

    @classmethod
    def from_dict(cls, data: dict) -> "JobRecord":
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})


@dataclass
class SweepContext:
    """What the parent tells every job: handed over with the plan, also written into `sweep.json`."""

    sweep_dir: str
    root: str
    parent_run_id: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    artifact_root: str | None = None
    labels: dict[int, str] = field(default_factory=dict)
    threads: int | None = None
    workers: int | None = None
    n_planned: int | None = None
    job_keys: dict[int, str] = field(default_factory=dict)  # as planned by the parent
    earlier: dict[int, str] | None = None  # job -> its FINISHED run, looked up once by the parent (None: not looked up)
    multiverse: dict | None = None  # a multiverse's settings (`multiverse:` of conf/multiverse/*.yaml): its curve at the end

    @classmethod
    def from_dict(cls, data: dict) -> "SweepContext":
        ctx = cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})
        by_num = lambda d: {int(k): v for k, v in d.items()}  # noqa: E731  (JSON's keys are strings)
        ctx.labels, ctx.job_keys = by_num(ctx.labels or {}), by_num(ctx.job_keys or {})
        ctx.earlier = by_num(ctx.earlier) if ctx.earlier is not None else None
        return ctx


def write_json(path: Path, data: Any) -> None:
    """Atomic write: readers (the summary, a concurrent compare) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def write_status(sweep_dir: Path, record: JobRecord) -> None:
    write_json(Path(sweep_dir) / STATUS_DIR / f"{record.num}.json", dataclasses.asdict(record))


def read_statuses(sweep_dir: Path, skip: Any = ()) -> dict[int, JobRecord]:
    """Each job's latest state, but those of the job numbers in `skip` (not read)."""
    records = {}
    for path in sorted((Path(sweep_dir) / STATUS_DIR).glob("*.json")):
        if path.stem.isdigit() and int(path.stem) in skip:
            continue
        try:
            record = JobRecord.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        records[record.num] = record
    return records


def read_plan(sweep_dir: Path) -> dict:
    path = Path(sweep_dir) / PLAN_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def job_records(sweep_dir: Path) -> list[JobRecord]:
    """Every planned job with its final state; jobs without an end record never finished."""
    plan = read_plan(sweep_dir)
    planned = {r["num"]: JobRecord.from_dict(r) for r in plan.get("jobs", [])}
    found = read_statuses(sweep_dir)
    records = []
    for num in sorted(set(planned) | set(found)):
        record = found.get(num)
        if record is None:
            record, invalid = planned[num], planned[num].reason
            record.status = NEVER
            record.reason = "never started (the sweep stopped before launching it)" + (f"; its spec was invalid: {invalid}" if invalid else "")
        elif record.status == STARTED:
            record.status = NEVER
            record.reason = f"started on {record.host} (pid {record.pid}) and never finished: the worker died or the sweep was stopped"
        if planned.get(num) is not None:
            record.job_key = record.job_key or planned[num].job_key
        records.append(record)
    return records


def read_coefficients(record: JobRecord) -> pd.DataFrame | None:
    path = Path(record.dir) / "coefficients.csv" if record.status in OK_STATUSES and record.dir else None
    return pd.read_csv(path) if path is not None and path.exists() else None
