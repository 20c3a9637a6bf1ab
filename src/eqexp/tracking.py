"""MLflow logging: one run per job, in a SQLite store under outputs/ or a shared store
(a PostgreSQL database, a tracking server: `tracking.uri`, `$MLFLOW_TRACKING_URI`).

The store and the experiment are created once, by the process that starts the work
(run.py for one job, the sweep callback for a sweep), never by several workers at once.
Runs are logged with batched calls; a SQLite database runs in WAL mode so that concurrent
workers do not block each other. Every run names the process that logs it (`eqexp.owner`),
so that a run left RUNNING by a process that is gone can be told from a live one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import platform
import re
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from eqexp import helper
from eqexp.spec import TrackingSpec

_PACKAGES = ("eqexp", "pyfixest", "pandas", "numpy", "hydra-core", "mlflow")
_BATCH = 900  # MLflow accepts at most 1000 metrics and 100 params per batch call
OWNER_TAG = "eqexp.owner"  # host:pid of the process that creates and ends the run
_DRIVERS = {"postgresql": 'pip install -e ".[postgres]"', "mysql": "pip install pymysql"}


def metric_name(text: str) -> str:
    """MLflow accepts letters, digits, `_ - . / ` in names: `(2) trim P5–P95` -> `m2_trim_P5-P95`."""
    text = re.sub(r"\((\d+)\)", r"m\1", text).replace("–", "-")
    return re.sub(r"[^\w./-]+", "_", text).strip("_")


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def shown(uri: str) -> str:
    """The URI without its password, for messages."""
    return re.sub(r"//([^/:@]+):[^/@]+@", r"//\1:***@", uri)


def ui_hint(uri: str) -> str:
    """How to see the store's runs."""
    return f"open {uri}" if is_server(uri) else f"mlflow ui --backend-store-uri {shown(uri)}"


def store_error(uri: str, err: Exception) -> str:
    """Why the store cannot be used, and what to do."""
    text = f"Cannot log to the MLflow store {shown(uri)}: {type(err).__name__}: {err}"
    if isinstance(err, ModuleNotFoundError):
        scheme = uri.split(":", 1)[0].split("+")[0]
        return f"{text}. Install its database driver: {_DRIVERS.get(scheme, f'the SQLAlchemy driver of {scheme}')}."
    return f"{text}. Check tracking.uri (or MLFLOW_TRACKING_URI) and that the database or tracking server is up."


def resolve_uri(spec: TrackingSpec, root: Path) -> str:
    """Relative SQLite paths are relative to the project root, whatever the job's cwd."""
    path = sqlite_path(spec.uri)
    if path is not None and not path.is_absolute():
        return f"sqlite:///{(root / path).resolve()}"
    return spec.uri


def ensure_experiment(spec: TrackingSpec, root: Path) -> str:
    """Create the store (WAL mode) and the experiment if needed; return the experiment id."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = resolve_uri(spec, root)
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(db) as con:
            con.execute("PRAGMA journal_mode=WAL")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(spec.experiment)
    # MLflow 3's UI opens GenAI pages unless the experiment says it holds ordinary runs
    kind = ("mlflow.experimentKind", "custom_model_development")
    if found is None:
        # a tracking server keeps the artifacts itself (its --artifacts-destination), so that
        # every machine's runs land there; other stores write them to tracking.artifact_root
        artifacts = None if is_server(uri) else (root / spec.artifact_root).resolve().as_uri()
        return client.create_experiment(spec.experiment, artifact_location=artifacts, tags=dict([kind]))
    if kind[0] not in found.tags:
        client.set_experiment_tag(found.experiment_id, *kind)
    return found.experiment_id


@functools.cache  # one look-up per process, not one per logged run
def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def environment_tags(root: Path) -> dict[str, str]:
    return {"git_commit": git_commit(root), "python": platform.python_version(), OWNER_TAG: owner(), **_versions()}


@functools.cache  # installed versions do not change while a process runs; each look-up scans site-packages
def _versions() -> dict[str, str]:
    found = {}
    for package in _PACKAGES:
        try:
            found[f"version.{package}"] = version(package)
        except Exception:  # a package missing from this environment is simply not tagged
            continue
    return found


_PARAM_NAME = re.compile(r"^[/\w.\- :]*$")  # what MLflow accepts in a param's name (a label may hold more)


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """{'model': {'controls': [...]}} -> {'model.controls': '[...]'} for MLflow params. Keys MLflow
    cannot name a param by (`report.labels` of a title with brackets) go together, as JSON, under
    their mapping's own name (`report.labels`)."""
    flat: dict[str, str] = {}
    unnamed: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if not _PARAM_NAME.match(str(key)) or os.path.normpath(name) != name:
            unnamed[str(key)] = value
        elif isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value, default=str) if not isinstance(value, str) else value
    if unnamed:
        flat[prefix.rstrip(".")] = json.dumps(unnamed, default=str, ensure_ascii=False)
    return flat


