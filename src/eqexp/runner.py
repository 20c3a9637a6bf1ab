"""One job from spec to files and MLflow: the runner only wires the stages together.

    spec ─▶ data.load ─▶ prepare (lags, squares, sample, trim) ─▶ fit each planned model
         ─▶ inference (inverted U, group differences, mediation) ─▶ tables ─▶ files + MLflow
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from eqexp import analyses, tracking
from eqexp.analyses.descriptive import DESCRIPTIVES_FILE
from eqexp.data import load as data_load
from eqexp.inference import hypothesis
from eqexp.coefficients import coefficient_rows
from eqexp.cache import ProcessCache
from eqexp.estimate import Fit
from eqexp.model_runs import model_runs
from eqexp.models import plans
from eqexp.multiverse import NULL_DRAWS_FILE
from eqexp.panel import (Preparation, Step, add_interactions, add_lags, add_province_lags, add_square, apply_sample, apply_trim,
                         as_numbers, drop_infinite, province_series)
from eqexp.report.figures import Drawing, save_drawings
from eqexp.report.table import Table, to_text, write_table
from eqexp.spec import Spec, SpecError, check_variables, load_spec
from eqexp.terms import square_name


@dataclass
class JobResult:
    out_dir: Path
    spec: Spec
    fits: list[Fit] = field(default_factory=list)
    tests: pd.DataFrame = field(default_factory=lambda: hypothesis.frame([]))  # tests.csv
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Drawing] = field(default_factory=dict)  # file name in figures/ -> the figure to draw
    steps: list[Step] = field(default_factory=list)
    fingerprint: str = ""
    data_key: str | None = None  # names the prepared panel's content (see `preparation_key`)
    run_id: str | None = None
    seconds: float = 0.0
    null_draws: list[dict] = field(default_factory=list)  # a multiverse's (eqexp.multiverse.draws)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # other CSV files of numbers (descriptives.csv)


def prepare(panel: pd.DataFrame, spec: Spec, province_year: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[Step]]:
    """Numbers checked, lags on the full panel first (before any filter or split), squares, rows
    with infinite values out, then sample, then trimming; from the spec's `Preparation` alone,
    whose key names the result."""
    prep = Preparation.of(spec)
    df, x = as_numbers(panel, prep.numbers, prep.source), prep.treatment
    for k, variables in prep.lags.items():
        if prep.lag_unit == "province" and x in variables:
            df = add_province_lags(df, x, k, province_series(panel, x, province_year, prep.time), prep.time)
            variables = [v for v in variables if v != x]
        df = add_lags(df, variables, k, prep.id, prep.time)
    for variable in prep.squares:
        if square_name(variable) not in df:
            df = add_square(df, variable)
    df = add_interactions(df, list(prep.interacted))
    df, infinite_steps = drop_infinite(df, [*prep.numbers, *(c for c in df.columns if c not in panel.columns)])
    df, sample_steps = apply_sample(df, prep.sample)
    df, trim_steps = apply_trim(df, prep.trim)
    return df, infinite_steps + sample_steps + trim_steps


def _prepare_loaded(loaded: data_load.Loaded, spec: Spec) -> tuple[pd.DataFrame, list[Step]]:
    extra = loaded.directory / "province_year.parquet"
    return prepare(loaded.panel, spec, pd.read_parquet(extra) if extra.exists() and spec.lags.unit == "province" else None)


def _job_metrics(result: JobResult, steps: list[Step]) -> dict[str, float]:
    """What means the same in every job: its own steps and its job-level tests (group
    differences, mediation). Each model's numbers go to its nested run (`model_runs`)."""
    columns = {f.model for f in result.fits}
    metrics: dict[str, float] = {"n_models": len(result.fits)}
    for row in result.tests[result.tests.reject.notna()].itertuples():
        if row.model not in columns:
            name = f"{row.model}.{row.test}.{row.hypothesis}"
            metrics |= {f"{name}.{stat}": getattr(row, stat) for stat in ("estimate", "statistic", "p_value")}
            metrics[f"{name}.reject"] = float(row.reject)
    for row in result.frames[DESCRIPTIVES_FILE].to_dict("records") if DESCRIPTIVES_FILE in result.frames else []:
        variable = row.pop("variable")
        metrics |= {f"{variable}.describe.{k}": v for k, v in row.items()}
    for step in steps:
        metrics[f"rows_dropped.{step.step.split(':')[0]}"] = step.dropped
        if step.changed:
            metrics[f"rows_changed.{step.step}"] = step.changed
    return {tracking.metric_name(k): float(v) for k, v in metrics.items() if math.isfinite(v)}



