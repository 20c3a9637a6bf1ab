"""Glue between Hydra's job context and the runner.

A single run (`python run.py ...`) runs the job and raises on failure. A job of a sweep
(`python run.py -m ...`) goes through `eqexp.sweep.job.run_recorded`, which records its
outcome, skips it when an identical finished run exists, and never lets its failure stop
the other jobs; `run.py` ends every sweep with its summary (`eqexp.sweep.finish.main_with_summary`).
`command` is the whole of `run.py`'s command, for the shell and for `eqexp.api`, which runs
`run.py` in its own process and raises `failure`, the exception the command reported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from hydra.types import RunMode
from omegaconf import DictConfig

from eqexp.data.validate import DataValidationError
from eqexp.inference import InferenceError
from eqexp.report import figures
from eqexp.report.html import write_report
from eqexp.spec import SpecError, load_spec
from eqexp.tracking import BackgroundLogger, RunRecord, TrackingError, discard_preloaded, resolve_uri, ui_hint


def job_name(hydra_cfg) -> str:
    """A run is named after its overrides (e.g. `hetero=region`), or `default`."""
    return ",".join(hydra_cfg.overrides.task) or "default"


BAD_INPUT = (SpecError, DataValidationError, InferenceError)

failure: BaseException | None = None  # why the last `command` failed: what `eqexp.api` raises
run_dir: Path | None = None  # where the last single run wrote its results: what `eqexp.api` reads


def command(main: Callable[[], None]) -> int:
    """Hydra's `main()` and every sweep's summary; the exit code. Hydra exits on the first failed
    job or when a worker dies, skipping `on_multirun_end`: `main_with_summary` still writes every
    sweep's summary. With HYDRA_FULL_ERROR=1 Hydra re-raises a failure, which is kept in `failure`."""
    global failure, run_dir
    failure = run_dir = None

    def main_keeping_failure() -> None:
        global failure
        try:
            main()
        except Exception as err:
            failure = failure or err
            raise

    from eqexp.sweep.finish import main_with_summary  # the sweep layer, only for a command that runs

    return main_with_summary(main_keeping_failure)


def _exit_with(err: Exception, code: int = 2) -> None:
    """Bad input (or a store that cannot be used): the message is the help, not a traceback."""
    global failure
    failure = err
    print(f"[eqexp] {type(err).__name__}: {err}", file=sys.stderr, flush=True)
    raise SystemExit(code) from None


def run_from_hydra(cfg: DictConfig, hydra_cfg, root: Path) -> None:
    if hydra_cfg.mode == RunMode.MULTIRUN:  # a job of a sweep on another launcher than eqexp's (Ray, SLURM)
        from eqexp.sweep.job import run_recorded

        run_recorded(cfg, hydra_cfg)
        return
    from eqexp.model_runs import choices_of  # a sweep's parent never runs a job itself
    from eqexp.runner import run_job

    global run_dir
    out_dir = Path(hydra_cfg.runtime.output_dir)
    run_dir = out_dir.resolve()
    try:
        spec = load_spec(cfg)
    except BAD_INPUT as err:
        _exit_with(err)
    if not spec.tracking.enabled:
        discard_preloaded()  # nothing to log: the MLflow process started for it ends
    if not spec.report.figures:
        figures.discard_preloaded()
    logger = BackgroundLogger(spec.tracking, root) if spec.tracking.enabled else None
    try:
        run_job(spec, out_dir, root=root, run_name=job_name(hydra_cfg), choices=choices_of(hydra_cfg), log=False)
    except BaseException as err:
        if logger is not None:
            logger.close()
        if isinstance(err, BAD_INPUT):
            _exit_with(err)
        raise
    report = write_report(out_dir, root)
    where = [f"[eqexp] tables:  {out_dir / 'tables'}", f"[eqexp] results: {out_dir / 'coefficients.csv'}",
             f"[eqexp] report:  {report}"]
    if logger is not None:  # the run's record, logged with everything the run wrote (the report too)
        try:
            run_id = logger.log(RunRecord.read(out_dir))
        except TrackingError as err:  # the results are written; only their MLflow run is missing
            print("\n".join(where), flush=True)
            _exit_with(err, code=1)
        where.append(f"[eqexp] MLflow run {run_id} ({ui_hint(resolve_uri(spec.tracking, root))})")
    print("\n".join(where))
