"""Sweeps users can trust: plan, parent run, per-job status, resume, summary, side-by-side table.

A sweep (`python run.py -m hetero=ownership,region,period`) goes through four places:

1. `SweepCallback.on_multirun_start`, in the parent process before any job runs:
   starts the local workers (eqexp's launcher: forked with the first job's cached panel,
   whose pages they share, they import and compose beside the parent),
   claims a sweep directory no other sweep shares, reproduces Hydra's job list
   (`BasicSweeper.split_arguments`), composes and validates every job's spec once, builds
   each data cache once, caps the numerical libraries' threads for the workers, creates
   the MLflow store, the experiment and ONE parent run (through the command's MLflow
   process, `tracking.mlflow_process`, an `eqexp.helper` process, which loaded MLflow while Hydra composed),
   closes what killed sweeps left RUNNING (`runs.close_abandoned`), looks up earlier
   FINISHED runs (resume), and writes `sweep.json` (the plan).
2. `run_sweep_job`, in the worker, for every job: records `status/<num>.json` (started,
   then finished / failed / skipped), skips a job whose spec and data already have a
   FINISHED run (unless `force=true`), runs it, writes its MLflow run down (`run.json`),
   and catches its exception: a failed job is recorded (traceback in the job directory,
   its log, a FAILED run) and never stops the others.
3. `finish_sweep`, in the parent at the end of every sweep, also when a worker was
   killed and joblib aborted, or the sweep was stopped by SIGTERM or Ctrl-C (`run.py` calls
   `finish_open_sweeps` after Hydra returns or raises; it kills the jobs in flight first):
   every job's run is logged under the parent (skipped jobs get the earlier run's
   results, jobs that never finished a KILLED run), every planned job gets a line in
   `summary.{csv,md}` with its status and key results, the combined table and the
   coefficient plot are written and logged to the parent run, and the exit code says
   whether anything failed or never finished.
4. `python -m eqexp.compare` rebuilds the combined table and plot from a sweep directory
   or a parent run (see `eqexp.compare`).

The package, one idea a module; each imports only the modules listed before it:
`records` (JobRecord, SweepContext, `sweep.json` and `status/<num>.json`), `plan` (job
list, labels, job keys, task configs, cost estimates), `threads` (cores, threads per
worker, caps), `workers` (the local pool: warm-up, composed configs, dispatch order),
`stop` (SIGTERM as Ctrl-C; the jobs in flight killed), `runs` (the sweep's MLflow runs,
all logged by the parent; runs left RUNNING by a killed sweep closed), `job` (2.), `side_by_side`
(combined table and plot), `finish` (3.), `start` (1. and the Hydra callback, which calls
`finish`). Hydra's side of the local launcher and sweeper: `hydra_plugins/eqexp_sweeps`.
"""

from eqexp.sweep.records import (
    FAILED, FINISHED, NEVER, OK_STATUSES, PLAN_FILE, STATUS_DIR, JobRecord, job_records, read_coefficients, read_statuses,
    write_status,
)
from eqexp.sweep.plan import job_key, job_labels, planned_overrides
from eqexp.sweep.threads import cores, set_thread_env, threads_per_worker
from eqexp.sweep.job import key_results, run_sweep_job
from eqexp.sweep.side_by_side import combined_coefficients, combined_table, write_side_by_side
from eqexp.sweep.finish import exit_code, finish_sweep, main_with_summary, summary_frame
from eqexp.sweep.start import SweepCallback, _claim_sweep_dir  # noqa: F401  (_claim_sweep_dir: tests/test_sweep.py)

__all__ = [
    "FAILED", "FINISHED", "NEVER", "OK_STATUSES", "PLAN_FILE", "STATUS_DIR", "JobRecord", "job_records", "read_coefficients",
    "read_statuses", "write_status",
    "job_key", "job_labels", "planned_overrides",
    "cores", "set_thread_env", "threads_per_worker",
    "key_results", "run_sweep_job",
    "combined_coefficients", "combined_table", "write_side_by_side",
    "exit_code", "finish_sweep", "main_with_summary", "summary_frame",
    "SweepCallback",
]
