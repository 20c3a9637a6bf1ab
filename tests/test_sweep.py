"""Sweeps: the plan, job identity, thread caps, summaries, and real `python run.py -m` sweeps.

The end-to-end tests run `run.py -m` in a subprocess on `data=synthetic_small`, with the
sweep directory, the data cache and the MLflow store under the test's tmp directory.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from eqexp import sweep
from eqexp.spec import Spec, load_spec
from eqexp.sweep.finish import finish_sweep
from eqexp.sweep.plan import Plan, PlannedJob, job_key, job_labels, share_bootstraps
from eqexp.sweep.side_by_side import combined_table, key_results
from eqexp.sweep.threads import cores, set_thread_env, threads_per_worker
from dataclasses import FrozenInstanceError

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(small_cache) -> Path:
    return small_cache  # the session's data cache for synthetic_small (conftest.py)


def sweep_command(base: Path, cache: Path, name: str, *overrides: str) -> list[str]:
    return [
        sys.executable, "run.py", "-m", "data=synthetic_small", f"data.cache_dir={cache}",
        f"tracking.uri=sqlite:///{base / 'mlflow.db'}", f"tracking.artifact_root={base / 'mlartifacts'}",
        f"hydra.sweep.dir={base / name}", *overrides,
    ]


def run_sweep(base: Path, cache: Path, name: str, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(sweep_command(base, cache, name, *overrides), cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)


def client_for(base: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{base / 'mlflow.db'}")


def runs_of(base: Path):
    client = client_for(base)
    experiment = client.get_experiment_by_name("eqexp")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("eqexp.kind") == "sweep"]
    return client, parents, runs


def children_of(runs, parent_id: str):
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def artifact_files(client, run_id: str, path: str | None = None) -> set[str]:
    files = set()
    for a in client.list_artifacts(run_id, path):
        files |= artifact_files(client, run_id, a.path) if a.is_dir else {a.path}
    return files


def statuses(sweep_dir: Path) -> dict[int, str]:
    return {r.num: r.status for r in sweep.job_records(sweep_dir)}


def coefficients(n_models: int = 2, treatment: str = "market", shift: float = 0.0) -> pd.DataFrame:
    rows = []
    for i in range(1, n_models + 1):
        for term, est, se in ((treatment, 0.05 + shift + 0.01 * i, 0.02), (f"{treatment}_sq", -0.006, 0.002), ("scale", 0.02, 0.004)):
            rows.append({"model": f"({i})", "sample": "All firm-years", "outcome": "quality", "term": term, "estimate": est,
                         "std_error": se, "statistic": est / se, "p_value": 0.001 if abs(est / se) > 2.6 else 0.2,
                         "conf_low": est - 1.96 * se, "conf_high": est + 1.96 * se, "n_obs": 1000 * i, "r2": 0.9,
                         "r2_within": 0.05, "vcov": "Firm"})
    return pd.DataFrame(rows)


def hand_made_sweep(tmp_path: Path) -> Path:
    """A sweep directory as a crashed sweep leaves it: finished, skipped, failed, started, never started."""
    sweep_dir = tmp_path / "sweep"
    jobs = [sweep.JobRecord(num=i, label=f"trim={t}", overrides=[f"trim={t}"], treatment="market", job_key=f"k{i}")
            for i, t in enumerate(["none", "p1", "p5", "winsor1", "p10"])]
    (sweep_dir / sweep.STATUS_DIR).mkdir(parents=True)
    (sweep_dir / sweep.PLAN_FILE).write_text(json.dumps({"context": {"sweep_dir": str(sweep_dir), "root": str(tmp_path)},
                                                         "jobs": [r.__dict__ for r in jobs]}))
    for num, status in [(0, "finished"), (1, "skipped"), (2, "failed"), (3, "started")]:
        record = sweep.JobRecord(**{**jobs[num].__dict__, "status": status, "dir": str(sweep_dir / str(num)),
                                    "fixed_effects": ["firm_id", "year"], "pid": 4242, "host": "node1"})
        if status == "failed":
            record.reason = "SpecError: no observations"
        sweep.write_status(sweep_dir, record)
        if status in ("finished", "skipped"):
            (sweep_dir / str(num)).mkdir()
            coefficients(shift=0.1 * num).to_csv(sweep_dir / str(num) / "coefficients.csv", index=False)
    return sweep_dir


# --- unit: plan, labels, identity, threads ----------------------------------------------


def planned_jobs(*overrides: str, exclude: list | None = None) -> list[list[str]]:
    """The job list eqexp's sweeper plans for these task overrides."""
    from hydra_plugins.eqexp_sweeps import planned_jobs as plan

    return plan(list(overrides), None, exclude=exclude)


