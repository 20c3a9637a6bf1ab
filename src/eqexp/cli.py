"""Glue between Hydra's job context and the runner.

A single run (`python run.py ...`) runs the job and raises on failure. A job of a sweep
(`python run.py -m ...`) goes through `eqexp.sweep.run_sweep_job`, which records its
outcome, skips it when an identical finished run exists, and never lets its failure stop
the other jobs; `run.py` ends every sweep with its summary (`eqexp.sweep.main_with_summary`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.types import RunMode
from omegaconf import DictConfig

from eqexp import sweep
from eqexp.data.validate import DataValidationError
from eqexp.inference import InferenceError
from eqexp.report.html import write_report
from eqexp.spec import SpecError
from eqexp.tracking import resolve_uri, ui_hint


def job_name(hydra_cfg) -> str:
    """A run is named after its overrides (e.g. `hetero=region`), or `default`."""
    return ",".join(hydra_cfg.overrides.task) or "default"


def run_from_hydra(cfg: DictConfig, hydra_cfg, root: Path) -> None:
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep.run_sweep_job(cfg, hydra_cfg, root)
        return
    from eqexp.model_runs import choices_of  # a sweep's parent never runs a job itself
    from eqexp.runner import run_job

    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        result = run_job(cfg, out_dir, root=root, run_name=job_name(hydra_cfg), choices=choices_of(hydra_cfg))
    except (SpecError, DataValidationError, InferenceError) as err:  # bad input: the message is the help, not a traceback
        print(f"[eqexp] {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    report = write_report(out_dir, root)
    where = [f"[eqexp] tables:  {out_dir / 'tables'}", f"[eqexp] results: {out_dir / 'coefficients.csv'}",
             f"[eqexp] report:  {report}"]
    if result.run_id:
        from mlflow.tracking import MlflowClient  # loaded already: the run was just logged

        uri = resolve_uri(result.spec.tracking, root)
        MlflowClient(uri).log_artifact(result.run_id, str(report))
        where.append(f"[eqexp] MLflow run {result.run_id} ({ui_hint(uri)})")
    print("\n".join(where))
