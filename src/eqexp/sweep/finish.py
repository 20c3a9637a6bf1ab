"""The end of a sweep, in the parent: the summary of every planned job, the exit code, KILLED
runs for jobs that never finished, the parent run closed; `main_with_summary` makes sure it
happens even when Hydra raised. The sweeps a command started are the one piece of state it
keeps (`_SWEEPS`): Hydra may raise past the sweeper, and the command still owes their summary."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eqexp.multiverse.curve import finish_multiverse
from eqexp.sweep import runs, stop
from eqexp.sweep.plan import Plan
from eqexp.sweep.records import (FAILED, FINISHED, NEVER, OK_STATUSES, PLAN_FILE, SKIPPED, JobRecord, SweepContext, job_records,
                                 read_coefficients, read_plan, write_json)
from eqexp.sweep.side_by_side import combined_coefficients, key_results, write_side_by_side
from eqexp.sweep.workers import Call, Pool
from eqexp.tracking import ui_hint


@dataclass
class Sweep:
    """What one sweep owns in its parent: its context, plan, local workers and job logger."""

    ctx: SweepContext
    plan: Plan
    pool: Pool | None = None
    logger: runs.JobLogger | None = None
    code: int | None = None  # its exit code, once summarised


_SWEEPS: dict[str, Sweep] = {}  # the sweeps this command started, by directory


def register(sweep: Sweep) -> Sweep:
    _SWEEPS[sweep.ctx.sweep_dir] = sweep
    return sweep


_SUMMARY = ["job", "overrides", "status", "reason", "model", "term", "estimate", "t", "n_obs", "run_id", "reused_run_id", "seconds", "dir"]


def summary_frame(records: list[JobRecord], coefficients: dict[int, pd.DataFrame]) -> pd.DataFrame:
    rows = [{"job": r.num, "overrides": r.label, "status": r.status, "reason": r.reason, "model": "", "term": "",
             **key_results(coefficients.get(r.num), r.treatment), "run_id": r.run_id or "", "reused_run_id": r.reused_run_id or "",
             "seconds": round(r.seconds, 2) if r.seconds else np.nan, "dir": r.dir or ""} for r in records]
    return pd.DataFrame(rows, columns=_SUMMARY)


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column == "n_obs":
        return f"{int(value):,}"
    return f"{value:.{2 if column == 't' else 4}f}" if isinstance(value, float) else str(value).replace("\n", " ")


def summary_text(summary: pd.DataFrame, markdown: bool = False) -> str:
    """The summary as a Markdown table, or (for the terminal) aligned columns."""
    counts = summary.status.value_counts()
    head = f"Sweep summary: {len(summary)} jobs: " + ", ".join(f"{counts[s]} {s}" for s in (FINISHED, SKIPPED, FAILED, NEVER) if counts.get(s, 0))
    columns = ["job", "overrides", "status", "model", "term", "estimate", "t", "n_obs", "reason"]
    cells = [[_cell(c, row[c]) for c in columns] for _, row in summary.iterrows()]
    if markdown:
        rows = [columns, ["---:", *[":---"] * 4, *["---:"] * 3, ":---"], *[[c.replace("|", "\\|") for c in row] for row in cells]]
        return "\n".join([f"**{head}**", "", *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"
    shown = [[c if len(c) <= 90 else c[:87] + "..." for c in row] for row in cells]
    widths = [max(len(x) for x in col) for col in zip(columns, *shown)]
    rule = "-" * min(160, sum(widths) + 2 * len(widths))
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [columns, *shown]]
    return "\n".join([head, rule, lines[0], rule, *lines[1:], rule])


def _mlflow(what: str, call: Any, function: Any, *args: Any) -> Any:
    """`call(function, *args)`; MLflow trouble never costs a sweep its summary: it is reported instead."""
    try:
        return call(function, *args)
    except Exception as err:
        print(f"[eqexp] could not {what}: {err}", flush=True)
        return None


def _log_jobs(call: Any, ctx: SweepContext, records: list[JobRecord], what: str) -> None:
    """The jobs' runs logged (by `call`, maybe in another process) and their ids put in `records`."""
    for r, run_id in zip(records, _mlflow(what, call, runs.log_jobs, ctx, records, Path(ctx.root)) or []):
        r.run_id = run_id


def _report(sweep_dir: Path, root: Path) -> list[Path]:
    """The sweep's report.html; trouble writing it costs the sweep nothing else (it is reported)."""
    from eqexp.report.html import write_report

    try:
        return [write_report(sweep_dir, root)]
    except Exception as err:
        print(f"[eqexp] could not write the report: {type(err).__name__}: {err}", flush=True)
        return []