def test_planned_jobs_are_hydras_product_in_hydras_order():
    jobs = planned_jobs("data=synthetic_small", "trim=none,p5", "lags=none,l1,l2")
    expected = [["data=synthetic_small", f"trim={t}", f"lags={l}"] for t, l in itertools.product(["none", "p5"], ["none", "l1", "l2"])]
    assert jobs == expected
    assert job_labels(jobs)[:2] == ["trim=none,lags=none", "trim=none,lags=l1"]
    assert job_labels([["data=x", "hetero=region"]]) == ["data=x,hetero=region"]
    assert job_labels([[]]) == ["default"]
    excluded = planned_jobs("trim=none,p5", "lags=none,l1", exclude=[{"trim": "p5", "lags": "l1"}])
    assert excluded == [["trim=none", "lags=none"], ["trim=none", "lags=l1"], ["trim=p5", "lags=none"]]


def test_job_key_ignores_tracking_force_and_cache_but_not_the_model_or_data():
    base = load_spec({})  # the labels a spec derives from its config (vcov, sample) are filled in
    same = load_spec({"tracking": {"uri": "sqlite:///elsewhere.db", "experiment": "other"}, "force": True, "data": {"cache_dir": "/x"}})
    trimmed = load_spec({"trim": {"name": "p5", "method": "trim"}})
    assert job_key(base, "synthetic-1") == job_key(same, "synthetic-1")
    assert job_key(base, "synthetic-1") != job_key(trimmed, "synthetic-1")
    assert job_key(base, "synthetic-1") != job_key(base, "synthetic-2")


def test_mediation_channels_of_one_model_share_one_bootstrap_and_keep_their_identity():
    """Jobs that differ only in the mediator resample the same firms the same way: the plan has
    each bootstrap sum the other mediators too and chains the jobs on one worker, without
    changing what identifies their results (resume finds runs made before or alone)."""
    from eqexp.spec import with_bootstrap_shared

    specs = {("mediator=humancapital",): load_spec({"mediator": {"name": "hc", "variable": "humancapital"}}),
             ("mediator=rd",): load_spec({"mediator": {"name": "rd", "variable": "rd"}}),
             ("mediator=rd", "trim=p5"): load_spec({"mediator": {"name": "rd", "variable": "rd"}, "trim": {"name": "p5", "method": "trim"}}),
             ("hetero=region",): load_spec({})}
    plan = Plan([PlannedJob(i, list(o), "", spec=spec) for i, (o, spec) in enumerate(specs.items())])
    share_bootstraps(plan.jobs, {i: "synthetic-1" for i in range(4)})
    hc, rd, trimmed, plain = plan.jobs
    assert hc.spec.mediator.bootstrap.share_with == ["rd"] and rd.spec.mediator.bootstrap.share_with == ["humancapital"]
    assert trimmed.spec.mediator.bootstrap.share_with == [] and plain.spec.mediator.bootstrap.share_with == []  # other rows, no mediator
    assert hc.share == rd.share and trimmed.share is None and plain.share is None
    assert [0, 1] in [[j.num for j in chain] for chain in plan.chains(2)]  # on one worker, one after the other, never split
    assert job_key(hc.spec, "synthetic-1") == job_key(specs[("mediator=humancapital",)], "synthetic-1")
    with pytest.raises(FrozenInstanceError):
        with_bootstrap_shared(rd.spec, ["x"]).mediator.bootstrap.draws = 1  # sealed like a loaded spec