@dataclass
class RunRecord:
    """One MLflow run, written down: whichever process logs it (a sweep's parent logs its jobs'
    runs, so that workers never load MLflow)."""

    uri: str
    experiment: str
    artifact_root: str
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: str  # the directory logged as the run's artifacts
    status: str = "FINISHED"
    start_time: int | None = None  # ms since the epoch
    end_time: int | None = None
    children: list[dict] = field(default_factory=list)  # nested runs (a job's models): name, params, metrics, tags

    FILE = "run.json"

    def save(self) -> Path:
        path = Path(self.artifacts) / self.FILE
        path.write_text(json.dumps(dataclasses.asdict(self), default=str))
        return path

    @classmethod
    def read(cls, directory: Path) -> "RunRecord | None":
        path = Path(directory) / cls.FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


def run_record(spec: TrackingSpec, root: Path, name: str, params: dict[str, str], metrics: dict[str, float],
               tags: dict[str, str], artifacts: Path, status: str = "FINISHED", start_time: int | None = None) -> RunRecord:
    return RunRecord(resolve_uri(spec, root), spec.experiment, str((root / spec.artifact_root).resolve()), name, params,
                     {k: float(v) for k, v in metrics.items()}, tags, str(artifacts), status, start_time, int(time.time() * 1000))


def log_run(record: RunRecord, root: Path, parent_run_id: str | None = None) -> str:
    """Log one run (a child of `parent_run_id` in a sweep) and its nested runs; return its id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(record.uri)
    if parent_run_id is None:
        experiment_id = ensure_experiment(TrackingSpec(uri=record.uri, experiment=record.experiment, artifact_root=record.artifact_root), root)
    else:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
    tags = {**environment_tags(root), **record.tags}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run_id = _create_run(client, experiment_id, record.name, tags, record.params, record.metrics, record.start_time)
    client.log_artifacts(run_id, record.artifacts)
    for child in record.children:
        # not the job's own tags: a model run must never pass for a finished job (`job_key`, resume)
        child_tags = {**environment_tags(root), **child["tags"], "mlflow.parentRunId": run_id}
        child_id = _create_run(client, experiment_id, child["name"], child_tags, child["params"], child["metrics"], record.start_time)
        client.set_terminated(child_id, status=record.status, end_time=record.end_time)
    client.set_terminated(run_id, status=record.status, end_time=record.end_time)
    return run_id


_ROLE = "logging to MLflow"


def _load_mlflow() -> None:
    """What the MLflow helper loads at once: 1.9 CPU s measured in that process on this project's
    2-core machine (opening the store comes after, with the first call)."""
    import mlflow.tracking  # noqa: F401  (the point of this process)
    # and the SQL store, eqexp's default (SQLite) and PostgreSQL's: its import is most of opening one
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def preload() -> None:
    """Start loading MLflow in its own process now (`eqexp.helper`), so that the import overlaps
    Hydra's composing and the job; the first `mlflow_process()` takes it."""
    helper.preload(_ROLE, _load_mlflow, TrackingError)


def mlflow_process() -> helper.Helper:
    """The preloaded MLflow process, or a new one."""
    return helper.take(_ROLE, _load_mlflow, TrackingError)


def discard_preloaded() -> None:
    """This command logs nothing: end the preloaded process."""
    helper.discard(_ROLE)


def off_on_command_line(overrides: list[str]) -> bool:
    """Does the command line turn tracking off? Then no MLflow process is started for it (one
    turned off otherwise, in a preset or a config file, ends once the config is composed)."""
    return helper.on_command_line(overrides, {"tracking=off", "tracking.enabled=false", "tracking.enabled=False"})


class BackgroundLogger:
    """Logs one run from the MLflow process (`mlflow_process`), which opens the store while the job computes. `log`
    hands the job's record over and waits for its run id; `close` ends the process when
    nothing is to be logged (a failed job)."""

    def __init__(self, spec: TrackingSpec, root: Path):
        self._process, self._root = mlflow_process(), root
        self._ready = self._process.submit(_open_store, spec, root)

    def log(self, record: RunRecord) -> str:
        try:
            problem = self._ready.get()
            if problem:
                raise TrackingError(problem)
            return self._process.submit(log_run, record, self._root).get()
        except TrackingError:
            raise
        except Exception as err:
            raise TrackingError(f"{type(err).__name__}: {err}") from err
        finally:
            self._process.close()

    def close(self) -> None:
        self._process.close()


class TrackingError(RuntimeError):
    """Logging to MLflow failed; the message says why and what to do."""


def _open_store(spec: TrackingSpec, root: Path) -> str | None:
    """Create the store and experiment now; why it cannot be used, or None."""
    try:
        ensure_experiment(spec, root)
        return None
    except Exception as err:  # reported when the record arrives: the job itself must not wait on it
        return store_error(resolve_uri(spec, root), err)


def _create_run(client, experiment_id: str, name: str, tags: dict[str, str], params: dict[str, str],
                metrics: dict[str, float], start_time: int | None) -> str:
    """A run with its params and metrics, logged in batches; still running."""
    from mlflow.entities import Metric, Param

    run_id = client.create_run(experiment_id, run_name=name, tags=tags, start_time=start_time).info.run_id
    now = int(time.time() * 1000)
    metric_list = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and math.isfinite(float(v))]
    param_list = [Param(k[:250], v[:6000]) for k, v in params.items()]
    for i in range(max(-(-len(metric_list) // _BATCH), -(-len(param_list) // 100))):  # both in one call while both fit
        client.log_batch(run_id, metrics=metric_list[i * _BATCH : (i + 1) * _BATCH], params=param_list[i * 100 : (i + 1) * 100])
    return run_id
