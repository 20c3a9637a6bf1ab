"""A run's or a sweep's results as Python objects: what `eqexp.run`, `eqexp.sweep` and
`eqexp.load` return. They read the directory the command wrote (through `eqexp.rundir`), so a
past run reads exactly like a fresh one; nothing is kept in memory that the files do not hold.

    Run:    .coefficients .tests .rows .descriptives (DataFrames), .table(fmt), .figures,
            .config, .spec, .directory, .status, .mlflow_run_id
    Sweep:  the same where a sweep has it, and .jobs (each a Run), .summary, .combined
"""

from __future__ import annotations

import html
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from eqexp import rundir
from eqexp.inference import hypothesis

TABLE_FORMATS = ("md", "tex", "html", "txt", "docx")


def _csv(path: Path) -> pd.DataFrame:
    """A results file as a DataFrame; a run that wrote none (a failed job, a descriptives run) gives an empty one."""
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def _table(directory: Path, stem: str, fmt: str) -> str | Path:
    """The text of `stem.fmt` (md, tex, html, txt) or the path of the Word file (docx)."""
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"table format '{fmt}' is not one of {', '.join(TABLE_FORMATS)}.")
    found = sorted(directory.glob(f"{stem}.{fmt}"))
    if not found:
        have = sorted({p.suffix.lstrip(".") for p in directory.glob(f"{stem}.*")})
        raise FileNotFoundError(f"no {fmt} table ({stem}.{fmt}) in {directory}; the formats there: {', '.join(have) or 'none'}.")
    return found[0] if fmt == "docx" else "\n\n".join(p.read_text(encoding="utf-8") for p in found)


class Run:
    """One run (`python run.py ...`) or one job of a sweep, read from its directory."""

    def __init__(self, directory: Path, mlflow_run_id: str | None = None, status: str | None = None,
                 label: str | None = None) -> None:
        self.directory = Path(directory).resolve()
        self._job = rundir.open_dir(self.directory).jobs[0]
        self._mlflow_run_id = mlflow_run_id
        self.status = status or self._job.status
        self.label = label or self._job.label  # a sweep's job: the overrides that tell it apart

    def __repr__(self) -> str:
        return f"Run({self.label!r}, {self.status}, {self.directory})"

    @property
    def coefficients(self) -> pd.DataFrame:
        return _csv(self.directory / "coefficients.csv")

    @property
    def tests(self) -> pd.DataFrame:
        """tests.csv, typed as `hypothesis.read` reads it."""
        path = self.directory / "tests.csv"
        return hypothesis.read(path) if path.exists() else hypothesis.frame([])

    @property
    def rows(self) -> pd.DataFrame:
        return _csv(self.directory / "rows.csv")

    @property
    def descriptives(self) -> pd.DataFrame:
        return _csv(self.directory / "descriptives.csv")

    def table(self, fmt: str = "md") -> str | Path:
        """The publication table (its tests under it) as text, or the .docx file's path."""
        return _table(self.directory / "tables", "*", fmt)

    @property
    def figures(self) -> list[Path]:
        return sorted((self.directory / "figures").glob("*.png"))

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved configuration (.hydra/config.yaml)."""
        return rundir.resolved_config(self._job) or {}

    @cached_property
    def spec(self):
        """The typed, validated specification of the run (`eqexp.spec.Spec`)."""
        from eqexp.spec import load_spec

        return load_spec(self.config)

    @cached_property
    def mlflow_run_id(self) -> str | None:
        """The run's MLflow run: None when tracking was off (or the run never reached the store)."""
        return self._mlflow_run_id or _logged_run_id(self.directory)

    def _repr_html_(self) -> str:
        return _page(self, self.tests[["model", "test", "hypothesis", "p_value", "verdict"]])


def _logged_run_id(directory: Path) -> str | None:
    """A single run's MLflow run, found by what its record (`run.json`) says: name and start time."""
    from eqexp.tracking import RunRecord

    record = RunRecord.read(directory)
    if record is None or record.start_time is None:
        return None
    from mlflow.tracking import MlflowClient

    client = MlflowClient(record.uri)
    experiment = client.get_experiment_by_name(record.experiment)
    if experiment is None:
        return None
    name = record.name.replace("'", "\\'")
    found = client.search_runs([experiment.experiment_id], max_results=50,
                               filter_string=f"attributes.run_name = '{name}' and attributes.start_time = {record.start_time}")
    jobs = [r for r in found if "mlflow.parentRunId" not in r.data.tags]  # not the models nested under it
    return jobs[0].info.run_id if jobs else None


