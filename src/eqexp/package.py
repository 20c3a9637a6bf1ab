"""A replication package for a run or a sweep, as journals ask for it:

    python -m eqexp.package outputs/sweeps/<time>            # -> outputs/sweeps/<time>/replication_package.zip
    python -m eqexp.package outputs/runs/<time> --out paper/replication.zip

Inside the zip, under `replication/`:

    README.md               the sections of the AEA Data Editor's template README, with the commands
    reproduce.sh            unpacks the code, installs the locked environment, runs the commands
    code/eqexp-<commit>.tar.gz   eqexp's source at the commit that made the results (git archive)
    config/resolved/        every job's resolved configuration and overrides (Hydra's .hydra/ files)
    config/files/           the config files the jobs chose, at their paths in the project
    environment/            requirements.txt (every package pinned ==) and environment.json
    data/<fingerprint>/     the data's configuration and build log; never the data itself
    results/                the tables, figures, coefficients, tests and report.html as the run wrote them
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from eqexp import environment
from eqexp.rundir import (
    FINISHED,
    OutputDir,
    OutputDirError,
    command,
    config_files,
    config_sources,
    job_overrides,
    open_dir,
    read_json,
    resolved_config,
    yaml_text,
)
from eqexp.sweep.records import OK_STATUSES

ZIP_NAME = "replication_package.zip"
TOP = "replication"
# Overrides that say where this machine kept its MLflow store and data cache: a replicator's differ.
MACHINE_KEYS = ("outputs", "tracking", "data.cache_dir", "hydra.run.dir", "hydra.sweep.dir")
DATA_SUFFIXES = {".parquet", ".feather", ".arrow", ".dta", ".sav", ".sas7bdat", ".pkl", ".pickle", ".h5", ".hdf5"}
# Bookkeeping of the run, packaged elsewhere (configs, environment, build log) or not at all (local paths, run ids).
NOT_RESULTS = {".hydra", "status", "run.json", "sweep.json", "jobs.json", "multirun.yaml", environment.FILE, "build_log.json"}
OUTPUT = "../reproduced"  # where the commands write, relative to the unpacked code


class PackageError(RuntimeError):
    """A package that cannot be built; the message says why and what to do."""


# --- commands ---------------------------------------------------------------------------


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _machine(override: str) -> bool:
    key = _key(override)
    return any(key == k or key.startswith(k + ".") for k in MACHINE_KEYS)


def portable_paths(out: OutputDir) -> dict[str, str]:
    """Absolute paths of this machine -> their place for the replicator (run from the unpacked code):
    inside the project, relative to it; an outside config folder, its copy in the package."""
    paths = {str(source): f"../config/files/external/{source.name}" for source in config_sources(out)
             if not source.is_relative_to(out.root)}
    return paths | {str(out.root) + "/": "", str(out.root): "."}


def relative(out: OutputDir, text: str) -> str:
    for old, new in portable_paths(out).items():
        text = text.replace(old, new)
    return text


def portable(args: list[str], out: OutputDir, target: str) -> list[str]:
    """A command for a fresh copy of the code: no machine paths, MLflow off, its outputs in `target`."""
    kept = [relative(out, arg) for arg in args if not _machine(arg)]
    run_dir = "hydra.sweep.dir" if "-m" in kept else "hydra.run.dir"
    return kept + ["tracking=off", f"{run_dir}={target}"]


def job_command(out: OutputDir, num: int) -> list[str]:
    """One job of a sweep alone, as a single run."""
    return portable(command(out, job_overrides(out.jobs[num])), out, f"{OUTPUT}/job{num}")


# --- contents ---------------------------------------------------------------------------


def _results(out: OutputDir) -> tuple[dict[str, Path], list[str]]:
    """The files a run wrote, by their package name, and the data files left out."""
    found, left_out = {}, []
    for path in sorted(p for p in out.path.rglob("*") if p.is_file()):
        inside = path.relative_to(out.path)
        if NOT_RESULTS & set(inside.parts) or path.suffix == ".zip":
            continue
        if path.suffix.lower() in DATA_SUFFIXES:
            left_out.append(str(inside))
            continue
        found[f"results/{inside}"] = path
    return found, left_out


def _configs(out: OutputDir) -> dict[str, Path]:
    found = {}
    for job in out.jobs:
        folder = "config/resolved" + (f"/{job.dir.name}" if out.is_sweep and job.dir else "")
        for name in ("config.yaml", "overrides.yaml"):
            if job.dir and (job.dir / ".hydra" / name).exists():
                found[f"{folder}/{name}"] = job.dir / ".hydra" / name
    if out.is_sweep:
        found["config/resolved/multirun.yaml"] = out.path / "multirun.yaml"
    for source, name in config_files(out):
        place = source.relative_to(out.root) if source.is_relative_to(out.root) else Path("external", source.name)
        found[f"config/files/{place}/{name}"] = source / name
    return found


def _data_sources(out: OutputDir) -> dict[str, dict[str, Any]]:
    """fingerprint -> the data configuration of the jobs that used it, and one of those jobs."""
    found: dict[str, dict[str, Any]] = {}
    for job in out.jobs:
        data = (resolved_config(job) or {}).get("data")
        if data is not None and job.fingerprint and job.fingerprint not in found:
            found[job.fingerprint] = {"data": data, "job": job}
    return found


def _build_logs(out: OutputDir) -> dict[str, Path]:
    """Each data's build log (rows in, rows out, why), as a job that used it kept it."""
    logs = {fp: item["job"].dir / "build_log.json" for fp, item in _data_sources(out).items() if item["job"].dir}
    return {f"data/{fp}/build_log.json": path for fp, path in logs.items() if path.exists()}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=300, check=False)


