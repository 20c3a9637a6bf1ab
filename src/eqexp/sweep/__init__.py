"""Sweeps users can trust: plan, parent run, per-job status, resume, summary, side-by-side table
(docs/sweeps.md). This package imports only what a sweep directory says (`records`), so that
reading one pulls in nothing else; each module is imported where it is used."""

from eqexp.sweep.records import (  # noqa: F401
    FAILED, FINISHED, NEVER, OK_STATUSES, PLAN_FILE, STATUS_DIR, JobRecord, job_records, read_coefficients, read_statuses, write_status,
)