def test_threads_times_workers_never_exceed_cores():
    for workers, n_cores in [(16, 16), (3, 16), (2, 2), (40, 16), (1, 8)]:
        assert threads_per_worker(workers, n_cores) * min(workers, n_cores) <= n_cores
    assert threads_per_worker(3, 16) == 5
    env = {"OMP_NUM_THREADS": "2"}  # the user's own setting wins
    set_thread_env(1, env)
    assert env["OMP_NUM_THREADS"] == "2" and env["RAYON_NUM_THREADS"] == "1" and env["PYTHONHASHSEED"] == "0"


def _read_in(directory: str) -> tuple[int, int, float]:
    """In a worker: which process read the panel it holds for `directory`, its rows and a column's sum."""
    from eqexp.cache import PROCESS

    loaded = PROCESS.panels[Path(directory)]
    return loaded.panel.attrs["read_by"], len(loaded.panel), float(loaded.panel["y"].sum())


def test_workers_inherit_the_panel_read_before_their_fork_and_the_parent_gives_it_back(tmp_path, monkeypatch, process_cache):
    """A sweep's workers share the pages of the first job's panel, read once in the parent: no worker reads
    it again (it would hold a copy of its own), and the parent keeps none."""
    from eqexp.data import load as data_load
    from eqexp.spec import DataSpec
    from eqexp.sweep.start import _start_pool

    path = tmp_path / "p.csv"
    pd.DataFrame({"firm": [1, 1, 2, 2, 3], "year": [2001, 2002, 2001, 2002, 2001], "y": [1.0, 2.0, 3.0, 4.5, 6.0]}).to_csv(path, index=False)
    spec = DataSpec(name="p", source="panel", path=str(path), id="firm", time="year", cache_dir=str(tmp_path / "cache"))
    directory = data_load.load(spec).directory  # the cache entry exists, as after any earlier run
    read = data_load._read

    def tagged(file: Path) -> pd.DataFrame:
        panel = read(file)
        panel.attrs["read_by"] = os.getpid()
        return panel

    monkeypatch.setattr(data_load, "_read", tagged)
    monkeypatch.setattr("eqexp.sweep.start.compose_job", lambda loader, cfg, overrides: (None, Spec(data=spec), ""))
    pool = _start_pool(2, 1, None, None, ["data=p"], {})
    pids = list(pool.pids)
    try:
        assert process_cache.panels == {}
        answers = [pool.submit(_read_in, str(directory)).result(timeout=60) for _ in range(4)]
        assert set(answers) == {(os.getpid(), 5, 16.5)}
    finally:
        pool.kill()
    assert not pool.alive()
    for pid in pids:  # killed, and reaped by the pool
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_sweep_directory_is_never_shared(tmp_path):
    taken = tmp_path / "sweeps" / "2026-01-01_00-00-00-000001"
    taken.mkdir(parents=True)
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(taken)}, "overrides": {"hydra": [], "task": []}}})
    from eqexp.sweep.start import claim_sweep_dir

    claimed = claim_sweep_dir(cfg)
    assert claimed != taken.resolve() and claimed.name == f"{taken.name}-{os.getpid()}"
    assert cfg.hydra.sweep.dir == str(claimed) and f"hydra.sweep.dir={claimed}" in cfg.hydra.overrides.hydra


# --- unit: summary, combined table, plot ------------------------------------------------