def source_archive(root: Path, commit: str) -> bytes:
    """eqexp at `commit`, as `git archive` makes it (a tar.gz whose top folder is eqexp/)."""
    if not re.fullmatch(r"[0-9a-f]{40}", commit or ""):
        raise PackageError(f"The results record no git commit ({commit!r}): they were not made in a git checkout of "
                           "eqexp, so there is no source to archive. Run them again from a clone.")
    done = _git(root, "archive", "--format=tar.gz", "--prefix=eqexp/", commit)
    if done.returncode != 0:
        raise PackageError(f"git archive of commit {commit} in {root} failed: {done.stderr.decode().strip()}. "
                           "Build the package in the clone that made the results (its commit must exist there).")
    return done.stdout


def shipped(root: Path, commit: str, path: str | None) -> bool:
    """Is `path` (relative to the project) part of the repository at `commit`, such as an example file?"""
    if not path or Path(path).is_absolute():
        return False
    return _git(root, "cat-file", "-e", f"{commit}:{Path(path).as_posix()}").returncode == 0


def lock(env: dict[str, Any]) -> str:
    pins = [f"{name}=={version}" for name, version in env["packages"].items() if name.lower() != "eqexp"]
    return "\n".join([
        f"# Every package of the environment that made these results, pinned exactly (Python {env['python']}, {env['platform']}).",
        "# eqexp itself is code/eqexp-<commit>.tar.gz. Install with: pip install --no-deps -r requirements.txt",
        "# (--no-deps: the list is complete, and pip's resolver would refuse a pin that a package declares but does not need).",
        *pins]) + "\n"


# --- README and script ------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _seeds(tree: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Every configuration key that names a seed, with its value."""
    if isinstance(tree, dict):
        return [s for k, v in tree.items() for s in _seeds(v, (*path, str(k)))]
    return [f"`{'.'.join(path)} = {tree}`"] if path and "seed" in path[-1].lower() else []


def _repo(out: OutputDir, env: dict[str, Any]) -> Path:
    """The clone that made the results."""
    return Path(env.get("root") or out.root)