def finish_sweep(sweep_dir: Path, aborted: bool = False) -> int:
    """Summary, combined table, plot, parent run; print where they are; return the exit code."""
    sweep_dir = Path(sweep_dir).resolve()
    sweep = _SWEEPS.get(str(sweep_dir)) or Sweep(SweepContext.from_dict(read_plan(sweep_dir).get("context") or {"sweep_dir": str(sweep_dir),
                                                                                                               "root": str(Path.cwd())}), Plan())
    ctx, records = sweep.ctx, job_records(sweep_dir)
    call = sweep.logger.parent.call if sweep.logger is not None else (lambda function, *args: function(*args))
    if sweep.logger is not None:
        sweep.logger.stop(records)
    tracked = ctx.parent_run_id and ctx.tracking_uri
    if tracked:  # skipped jobs' results come from their earlier runs, before anything reads them
        _log_jobs(call, ctx, [r for r in records if r.status == SKIPPED], "copy the results of skipped jobs")
    coefficients = {r.num: c for r in records if (c := read_coefficients(r)) is not None}
    long = combined_coefficients(records, coefficients)
    # drawn by a local worker when the sweep has one (matplotlib is loaded there), while this process logs the jobs' runs
    drawing = Call(sweep.pool, write_side_by_side, records, long, sweep_dir, f"Sweep {sweep_dir.name}: treatment coefficients across jobs")
    if tracked:
        _log_jobs(call, ctx, records, "log the jobs' runs")
    summary = summary_frame(records, coefficients)
    summary.to_csv(sweep_dir / "summary.csv", index=False)
    (sweep_dir / "summary.md").write_text(summary_text(summary, markdown=True))
    write_json(sweep_dir / "jobs.json", [dataclasses.asdict(r) for r in records])
    written = drawing.result()  # the report embeds the combined table and plot: wait for them
    if sweep.pool is not None:
        sweep.pool.kill()
    report = _report(sweep_dir, Path(ctx.root))
    print(summary_text(summary), flush=True)
    curve_files, curve_metrics = finish_multiverse(sweep_dir, records, ctx.multiverse) if ctx.multiverse else ([], {})
    sweep.code = 0 if summary.status.isin(OK_STATUSES).all() else 1
    counts = summary.status.value_counts()
    if tracked:
        metrics = {"jobs_planned": len(summary), **{f"jobs_{s.replace(' ', '_')}": int(counts.get(s, 0)) for s in (FINISHED, SKIPPED, FAILED, NEVER)}}
        artifacts = [sweep_dir / name for name in ("summary.csv", "summary.md", "jobs.json", PLAN_FILE)] + written + report + curve_files
        status = "FINISHED" if sweep.code == 0 else ("KILLED" if aborted else "FAILED")
        _mlflow("finish the MLflow parent run", call, runs.finish_parent_run, ctx, metrics | curve_metrics, artifacts, status)
    if sweep.logger is not None:
        sweep.logger.parent.close()
    print(f"[eqexp] sweep directory: {sweep_dir}", flush=True)
    print(f"[eqexp] summary: {sweep_dir / 'summary.md'}   combined table: {sweep_dir / 'combined.md'}   plot: {sweep_dir / 'coefplot.png'}", flush=True)
    if report:
        print(f"[eqexp] report: {report[0]}", flush=True)
    if ctx.parent_run_id:
        print(f"[eqexp] MLflow parent run {ctx.parent_run_id}: {ui_hint(ctx.tracking_uri)}", flush=True)
    if sweep.code:
        print(f"[eqexp] {counts.get(FAILED, 0)} job(s) failed and {counts.get(NEVER, 0)} never finished; "
              "re-run the same command to complete only those.", flush=True)
    return sweep.code


def finish_open_sweeps(aborted: bool = True) -> int:
    """Summarise every sweep this command started and did not summarise (Hydra raised, a worker
    died, the sweep was stopped), once the jobs still in flight are killed; the largest exit code."""
    open_sweeps = [s for s in _SWEEPS.values() if s.code is None]
    if open_sweeps:
        stop.kill_jobs([s.pool for s in open_sweeps if s.pool is not None])
    for sweep in open_sweeps:
        try:
            finish_sweep(Path(sweep.ctx.sweep_dir), aborted=aborted)
        except Exception:
            traceback.print_exc()
            sweep.code = 1
    return max([s.code or 0 for s in _SWEEPS.values()], default=0)


def main_with_summary(main: Any) -> int:
    """Run Hydra's `main()`, then make sure every sweep ends with its summary (also when a worker
    died and Hydra exited, or the sweep was stopped); return the exit code."""
    from eqexp import tracking
    from eqexp.report import figures

    code = 0
    try:
        # MLflow and matplotlib load in their own processes while Hydra composes (`eqexp.helper`)
        if not tracking.off_on_command_line(sys.argv[1:]):
            tracking.preload()
        figures.preload(sys.argv[1:])
        main()
    except SystemExit as exiting:
        code = exiting.code if isinstance(exiting.code, int) else (0 if exiting.code is None else 1)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (stop.Stopped)
        print(f"[eqexp] {str(interrupt) or 'interrupted'}", file=sys.stderr, flush=True)
        code = getattr(interrupt, "exit_code", 130)
    except BaseException:
        traceback.print_exc()
        code = 1
    code = max(code, finish_open_sweeps(aborted=True))
    figures.discard_preloaded()
    return code