def write_outputs(result: JobResult) -> None:
    out = result.out_dir
    out.mkdir(parents=True, exist_ok=True)
    figures_saved = save_drawings(result.figures, out / "figures")  # first: a helper process may draw them meanwhile
    if result.fits:
        coefficient_rows(result.fits).to_csv(out / "coefficients.csv", index=False)
    if result.null_draws:  # read by the multiverse's curve (eqexp.multiverse.curve)
        (out / NULL_DRAWS_FILE).write_text(json.dumps(result.null_draws))
    result.tests.to_csv(out / "tests.csv", index=False)
    for name, frame in result.frames.items():
        frame.to_csv(out / name, index=False)
    pd.DataFrame([s.as_dict() for s in result.steps]).to_csv(out / "rows.csv", index=False)
    for name, table in result.tables.items():
        write_table(table, out / "tables", name)
    figures_saved()


def run_job(
    config: DictConfig | dict | Spec,
    out_dir: Path,
    root: Path = Path("."),
    run_name: str = "job",
    tags: dict[str, str] | None = None,
    log: bool = True,
    choices: dict[str, str] | None = None,
    cache: ProcessCache | None = None,
) -> JobResult:
    """Run one job; write its files into `out_dir`, and its MLflow run (with extra `tags`) with
    a nested run per model (params `choice.<group>` from Hydra's `choices`): logged now, or
    (`log=False`, a sweep's job) written to `run.json` for the sweep to log. `cache`: what the
    process keeps between its jobs (a sweep's: `eqexp.cache.PROCESS`), else the job's own."""
    start, started_ms = time.perf_counter(), int(time.time() * 1000)
    spec = config if isinstance(config, Spec) else load_spec(config)
    artifacts = (root / spec.tracking.artifact_root).resolve()
    if spec.tracking.enabled and artifacts.is_relative_to(out_dir.resolve()):
        raise SpecError(f"tracking.artifact_root ({artifacts}) is inside the run's directory {out_dir}: "
                        "MLflow would copy the run into itself. Put it elsewhere, e.g. outputs/mlartifacts.")
    cache = cache if cache is not None else ProcessCache()
    loaded = cache.load(spec.data)
    check_variables(spec, loaded.panel.columns)
    data_key = Preparation.of(spec).key(loaded.fingerprint, loaded.panel)
    df, steps = cache.prepare(data_key, lambda: _prepare_loaded(loaded, spec))
    found = analyses.run(df, spec, data_key, cache)
    steps = steps + [replace(s, step=f"{f.model} {s.step}") for f in found.fits for s in f.steps]
    result = JobResult(out_dir=out_dir, spec=spec, fits=found.fits, tests=found.tests_frame(), tables=found.tables,
                       figures=found.figures, null_draws=found.null_draws, frames=found.frames, steps=steps, fingerprint=loaded.fingerprint,
                       data_key=data_key)
    write_outputs(result)
    for table in result.tables.values():
        print("\n" + to_text(table) + "\n", flush=True)
    for step in result.steps:
        if step.dropped or step.changed:
            print(f"[eqexp] {step.step}: {step.dropped:,} of {step.rows_in:,} rows dropped, {step.changed:,} changed ({step.reason})")
    result.seconds = time.perf_counter() - start
    status = {"status": "finished", "seconds": result.seconds, "fingerprint": loaded.fingerprint}
    (out_dir / "job.json").write_text(json.dumps(status))
    if loaded.build:  # the data's build log travels with every job that used it
        shutil.copy(loaded.directory / "build_log.json", out_dir / "build_log.json")
    if spec.tracking.enabled:
        params = tracking.flatten(OmegaConf.to_container(OmegaConf.structured(spec)))
        params |= tracking.flatten({"build": (loaded.build or {}).get("options", {})})
        all_tags = {"data_fingerprint": loaded.fingerprint, "analysis": spec.analysis, **(tags or {})}
        record = tracking.run_record(spec.tracking, root, run_name, params, _job_metrics(result, steps), all_tags, out_dir, start_time=started_ms)
        record.children = model_runs(result.fits, result.tests, spec.model.treatment, plans(spec), choices or {}, run_name)
        if log:
            result.run_id = tracking.log_run(record, root)
        else:
            record.save()
    return result
