"""A run's or a sweep's directory, read generically: its kind, its jobs, the command that made
it and the config files it used (these two from Hydra's own record, which a hand-made sweep
may lack: `OutputDir.hydra` is then None). The report (`report/html.py`) and the
replication package (`package.py`) read directories through this module.

    outputs/runs/<time>/     a single run: .hydra/{config,hydra,overrides}.yaml; job.json once finished
    outputs/sweeps/<time>/   a sweep: sweep.json, multirun.yaml and one <num>_<overrides>/ per job
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eqexp.sweep.records import FAILED, FINISHED, job_records


class OutputDirError(ValueError):
    """The directory is not a run or a sweep of eqexp; the message says what was expected."""


@dataclass(frozen=True)
class Job:
    num: int
    label: str  # the overrides that tell it apart
    status: str  # finished | failed | skipped | never finished
    reason: str
    dir: Path | None  # None: the job never started
    fingerprint: str | None  # the data's


@dataclass(frozen=True)
class OutputDir:
    path: Path
    is_sweep: bool
    jobs: list[Job]
    root: Path  # the project directory the command ran in
    hydra: dict[str, Any] | None  # Hydra's config of the run or sweep (overrides, config sources, choices), if recorded


# libyaml's parser and emitter where PyYAML has them (its wheels do): the same documents, 5-7x
# faster than the pure-Python ones (a sweep's report reads every job's Hydra record).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def read_yaml(path: Path) -> Any:
    return yaml.load(Path(path).read_text(), Loader=_LOADER)


def yaml_text(data: Any) -> str:
    """`data` as YAML, keys in their order, any script as is."""
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text()) if Path(path).exists() else None


def open_dir(path: Path) -> OutputDir:
    """The run or sweep in `path`, or an `OutputDirError` saying why it is neither."""
    path = Path(path).resolve()
    if not path.is_dir():
        raise OutputDirError(f"{path} is not a directory. Give a run's or a sweep's directory, "
                             "e.g. outputs/runs/<time> or outputs/sweeps/<time>.")
    if (path / "sweep.json").exists():
        hydra = read_yaml(path / "multirun.yaml")["hydra"] if (path / "multirun.yaml").exists() else None
        root = hydra["runtime"]["cwd"] if hydra else read_json(path / "sweep.json")["context"]["root"]
        return OutputDir(path, True, _sweep_jobs(path), Path(root), hydra)
    if (path / ".hydra" / "hydra.yaml").exists():
        hydra = read_yaml(path / ".hydra" / "hydra.yaml")["hydra"]
        return OutputDir(path, False, [_run_job(path, hydra)], Path(hydra["runtime"]["cwd"]), hydra)
    raise OutputDirError(
        f"{path} is not an eqexp run or sweep: it has neither sweep.json (a sweep, outputs/sweeps/<time>) "
        "nor .hydra/hydra.yaml (a run, outputs/runs/<time>, or one job of a sweep).")


def _run_job(path: Path, hydra: dict[str, Any]) -> Job:
    done = read_json(path / "job.json")
    label = ",".join(hydra["overrides"]["task"]) or "default"
    if done is None:
        return Job(0, label, FAILED, "the run did not finish (it has no job.json); its log is run.log", path, None)
    return Job(0, label, done.get("status", FINISHED), "", path, done.get("fingerprint"))


def _sweep_jobs(path: Path) -> list[Job]:
    jobs = []
    for r in job_records(path):
        directory = Path(r.dir) if r.dir else None
        done = read_json(directory / "job.json") if directory else None
        jobs.append(Job(r.num, r.label, r.status, r.reason, directory, (done or {}).get("fingerprint") or r.fingerprint))
    return jobs


def resolved_config(job: Job) -> dict[str, Any] | None:
    path = job.dir / ".hydra" / "config.yaml" if job.dir else None
    return read_yaml(path) if path and path.exists() else None


def job_overrides(job: Job) -> list[str]:
    path = job.dir / ".hydra" / "overrides.yaml" if job.dir else None
    return list(read_yaml(path) or []) if path and path.exists() else []


def command(out: OutputDir, task: list[str] | None = None) -> list[str]:
    """The command as it was typed, rebuilt from Hydra's record (its config dirs and overrides);
    with `task`, the command of one job of a sweep alone: a single run with these overrides."""
    hydra = out.hydra
    args = ["python", "run.py"] + (["-m"] if out.is_sweep and task is None else [])
    for source in hydra["runtime"]["config_sources"]:
        if source["provider"] == "command-line":  # --config-dir
            args += ["--config-dir", source["path"]]
    if hydra["job"]["config_name"] != "config":
        args += ["--config-name", hydra["job"]["config_name"]]
    args += [o for o in hydra["overrides"]["hydra"] if not o.startswith("hydra.mode=")]
    return args + list(hydra["overrides"]["task"] if task is None else task)


def config_sources(out: OutputDir) -> list[Path]:
    """The folders Hydra composed from, in its search order (packaged defaults left out)."""
    return [Path(s["path"]) for s in out.hydra["runtime"]["config_sources"] if s["schema"] == "file"]


def config_files(out: OutputDir) -> list[tuple[Path, str]]:
    """(source folder, relative path) of every config file the run or its jobs chose, the primary config first."""
    choices = [out.hydra["runtime"]["choices"]]
    for job in out.jobs:
        path = job.dir / ".hydra" / "hydra.yaml" if job.dir else None
        if path and path.exists():
            choices.append(read_yaml(path)["hydra"]["runtime"]["choices"])
    names = [f"{out.hydra['job']['config_name']}.yaml"]
    for chosen in choices:
        for group, options in chosen.items():
            for option in options if isinstance(options, list) else [options]:
                if option is not None and f"{group}/{option}.yaml" not in names:
                    names.append(f"{group}/{option}.yaml")
    found = []
    for name in names:  # the first folder that has it, as Hydra looks it up
        source = next((s for s in config_sources(out) if (s / name).is_file()), None)
        if source is not None:
            found.append((source, name))
    return found