def _availability(out: OutputDir, env: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Per data: its availability statement and its rows of the dataset list."""
    root, commit = _repo(out, env), env["git_commit"]
    statements, rows = [], []
    for fp, item in _data_sources(out).items():
        data, name = item["data"], f"**{item['data'].get('name')}** (fingerprint `{fp}`)"
        if data.get("source") in ("synthetic", "world"):
            statements.append(f"- {name}: synthetic, generated by eqexp's own code from the parameters in `data/{fp}/data.yaml` "
                              "(seeded, deterministic); the commands regenerate it. No external data.")
            continue
        path = relative(out, data["path"]) if data.get("path") else None
        if shipped(root, commit, path):
            statements.append(f"- {name}: `{path}`, an example file shipped with eqexp, in the code archive. Provided.")
            rows.append(f"| `{path}` (in the code archive) | eqexp's examples | the panel | Yes |")
        else:
            statements.append(f"- {name}: `{path}` ({data.get('source')}). **Not provided**: licensed data. Obtain it from its "
                              "provider and put it at that path (relative paths are relative to the unpacked code, `eqexp/`) or "
                              "add `data.path=<yours>` to the commands. eqexp fingerprints the file's content: a run on the "
                              f"same data reports the same fingerprint `{fp}`.")
            rows.append(f"| `{path}` | the data's provider | the panel | No |")
    return statements, rows


def _data_part(out: OutputDir, env: dict[str, Any], names: list[str]) -> list[str]:
    statements, rows = _availability(out, env)
    notes = {"data.yaml": "the data's configuration: source, file, parameters, build options",
             "build_log.json": "how the panel was built: rows in, rows out and why at each step"}
    described = [f"| `{n}` | eqexp | {notes[n.rsplit('/', 1)[-1]]} | Yes |" for n in names if n.startswith("data/")]
    return [
        "## Data Availability and Provenance Statements", "",
        "### Statement about Rights", "",
        "- [ ] I certify that the author(s) of the manuscript have legitimate access to and permission to use the data used in this manuscript.",
        ("- [ ] I certify that the author(s) of the manuscript have documented permission to redistribute/publish the data "
         "contained within this replication package."), "",
        "### Summary of Availability", "", *statements, "",
        "### Details on each Data Source", "",
        ("Each data configuration is in `data/<fingerprint>/data.yaml` (the resolved `data` group: source, file, unit and "
         "period, column names, build options), with the build log of the panel the jobs used where it was built "
         "(`build_log.json`). The data themselves are never copied into this package, except example files that eqexp's "
         "repository ships (inside the code archive)."), "",
        "## Dataset list", "",
        "| Data file | Source | Notes | Provided |", "|---|---|---|---|", *described, *rows, "",
    ]


def _computing_part(out: OutputDir, env: dict[str, Any], seconds: float) -> list[str]:
    seeds = sorted({s for job in out.jobs for s in _seeds(resolved_config(job) or {})})
    packages = env["packages"]
    return [
        "## Computational requirements", "",
        "### Software Requirements", "",
        f"- Python {env['python']} (the results were made on {env['platform']}, {env.get('cpus')} cores)",
        f"- every Python package pinned in `environment/requirements.txt` ({len(packages)} packages), e.g. "
        + ", ".join(f"{n} {packages[n]}" for n in ("pyfixest", "numpy", "pandas", "hydra-core") if n in packages),
        "- bash and tar, for `reproduce.sh`", "",
        "### Controlled Randomness", "",
        "- `run.py` fixes Python's hash seed (`PYTHONHASHSEED=0`) for every process.", *[f"- {s}" for s in seeds], "",
        "### Memory and Runtime Requirements", "",
        (f"The original jobs ran {seconds:.1f} s in all on {env.get('cpus')} cores (each job's time is in its `job.json`); "
         "a desktop suffices for data of this size."), "",
    ]


def _code_part(env: dict[str, Any], recorded: bool, left_out: list[str]) -> list[str]:
    commit = env["git_commit"]
    lines = [
        "## Description of programs/code", "",
        f"- `code/eqexp-{commit[:12]}.tar.gz`: eqexp's source at commit `{commit}` (`git archive`); `run.py` is the entry point.",
        "- `config/resolved/`: each job's resolved configuration (`config.yaml`) and overrides (`overrides.yaml`), as Hydra recorded them.",
        "- `config/files/`: the YAML files of the configuration groups the jobs chose, at their paths in the project.",
        "- `environment/`: `requirements.txt` (the lock) and `environment.json` (commit, Python, platform, all versions).",
        ("- `results/`: the tables (`tables/*.{md,tex,html,txt,docx}`), figures, `coefficients.csv`, `tests.csv`, `rows.csv` and "
         "`report.html`, as the run wrote them."),
    ]
    if env.get("git_modified"):
        lines.append(f"- **Warning**: tracked files had uncommitted changes when the results were made "
                     f"({', '.join(env['git_modified'])}); the code archive is the commit without them.")
    if not recorded:
        lines.append("- **Warning**: the results did not record their environment; the commit and versions listed are those "
                     "of the environment that built this package.")
    if left_out:
        lines.append(f"- Left out as data: {', '.join(f'`{n}`' for n in left_out)}.")
    return [*lines, ""]


def _instructions_part(out: OutputDir) -> list[str]:
    return [
        "## Instructions to Replicators", "",
        "- Unzip the package and, in its `replication/` folder, run `bash reproduce.sh`.",
        ("- With an environment of your own: `PYTHON=/path/to/python bash reproduce.sh` (it must have the packages of "
         "`environment/requirements.txt`)."),
        ("- Compare `reproduced/` with `results/`: every `coefficients.csv` is the same to the last digit. A job run alone "
         "(its command in the list of tables) gives the same estimates and standard errors, its fit statistics to 1e-12."), "",
        "### Details", "",
        "The command that made the results:", "", "```", shlex.join(command(out)), "```", "",
        "reproduced (in the unpacked code, `eqexp/`, with the environment's `python`) as:", "",
        "```", shlex.join(portable(command(out), out, OUTPUT)), "```", "",
        ("the same command with this machine's store and cache paths dropped, paths inside the project made relative, "
         "MLflow tracking off (`tracking=off`: the tables need no tracking server) and the outputs written to `../reproduced`."), "",
    ]


def _tables_part(out: OutputDir, names: list[str], kind: str) -> list[str]:
    """A row per job (its tables and figures, the command that makes them alone) and one for the sweep's own."""
    main = shlex.join(portable(command(out), out, OUTPUT))
    failed = [str(j.num) for j in out.jobs if j.status not in OK_STATUSES]
    rows = []
    for job in out.jobs:
        where = f"results/{job.dir.name}/" if out.is_sweep and job.dir else "results/"
        outputs = [n.removeprefix(where) for n in names if n.startswith((where + "tables/", where + "figures/"))]
        how = shlex.join(job_command(out, job.num)) if out.is_sweep else main
        note = "" if job.status == FINISHED else f"{job.status}: {job.reason}"  # skipped: where its results came from
        listed = ", ".join(f"`{o}`" for o in outputs) or "(none)"
        rows.append(f"| job {job.num}: {_md(job.label)} | `{_md(how)}` | `{_md(where)}`: {_md(listed)} | {_md(note)} |")
    if out.is_sweep:
        rows.append(f"| all jobs side by side | `{_md(main)}` | `results/`: `combined.{{md,tex,html,txt,docx}}`, `coefplot.png`, `summary.md` | |")
    return [
        "## List of tables and programs", "",
        "The provided code reproduces:", "",
        f"- [x] All tables and figures of this {kind}"
        + (f" (job {', '.join(failed)} failed in the original as well, and has none)" if failed else ""), "",
        "| Figure/Table # | Program | Output file | Note |", "|---|---|---|---|", *rows, "",
    ]


def readme(out: OutputDir, env: dict[str, Any], recorded: bool, names: list[str], left_out: list[str]) -> str:
    """The package's README, in the sections of the AEA Data Editor's template; `names`: the package's files."""
    kind = f"sweep of {len(out.jobs)} jobs" if out.is_sweep else "single run"
    seconds = sum((read_json(j.dir / "job.json") or {}).get("seconds", 0) for j in out.jobs if j.dir)
    packages = env["packages"]
    overview = [
        f"# Replication package: eqexp {kind} `{out.path.name}`", "",
        "## Overview", "",
        (f"This package reproduces the tables and figures of an eqexp {kind}: panel regressions specified as YAML, composed by "
         f"Hydra and estimated by eqexp (commit `{env['git_commit']}`). `bash reproduce.sh` unpacks the code, installs the "
         "exact package versions and runs the command that made every table; its outputs land in `reproduced/`, to compare "
         f"with `results/`. The original jobs took {seconds:.1f} s of computing in all."), "",
    ]
    references = ["## References", "", f"- eqexp, commit `{env['git_commit']}`: this package's `code/` folder.",
                  f"- pyfixest {packages.get('pyfixest', '')}; Hydra {packages.get('hydra-core', '')}."]
    parts = [overview, _data_part(out, env, names), _computing_part(out, env, seconds), _code_part(env, recorded, left_out),
             _instructions_part(out), _tables_part(out, names, kind), references]
    return "\n".join(line for part in parts for line in part) + "\n"


def script(out: OutputDir, env: dict[str, Any]) -> str:
    python = ".".join(env["python"].split(".")[:2])
    return "\n".join([
        "#!/usr/bin/env bash",
        "# Reproduces every table and figure of this package into reproduced/ (see README.md).",
        "# PYTHON=/path/to/python bash reproduce.sh runs in an environment of your own instead of a new .venv.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        f"[ -d eqexp ] || tar -xzf code/eqexp-{env['git_commit'][:12]}.tar.gz",
        'if [ -z "${PYTHON:-}" ]; then',
        f"  [ -x .venv/bin/python ] || {{ python{python} -m venv .venv && .venv/bin/pip install --no-deps -r environment/requirements.txt; }}",
        '  PYTHON="$PWD/.venv/bin/python"',
        "fi",
        "cd eqexp",
        'export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # this archive\'s eqexp, whatever else is installed',
        '"$PYTHON" ' + shlex.join(portable(command(out), out, OUTPUT)[1:]),
    ]) + "\n"


# --- the zip ----------------------------------------------------------------------------


def build(directory: Path, target: Path | None = None) -> Path:
    """Write the replication package of the run or sweep in `directory`; return the zip's path."""
    try:
        out = open_dir(directory)
    except OutputDirError as err:
        raise PackageError(str(err)) from None
    if out.hydra is None:
        raise PackageError(f"{out.path} has no multirun.yaml, Hydra's record of the sweep's command and config folders.")
    if not any(j.status in OK_STATUSES for j in out.jobs):
        raise PackageError(f"{out.path} has no finished job: there are no results to package.")
    env = environment.read(out.path)
    recorded = env is not None
    env = env or environment.capture(out.root)
    files, left_out = _results(out)
    files |= _configs(out) | _build_logs(out)
    texts = {f"data/{fp}/data.yaml": yaml_text(item["data"])
             for fp, item in _data_sources(out).items()}
    texts |= {
        "README.md": readme(out, env, recorded, sorted({*files, *texts}), left_out),
        "reproduce.sh": script(out, env),
        "environment/requirements.txt": lock(env),
        "environment/environment.json": json.dumps(env, indent=1),
    }
    code = source_archive(_repo(out, env), env["git_commit"])
    target = Path(target) if target else out.path / ZIP_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in texts.items():
            z.writestr(f"{TOP}/{name}", text)
        for name, path in sorted(files.items()):
            z.write(path, f"{TOP}/{name}")
        z.writestr(f"{TOP}/code/eqexp-{env['git_commit'][:12]}.tar.gz", code, compress_type=zipfile.ZIP_STORED)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eqexp.package", description="Write the replication package of a run or a sweep.")
    parser.add_argument("directory", type=Path, help="a run's or a sweep's directory (outputs/runs/<time>, outputs/sweeps/<time>)")
    parser.add_argument("--out", type=Path, help=f"the zip to write (default: <directory>/{ZIP_NAME})")
    args = parser.parse_args(argv)
    try:
        path = build(args.directory, args.out)
    except PackageError as err:
        print(f"[eqexp] PackageError: {err}", file=sys.stderr)
        return 2
    print(f"[eqexp] replication package: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
