"""`python -m eqexp.package`: a replication package a journal accepts.

The fast tests package a hand-made run in a throw-away git repository; the slow one packages a
real sweep, unpacks it in a clean folder, runs its script there (the small synthetic world is
regenerated deterministically) and gets the same coefficients to the last digit.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import hand_made_run

from eqexp import package, sweep
from eqexp.rundir import open_dir

AEA_SECTIONS = ["## Overview", "## Data Availability and Provenance Statements", "### Statement about Rights",
                "### Summary of Availability", "### Details on each Data Source", "## Dataset list",
                "## Computational requirements", "### Software Requirements", "### Controlled Randomness",
                "### Memory and Runtime Requirements", "## Description of programs/code", "## Instructions to Replicators",
                "### Details", "## List of tables and programs", "## References"]


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    """A git repository standing in for eqexp's clone: run.py and the config files the run chose."""
    root = tmp_path / "project"
    for name, text in {"run.py": "print('eqexp')\n", "conf/config.yaml": "defaults: [data: tiny]\n",
                       "conf/data/tiny.yaml": "name: tiny\n", "conf/model/baseline.yaml": "controls: []\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root.parent, "init", "-q", str(root))
    git(root, "add", ".")
    git(root, "commit", "-qm", "start")
    (root / "panel.csv").write_text("firm_id,year\n1,2004\n")  # the licensed panel: never committed
    return root


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name.removeprefix("replication/"): z.read(name) for name in z.namelist()}


def test_a_run_becomes_a_package_with_the_aea_sections_a_lock_and_no_data(tmp_path, project):
    run = hand_made_run(tmp_path / "outputs" / "run", project)
    zipped = members(package.build(run))
    commit = git(project, "rev-parse", "HEAD")
    readme = zipped["README.md"].decode()
    positions = [readme.index(section + "\n") for section in AEA_SECTIONS]
    assert positions == sorted(positions)
    assert {"config/resolved/config.yaml", "config/resolved/overrides.yaml", "config/files/conf/config.yaml",
            "config/files/conf/data/tiny.yaml", "config/files/conf/model/baseline.yaml", "data/panel-0123abcd/data.yaml",
            "data/panel-0123abcd/build_log.json", "results/tables/table.tex", "results/figures/inverted_u_m1.png",
            "results/coefficients.csv", "environment/environment.json", f"code/eqexp-{commit[:12]}.tar.gz"} <= set(zipped)
    with tarfile.open(fileobj=io.BytesIO(zipped[f"code/eqexp-{commit[:12]}.tar.gz"])) as tar:
        assert sorted(tar.getnames()) == ["eqexp", "eqexp/conf", "eqexp/conf/config.yaml", "eqexp/conf/data", "eqexp/conf/data/tiny.yaml",
                                          "eqexp/conf/model", "eqexp/conf/model/baseline.yaml", "eqexp/run.py"]

    assert not [n for n in zipped if n.endswith((".parquet", "panel.csv"))]  # neither the stray data file nor the panel
    assert "Left out as data: `panel.parquet`" in readme and "`panel.csv` (panel). **Not provided**" in readme

    pins = [line for line in zipped["environment/requirements.txt"].decode().splitlines() if not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[^=\s]+", pin) for pin in pins)
    from importlib.metadata import version

    assert f"pyfixest=={version('pyfixest')}" in pins and not [p for p in pins if p.lower().startswith("eqexp==")]

    script = zipped["reproduce.sh"].decode()
    expected = "\"$PYTHON\" run.py data=tiny 'model.controls=[scale]' data.path=panel.csv tracking=off hydra.run.dir=../reproduced"
    assert script.splitlines()[-1] == expected  # no store or cache of this machine; the panel's path relative
    assert f"tar -xzf code/eqexp-{commit[:12]}.tar.gz" in script and "pip install --no-deps -r environment/requirements.txt" in script


def test_what_cannot_be_packaged_is_said_plainly(tmp_path, capsys):
    assert package.main([str(tmp_path)]) == 2
    assert "is not an eqexp run or sweep" in capsys.readouterr().err
    outside_git = tmp_path / "not_a_clone"
    outside_git.mkdir()
    with pytest.raises(package.PackageError, match="no git commit .* not made in a git checkout"):
        package.build(hand_made_run(tmp_path / "run", outside_git))


@pytest.mark.slow
def test_a_sweep_package_reproduces_every_coefficient_in_a_clean_folder(small_sweep, tmp_path):
    original = small_sweep / "sweep"
    zip_path = package.build(original, tmp_path / "package.zip")
    with zipfile.ZipFile(zip_path) as z:
        names = z.namelist()
        z.extractall(tmp_path / "clean")
    data_like = [n for n in names if n.endswith((".parquet", ".dta", ".csv")) and not n.startswith("replication/results/")]
    assert not data_like  # the only tables of numbers are results; the code archive ships only tracked files
    assert {n.rsplit("/", 1)[-1] for n in names if n.endswith(".csv")} <= {"coefficients.csv", "tests.csv", "rows.csv", "summary.csv",
                                                                          "combined_coefficients.csv"}
    here = tmp_path / "clean" / "replication"
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", "reproduce.sh"], cwd=here, capture_output=True, text=True, timeout=900, env=env, check=False)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # as the original: one job fails
    assert (here / "eqexp" / "run.py").exists() and (here / "eqexp" / "outputs" / "cache").is_dir()  # its own data, built there

    again = {r.num: r for r in sweep.job_records(here / "reproduced")}
    for job in sweep.job_records(original):
        assert again[job.num].status == job.status and again[job.num].reason == job.reason
        if job.status != "finished":
            continue
        before = pd.read_csv(Path(job.dir) / "coefficients.csv")
        after = pd.read_csv(Path(again[job.num].dir) / "coefficients.csv")
        pd.testing.assert_frame_equal(after, before, check_exact=True)
        fingerprints = [pd.read_json(Path(d) / "job.json", typ="series")["fingerprint"] for d in (job.dir, again[job.num].dir)]
        assert fingerprints[0] == fingerprints[1]

    # the README's command for one job alone, as a single run, gives that job's table too: the same estimates and
    # standard errors; the fit statistics to 1e-12 (R² within, near 0, moves in its 15th digit with the thread count)
    first = next(j for j in sweep.job_records(original) if j.status == "finished")
    alone = package.job_command(open_dir(original), first.num)
    env["PYTHONPATH"] = str(here / "eqexp" / "src")
    done = subprocess.run([sys.executable, *alone[1:]], cwd=here / "eqexp", capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after, before = (pd.read_csv(d / "coefficients.csv") for d in (here / "reproduced" / f"job{first.num}", Path(first.dir)))
    pd.testing.assert_frame_equal(after, before, check_exact=False, rtol=0, atol=1e-12)
    assert after[["estimate", "std_error"]].equals(before[["estimate", "std_error"]])