def test_summary_lists_every_planned_job_and_exit_code_says_something_went_wrong(tmp_path):
    sweep_dir = hand_made_sweep(tmp_path)
    records = sweep.job_records(sweep_dir)
    assert [r.status for r in records] == ["finished", "skipped", "failed", "never finished", "never finished"]
    assert "pid 4242" in records[3].reason and "never started" in records[4].reason
    code = finish_sweep(sweep_dir)
    assert code == 1
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert list(summary.job) == [0, 1, 2, 3, 4]
    assert summary.loc[0, "estimate"] == pytest.approx(0.07) and summary.loc[0, "model"] == "(2)" and summary.loc[0, "n_obs"] == 2000
    assert summary.loc[1, "estimate"] == pytest.approx(0.17)  # a skipped job still shows its (earlier) results
    assert "no observations" in summary.loc[2, "reason"]
    assert "never finished" in (sweep_dir / "summary.md").read_text()
    # only finished and skipped: exit code 0
    ok = tmp_path / "ok"
    (ok / sweep.STATUS_DIR).mkdir(parents=True)
    (ok / sweep.PLAN_FILE).write_text(json.dumps({"context": {"sweep_dir": str(ok), "root": str(tmp_path)}, "jobs": []}))
    for r in records[:2]:
        sweep.write_status(ok, r)
    assert finish_sweep(ok) == 0