class Sweep:
    """A sweep (`python run.py -m ...`), read from its directory; its jobs are `Run`s."""

    def __init__(self, directory: Path, jobs: list[Run] | None = None) -> None:
        self.directory = Path(directory).resolve()
        self._jobs = jobs

    def __repr__(self) -> str:
        return f"Sweep({len(self.jobs)} jobs, {self.directory})"

    @cached_property
    def jobs(self) -> list[Run]:
        """Every job that started, in the sweep's order (`.summary` also lists those that never did)."""
        if self._jobs is not None:
            return self._jobs
        run_ids = {r["num"]: r.get("run_id") for r in rundir.read_json(self.directory / "jobs.json") or []}
        return [Run(job.dir, run_ids.get(job.num), job.status, job.label) for job in rundir.open_dir(self.directory).jobs
                if job.dir is not None and job.dir.is_dir()]

    def job(self, label: str) -> Run:
        """The job named by its overrides, e.g. `sweep.job("hetero=region")`."""
        for run in self.jobs:
            if run.label == label:
                return run
        raise KeyError(f"no job '{label}' in this sweep; its jobs: {', '.join(r.label for r in self.jobs)}")

    @property
    def summary(self) -> pd.DataFrame:
        """Every planned job: status, reason, key results (summary.csv)."""
        return _csv(self.directory / "summary.csv")

    @property
    def combined(self) -> pd.DataFrame:
        """Every job's treatment coefficients, long (combined_coefficients.csv)."""
        return _csv(self.directory / "combined_coefficients.csv")

    @property
    def coefficients(self) -> pd.DataFrame:
        """Every job's coefficients.csv, one frame, with the job's number and overrides in front."""
        frames = [run.coefficients.assign(job=i, overrides=run.label) for i, run in enumerate(self.jobs) if run.coefficients.size]
        return _front(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()

    @property
    def tests(self) -> pd.DataFrame:
        frames = [run.tests.assign(job=i, overrides=run.label) for i, run in enumerate(self.jobs) if len(run.tests)]
        return _front(pd.concat(frames, ignore_index=True)) if frames else hypothesis.frame([])

    def table(self, fmt: str = "md") -> str | Path:
        """The combined table: every job's treatment coefficients side by side."""
        return _table(self.directory, "combined", fmt)

    @property
    def figures(self) -> list[Path]:
        return sorted(self.directory.glob("*.png"))

    @cached_property
    def config(self) -> dict[str, Any]:
        """The sweep's configuration before its axes (multirun.yaml), Hydra's node left out."""
        found = rundir.read_yaml(self.directory / "multirun.yaml") if (self.directory / "multirun.yaml").exists() else {}
        return {k: v for k, v in found.items() if k != "hydra"}

    @property
    def spec(self) -> list:
        """Each job's typed specification, in `.jobs` order."""
        return [run.spec for run in self.jobs]

    @cached_property
    def mlflow_run_id(self) -> str | None:
        """The sweep's parent run."""
        return ((rundir.read_json(self.directory / "sweep.json") or {}).get("context") or {}).get("parent_run_id")

    def _repr_html_(self) -> str:
        summary = self.summary
        return _page(self, summary[[c for c in ("job", "overrides", "status", "reason", "estimate", "t", "n_obs") if c in summary]])


def _page(results: Run | Sweep, below: pd.DataFrame) -> str:
    """What Jupyter shows, as pyfixest's etable does: the table, and under it `below` (the tests, a sweep's summary)."""
    try:
        table = results.table("html")
    except FileNotFoundError:  # a failed run: it wrote no table
        table = f"<p>{html.escape(repr(results))}</p>"
    return table + (below.to_html(index=False) if len(below) else "")


def _front(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["job", "overrides", *[c for c in frame.columns if c not in ("job", "overrides")]]]


def load(source: str | Path, tracking_uri: str | None = None, into: Path | None = None) -> Run | Sweep:
    """A past run or sweep: its directory, or its MLflow run id (a sweep's: its parent run), read
    from the tracking store (`tracking_uri`, else $MLFLOW_TRACKING_URI, else outputs/mlflow.db)
    through its artifacts, downloaded into `into` (default: a new temporary folder)."""
    path = Path(source)
    if path.exists():
        out = rundir.open_dir(path)
        return Sweep(out.path) if out.is_sweep else Run(out.path)
    return _from_mlflow(str(source), tracking_uri, into)


def _from_mlflow(run_id: str, tracking_uri: str | None, into: Path | None) -> Run | Sweep:
    import tempfile

    from mlflow.tracking import MlflowClient

    from eqexp.compare import _default_uri

    client = MlflowClient(tracking_uri or _default_uri())
    client.get_run(run_id)  # MLflow's own error names a run the store does not have
    into = Path(into or tempfile.mkdtemp(prefix="eqexp-"))
    directory = Path(client.download_artifacts(run_id, "", str(into / run_id)))
    if not (directory / "sweep.json").exists():
        return Run(directory, run_id)
    jobs = []
    for record in rundir.read_json(directory / "jobs.json") or []:
        if record.get("run_id") and record.get("dir"):
            job_dir = Path(client.download_artifacts(record["run_id"], "", str(into / record["run_id"])))
            if (job_dir / ".hydra").is_dir():
                jobs.append(Run(job_dir, record["run_id"], record["status"], record["label"]))
    return Sweep(directory, jobs)
