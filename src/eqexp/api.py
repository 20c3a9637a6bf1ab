"""eqexp from Python (a notebook, a script): `run`, `sweep` and `load`.

    import eqexp
    baseline = eqexp.run("experiment=table4_baseline", "data=synthetic_small")
    baseline.coefficients                      # a DataFrame; baseline.table("md"), baseline.tests, ...
    split = eqexp.sweep("hetero=ownership,region", "data=synthetic_small")
    eqexp.load("outputs/runs/<time>")          # any past run or sweep, or an MLflow run id

`run(*overrides)` is `python run.py <overrides>` and `sweep(*overrides)` is `python run.py -m
<overrides>`: both run the project's own `run.py`, in this process, with the overrides as its
command line (and HYDRA_FULL_ERROR=1, so that Hydra hands a failure back). The composition,
validation, run directory, launcher, MLflow logging, summary and resume are therefore the
command's; a bad input raises the exception the command prints (SpecError, DataValidationError,
Hydra's ConfigCompositionException, ...), with the same message.

One difference from the shell: `run.py` restarts its process with PYTHONHASHSEED=0 and glibc's
malloc thresholds (`eqexp.runtime_env`), which a process reads only when it starts. A kernel has
already started, so here they are set only for the processes the command starts, and the kernel
keeps its own hash seed and allocator. eqexp's own estimator (its fast path, every model of the
reference study) does not depend on the hash seed: its files are the command's byte for byte
(tests/test_api.py checks this under another seed). What pyfixest estimates instead may differ
from the command's in the last digits (~1e-13) unless the kernel started with PYTHONHASHSEED=0.
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
from contextlib import contextmanager
from pathlib import Path

from eqexp.results import Run, Sweep
from eqexp.runtime_env import RUNTIME_ENV


class CommandError(RuntimeError):
    """The command failed without an exception to hand back (a sweep refused before any job ran);
    what went wrong is printed above, as the shell prints it."""


def project_root(start: Path | None = None) -> Path:
    """The eqexp project a command runs in: the nearest folder with run.py and conf/, from `start`
    (default: the working directory, e.g. a notebook's folder inside the project) upwards, else
    the checkout this package is installed from."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[2]):
        if (folder / "run.py").is_file() and (folder / "conf").is_dir():
            return folder
    raise FileNotFoundError(f"no eqexp project (a folder with run.py and conf/) in {here} or above it; "
                            "pass project=<the eqexp checkout>.")


def run(*overrides: str, config_dir: str | Path | None = None, project: str | Path | None = None) -> Run:
    """`python run.py <overrides>` (`--config-dir config_dir`), in this process: its `Run`."""
    from eqexp import cli

    root = project_root(project)
    code = _command(root, [*_config_dir(config_dir), *overrides], multirun=False)
    # Not the exit code alone: in one process it also carries an earlier sweep's (`main_with_summary`).
    if cli.run_dir is None or not (cli.run_dir / "job.json").exists():  # --cfg job, --help; Ctrl-C
        raise CommandError(f"python run.py {' '.join(overrides)} exited with {code} and finished no run; "
                           "its message is printed above.")
    return Run(cli.run_dir)


def sweep(*overrides: str, config_dir: str | Path | None = None, project: str | Path | None = None) -> Sweep:
    """`python run.py -m <overrides>`, in this process: its `Sweep`, also when jobs failed (`.summary` says why)."""
    root = project_root(project)
    given = _given(root, overrides)
    before = set() if given else _sweep_dirs(root, overrides)
    code = _command(root, [*_config_dir(config_dir), *overrides], multirun=True)
    if given:  # exit code 2: refused before its plan was written (an older sweep's sweep.json may be there)
        new = [given] if code != 2 and (given / "sweep.json").exists() else []
    else:
        new = sorted(_sweep_dirs(root, overrides) - before)
    if len(new) != 1:
        raise CommandError(f"python run.py -m {' '.join(overrides)} exited with {code} and "
                           + ("wrote no sweep (its message is printed above)." if not new else
                              f"more than one sweep appeared meanwhile ({', '.join(map(str, new))}): "
                              "give hydra.sweep.dir=... to name this one."))
    return Sweep(new[0])


def _given(root: Path, overrides: tuple[str, ...]) -> Path | None:
    named = [o.split("=", 1)[1] for o in overrides if o.startswith("hydra.sweep.dir=")]
    return (root / named[-1]).resolve() if named else None


def _sweep_dirs(root: Path, overrides: tuple[str, ...]) -> set[Path]:
    """The sweeps under <outputs>/sweeps (conf/config.yaml's default for hydra.sweep.dir). A sweep
    hands its directory to no caller: this sweep's is the one that appears."""
    outputs = [o.split("=", 1)[1] for o in overrides if o.startswith("outputs=")]
    parent = (root / (outputs[-1] if outputs else "outputs") / "sweeps").resolve()
    return {p.parent for p in parent.glob("*/sweep.json")}


def _config_dir(config_dir: str | Path | None) -> list[str]:
    return ["--config-dir", str(Path(config_dir).resolve())] if config_dir else []


def _command(root: Path, args: list[str], multirun: bool) -> int:
    """Run `root/run.py` as `python run.py [-m] <args>` would, in this process; raise what it reported."""
    from eqexp import cli

    script = root / "run.py"
    with _as_command(root, [str(script), *(["-m"] if multirun else []), *args]):
        try:
            runpy.run_path(str(script), run_name="__main__")
            code = 0
        except SystemExit as exiting:
            code = exiting.code if isinstance(exiting.code, int) else (0 if exiting.code is None else 1)
        finally:
            gc.unfreeze()  # run.py freezes every object for its process's end; a kernel goes on
    if cli.failure is not None:
        raise cli.failure
    return code


@contextmanager
def _as_command(root: Path, argv: list[str]):
    """The command line, working directory and environment of the command, restored afterwards."""
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    names = (*RUNTIME_ENV, "HYDRA_FULL_ERROR")
    saved_env = {name: os.environ.get(name) for name in names}
    os.environ.update({k: v for k, v in RUNTIME_ENV.items() if k not in os.environ})  # run.py does not restart
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = argv
    os.chdir(root)
    try:
        yield
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