def test_combined_table_has_one_column_per_job_and_model_with_only_treatment_terms(tmp_path):
    sweep_dir = hand_made_sweep(tmp_path)
    finish_sweep(sweep_dir)
    long = pd.read_csv(sweep_dir / "combined_coefficients.csv")
    table = combined_table(long, "t", {"market": "Market"})
    groups = table.header[1][1:]
    assert groups == ["trim=none (1)", "trim=none (2)", "trim=p1 (1)", "trim=p1 (2)"]
    stubs = [row[0] for row in table.body if row[0]]
    assert stubs == ["Market", "Market²"]  # the control `scale` is not a treatment term
    market = table.body[0][1:]
    assert market[0] == "0.0600***" and market[3] == "0.1700***"
    assert [row for row in table.footer if row[0] == "Firm_id FE" or row[0] == "firm_id FE"][0][1:] == ["YES"] * 4
    md = (sweep_dir / "combined.md").read_text()
    assert "trim=p1 (2)" in md and "Job 2 (trim=p5) failed" in md
    png = (sweep_dir / "coefplot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_key_results_take_the_last_models_lagged_treatment():
    df = coefficients(3).replace({"term": {"market": "L2_market", "market_sq": "L2_market_sq"}})
    res = key_results(df, "market")
    assert res["model"] == "(3)" and res["term"] == "L2_market" and res["estimate"] == pytest.approx(0.08) and res["n_obs"] == 3000


# --- configuration ----------------------------------------------------------------------


def compose_hydra(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def test_default_launcher_is_eqexps_joblib_on_every_core_with_eqexps_sweeper():
    cfg = compose_hydra()
    assert cfg.hydra.launcher._target_ == "hydra_plugins.eqexp_sweeps.PlannedJoblibLauncher" and cfg.hydra.launcher.n_jobs == -1
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.eqexp_sweeps.PlannedBasicSweeper"
    sweep_dir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["dir"]
    assert "%f" in sweep_dir  # microseconds: two sweeps in the same second get two directories


def test_slurm_launcher_config_composes():
    cfg = compose_hydra("hydra/launcher=submitit_slurm", "hydra.launcher.partition=short")
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "short" and launcher.cpus_per_task >= 1 and launcher.timeout_min > 0
    assert launcher.array_parallelism >= 1 and "eqexp" in launcher.name
    assert str(launcher.submitit_folder).startswith(str(cfg.hydra.sweep.dir))  # job files live in the sweep directory
    assert launcher.setup[0].startswith("export PYTHONHASHSEED=0 OMP_NUM_THREADS=4 ") and "RAYON_NUM_THREADS=4" in launcher.setup[0]
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    OmegaConf.merge(OmegaConf.structured(SlurmQueueConf), launcher)  # every key is one the plugin knows


def test_ray_launcher_config_composes():
    cfg = compose_hydra("hydra/launcher=ray")
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    assert "address" in launcher.ray.init and launcher.ray.remote.num_cpus >= 1 and launcher.ray.remote.max_retries == 0
    assert launcher.ray.remote.runtime_env.env_vars.RAYON_NUM_THREADS == str(launcher.ray.remote.num_cpus)
    from hydra_plugins.hydra_ray_launcher._config import RayLauncherConf

    OmegaConf.merge(OmegaConf.structured(RayLauncherConf), launcher)


# --- end to end -------------------------------------------------------------------------

TWELVE = ("trim=none,p1,p5", "lags=none,l1", "vcov=firm,robust")


def test_twelve_jobs_on_all_workers_every_run_param_metric_and_artifact_arrives(tmp_path, cache):
    from eqexp.tracking import flatten

    done = run_sweep(tmp_path, cache, "s12", *TWELVE)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    sweep_dir = tmp_path / "s12"
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert len(summary) == 12 and (summary.status == "finished").all()
    plan = json.loads((sweep_dir / sweep.PLAN_FILE).read_text())
    n_cores = cores()
    assert plan["context"]["workers"] == min(12, n_cores)  # n_jobs = cores by default
    records = sweep.job_records(sweep_dir)
    assert 1 < len({r.pid for r in records}) <= plan["context"]["workers"] or n_cores == 1  # jobs ran side by side
    for r in records:  # workers × threads ≤ cores, inside the worker processes
        assert int(r.threads["RAYON_NUM_THREADS"]) * plan["context"]["workers"] <= n_cores
        assert int(r.threads["OMP_NUM_THREADS"]) * plan["context"]["workers"] <= n_cores

    client, parents, runs = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    children = children_of(runs, parent.info.run_id)
    labels = [",".join(p) for p in itertools.product(*[[f"{o.split('=')[0]}={v}" for v in o.split("=")[1].split(",")] for o in TWELVE])]
    assert sorted(c.info.run_name for c in children) == sorted(labels)
    assert all(c.info.status == "FINISHED" for c in children)
    by_num = {r.num: r for r in records}
    n_metrics = 0
    model_runs = {}  # job run -> its models' runs, by column
    for r in runs:
        if r.data.tags.get("eqexp.kind") == "model":
            model_runs.setdefault(r.data.tags["mlflow.parentRunId"], {})[r.data.params["fit.column"]] = r
    for child in children:
        record = by_num[int(child.data.tags["eqexp.job_num"])]
        assert record.label == child.info.run_name and child.data.tags["job_key"] == record.job_key
        job_dir = Path(record.dir)
        spec = load_spec(OmegaConf.load(job_dir / ".hydra" / "config.yaml"))
        build = json.loads((job_dir / "build_log.json").read_text())["options"]
        assert child.data.params == flatten(OmegaConf.to_container(OmegaConf.structured(spec))) | flatten({"build": build})
        coefs = pd.read_csv(job_dir / "coefficients.csv")
        # each model's coefficients in its own nested run, named alike in every run (no longer m<i>.<term>.<stat> in the job's)
        assert sorted(model_runs[child.info.run_id]) == sorted(set(coefs.model))
        for model, model_run in model_runs[child.info.run_id].items():
            metrics = model_run.data.metrics
            for row in coefs[coefs.model == model].itertuples():
                assert metrics[f"coef.{row.term}"] == pytest.approx(row.estimate, rel=1e-12)
                assert metrics[f"se.{row.term}"] == pytest.approx(row.std_error, rel=1e-12)
                n_metrics += 2
            (treatment,) = coefs[(coefs.model == model) & coefs.term.isin(["market", "L1_market"])].itertuples()
            for column, short in (("estimate", "estimate"), ("std_error", "se"), ("statistic", "t"), ("p_value", "p")):
                assert metrics[short] == pytest.approx(getattr(treatment, column), rel=1e-12)
            assert metrics["n_obs"] == coefs[coefs.model == model].n_obs.iloc[0]
            assert model_run.data.params["choice.trim"] == spec.trim.name and model_run.data.params["choice.vcov"] == spec.vcov.name
        local = {str(p.relative_to(job_dir)) for p in job_dir.rglob("*") if p.is_file()} - {"job.json"}
        assert local <= artifact_files(client, child.info.run_id)
        assert {"coefficients.csv", "tables/table.md", "tables/table.tex"} <= local
    assert n_metrics >= 12 * 2 * 2 * 4

    assert {"summary.csv", "summary.md", "combined.md", "combined.tex", "coefplot.png", "jobs.json"} <= artifact_files(client, parent.info.run_id)
    assert parent.data.metrics["jobs_finished"] == 12
    combined = (sweep_dir / "combined.md").read_text().splitlines()
    header = [line for line in combined if line.startswith("| ") and "(24)" in line]
    assert header and "(25)" not in combined[2]  # 12 jobs × 2 models
    assert "trim=p5,lags=l1,vcov=robust (2)" in "\n".join(combined)

    # the same table, rebuilt later from the directory or from the parent run, with a choice of jobs
    from eqexp import compare

    compare.main([str(sweep_dir), "--jobs", "trim=p5,*", "--order", "estimate", "--out", str(tmp_path / "cmp_dir")])
    compare.main([parent.info.run_id, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--out", str(tmp_path / "cmp_run")])
    chosen = pd.read_csv(tmp_path / "cmp_dir" / "combined_coefficients.csv")
    assert set(chosen.label) == {lab for lab in labels if lab.startswith("trim=p5,")}
    firsts = chosen[(chosen.model == "(2)") & (chosen.term.isin(["market", "L1_market"]))]
    assert list(firsts.estimate) == sorted(firsts.estimate)
    assert (tmp_path / "cmp_run" / "combined.md").read_text().splitlines()[1:] == (sweep_dir / "combined.md").read_text().splitlines()[1:]


@pytest.mark.slow
def test_a_sweep_over_mediators_draws_each_bootstrap_once_per_sample(tmp_path, cache):
    """Two mediators × two trimmings on two workers: each trimming's second mediation job solves its
    draws from the first one's bootstrap (the sweep planned it), the others draw their own, and
    the shared job's bootstrap equals the same job run alone."""
    done = run_sweep(tmp_path, cache, "med", "mediator=humancapital,rd", "trim=none,p5", "++mediator.bootstrap.draws=200",
                     "hydra.launcher.n_jobs=2", "tracking=off")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    notes = {d.name: (d / "tables" / "table.txt").read_text() for d in (tmp_path / "med").iterdir() if (d / "tables").is_dir()}
    shared = sorted(name for name, text in notes.items() if "shared with an earlier job" in text)
    choice = lambda name, group: re.search(rf"{group}=(\w+)", name).group(0)  # noqa: E731
    assert len(notes) == 4 and len(shared) == 2 and {choice(n, "trim") for n in shared} == {"trim=none", "trim=p5"}
    alone = run_sweep(tmp_path, cache, "alone", choice(shared[0], "mediator"), choice(shared[0], "trim"), "++mediator.bootstrap.draws=200",
                      "tracking=off")
    assert alone.returncode == 0, alone.stdout[-3000:] + alone.stderr[-3000:]
    (job,) = [d for d in (tmp_path / "alone").iterdir() if (d / "tests.csv").exists()]
    boot = lambda path: pd.read_csv(path).query("test.str.startswith('bootstrap')", engine="python").reset_index(drop=True)  # noqa: E731
    ours, theirs = boot(tmp_path / "med" / shared[0] / "tests.csv"), boot(job / "tests.csv")
    assert len(ours) == 8
    for column in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-10)


def test_progress_lines_of_jobs_side_by_side_name_their_job(tmp_path, cache):
    """Two heterogeneity jobs on two workers: their permutation tests' progress lines interleave,
    and each line says which job it is."""
    done = run_sweep(tmp_path, cache, "labels", "hetero=ownership,region", "++hetero.permutation.draws=300",
                     "hydra.launcher.n_jobs=2", "tracking=off")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    progress = [line for line in done.stderr.splitlines() if "permutation test: " in line]
    found = [re.match(r"\[(hetero=\w+)\] permutation test: \d+/300 draws$", line) for line in progress]
    assert all(found), [line for line, m in zip(progress, found) if m is None]
    assert {m.group(1) for m in found} == {"hetero=ownership", "hetero=region"}
    assert len({r.pid for r in sweep.job_records(tmp_path / "labels")}) == 2  # side by side, on two workers


@pytest.fixture
def bad_experiments(tmp_path) -> Path:
    extra = tmp_path / "extra" / "experiment"
    extra.mkdir(parents=True)
    for year in range(2004, 2012):
        (extra / f"ok_{year}.yaml").write_text(f'# @package _global_\nsample: {{name: no{year}, query: "year != {year}", label: "Without {year}"}}\n')
    (extra / "bad_empty.yaml").write_text('# @package _global_\nsample: {name: future, query: "year > 2030", label: "After 2030"}\n')
    (extra / "bad_collinear.yaml").write_text("# @package _global_\nmodel: {controls: [scale, age, soe]}\n")  # soe is constant within firm
    return tmp_path / "extra"


def test_two_failing_jobs_among_ten_are_reported_and_the_others_finish(tmp_path, cache, bad_experiments):
    names = ["ok_2004", "ok_2005", "bad_empty", "ok_2006", "ok_2007", "ok_2008", "bad_collinear", "ok_2009", "ok_2010", "ok_2011"]
    done = run_sweep(tmp_path, cache, "fail", f"hydra.searchpath=[file://{bad_experiments}]", f"experiment={','.join(names)}")
    assert done.returncode != 0
    summary = pd.read_csv(tmp_path / "fail" / "summary.csv").set_index("overrides")
    assert (summary.status == "finished").sum() == 8
    assert summary.loc["experiment=bad_empty", "status"] == "failed"
    assert summary.loc["experiment=bad_collinear", "status"] == "failed"
    assert "no observations" in summary.loc["experiment=bad_empty", "reason"]
    assert "soe is collinear" in summary.loc["experiment=bad_collinear", "reason"]
    assert "no observations" in done.stdout and "soe is collinear" in done.stdout  # printed, not only written
    for name in ("bad_empty", "bad_collinear"):
        job_dir = Path(summary.loc[f"experiment={name}", "dir"])
        assert "SpecError" in (job_dir / "traceback.txt").read_text()
        assert "Traceback" in (job_dir / "run.log").read_text()  # in the job's log
    client, parents, runs = runs_of(tmp_path)
    children = children_of(runs, parents[0].info.run_id)
    assert sorted(c.info.status for c in children) == ["FAILED"] * 2 + ["FINISHED"] * 8
    for child in (c for c in children if c.info.status == "FAILED"):
        assert "traceback.txt" in artifact_files(client, child.info.run_id)
        assert "SpecError" in child.data.tags["eqexp.error"]
    assert parents[0].info.status == "FAILED" and parents[0].data.metrics["jobs_failed"] == 2


@pytest.mark.slow
def test_ray_launcher_gives_the_joblib_results(tmp_path, cache):
    """A local Ray instance runs the same sweep; every number equals the joblib run's."""
    import hydra_plugins.hydra_ray_launcher  # noqa: F401  (make test installs it)
    import ray  # noqa: F401
    jobs = ("hetero=ownership,region", "trim=none,p5")
    (tmp_path / "joblib").mkdir()
    (tmp_path / "ray").mkdir()
    by_joblib = run_sweep(tmp_path / "joblib", cache, "sweep", *jobs)
    by_ray = run_sweep(tmp_path / "ray", cache, "sweep", "hydra/launcher=ray", *jobs)
    assert by_joblib.returncode == 0 and by_ray.returncode == 0, by_ray.stdout[-3000:] + by_ray.stderr[-3000:]
    assert "Ray Launcher is launching 4 jobs" in by_ray.stdout + by_ray.stderr
    prints = {r.fingerprint for d in ("joblib", "ray") for r in sweep.job_records(tmp_path / d / "sweep")}
    assert len(prints) == 1, f"the data code changed between the two sweeps: {prints}"
    a = pd.read_csv(tmp_path / "joblib" / "sweep" / "combined_coefficients.csv")
    b = pd.read_csv(tmp_path / "ray" / "sweep" / "combined_coefficients.csv")
    assert len(a) == len(b) > 0
    columns = ["job", "label", "model", "sample", "term", "estimate", "std_error", "statistic", "p_value", "n_obs", "r2"]
    pd.testing.assert_frame_equal(a[columns], b[columns], check_exact=True)
    _, parents, runs = runs_of(tmp_path / "ray")
    assert sorted(c.info.status for c in children_of(runs, parents[0].info.run_id)) == ["FINISHED"] * 4


KILL_SWEEP = ("trim=none,p1,p5,winsor1", "lags=none,l1", "hydra.launcher.n_jobs=2")  # 8 jobs, 2 workers on any machine


@pytest.mark.slow
def test_killed_worker_leaves_jobs_never_finished_and_a_rerun_completes_only_those(tmp_path, cache):
    first = tmp_path / "first"
    process = subprocess.Popen(sweep_command(tmp_path, cache, "first", *KILL_SWEEP), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.time() + 600
    while process.poll() is None and killed is None and time.time() < deadline:
        records = sweep.read_statuses(first) if (first / sweep.STATUS_DIR).exists() else {}
        running = [r for r in records.values() if r.status == "started" and time.time() - r.started > 0.3]
        if any(r.status == "finished" for r in records.values()) and running:
            killed = running[0]
            os.kill(killed.pid, signal.SIGKILL)  # the worker process dies mid-job, as in an OOM kill
        time.sleep(0.05)
    out, _ = process.communicate(timeout=600)
    assert killed is not None, out[-3000:]
    assert process.returncode != 0
    after = statuses(first)
    assert len(after) == 8 and after[killed.num] == "never finished"
    finished = {n for n, s in after.items() if s == "finished"}
    unfinished = {n for n, s in after.items() if s == "never finished"}
    assert finished and unfinished and finished | unfinished == set(range(8))
    summary = pd.read_csv(first / "summary.csv")
    assert set(summary[summary.status == "never finished"].job) == unfinished
    assert "never finished" in out and f"pid {killed.pid}" in (first / "summary.md").read_text()
    client, parents, runs = runs_of(tmp_path)
    assert parents[0].info.status == "KILLED"
    killed_runs = [r for r in children_of(runs, parents[0].info.run_id) if r.info.status == "KILLED"]
    assert len(killed_runs) == len(unfinished)  # every planned job is visible in MLflow

    second = run_sweep(tmp_path, cache, "second", *KILL_SWEEP)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    again = statuses(tmp_path / "second")
    assert {n for n, s in again.items() if s == "skipped"} == finished
    assert {n for n, s in again.items() if s == "finished"} == unfinished
    summary2 = pd.read_csv(tmp_path / "second" / "summary.csv").set_index("job")
    summary1 = summary.set_index("job")
    for n in finished:  # skipped jobs show the results of the earlier run
        assert summary2.loc[n, "estimate"] == pytest.approx(summary1.loc[n, "estimate"])
        assert summary2.loc[n, "reused_run_id"] == summary1.loc[n, "run_id"]

    forced = run_sweep(tmp_path, cache, "forced", "trim=none", "lags=none", "force=true")
    assert forced.returncode == 0 and statuses(tmp_path / "forced") == {0: "finished"}
