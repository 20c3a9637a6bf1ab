"""The MLflow UI, as a person uses it: a finished sweep, `mlflow ui` on a local port, headless Chromium:
the sweep and its jobs, then every model of the sweep (runs nested under the jobs') in one view,
filtered and sorted by a metric that means the same in every run.

Needs Debian's Chromium (`apt-get install -y chromium`, at /usr/bin/chromium) and the
`playwright` Python package (the `dev` extra); no browser is downloaded. `make test` installs
both; without Chromium the test fails with the command that installs it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from eqexp import sweep

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("EQEXP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow ui exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow ui did not answer {url} within {timeout} s")


def stop(server: subprocess.Popen) -> None:
    """Stop the server by its process id (it leads its own process group, with its uvicorn workers)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    try:
        os.killpg(server.pid, signal.SIGKILL)  # workers that outlived the leader
    except ProcessLookupError:
        pass


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, which `make test` installs; without it the test fails and says how to fix it."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make test` (it installs it) or apt-get install -y chromium"
    return CHROMIUM


def test_mlflow_ui_shows_the_sweep_its_jobs_and_every_model_sorted_in_one_view(tmp_path, chromium, small_cache):
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    db = tmp_path / "mlflow.db"
    done = subprocess.run(
        [sys.executable, "run.py", "-m", "data=synthetic_small", f"data.cache_dir={small_cache}",
         f"tracking.uri=sqlite:///{db}", f"tracking.artifact_root={tmp_path / 'mlartifacts'}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", "hetero=none,ownership,region"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("eqexp")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("eqexp.kind") == "sweep")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.info.run_name for c in children) == ["hetero=none", "hetero=ownership", "hetero=region"]
    records = {r.label: r for r in sweep.job_records(tmp_path / "sweep")}

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        cwd=tmp_path, stdout=open(tmp_path / "mlflow_ui.log", "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        wait_for(f"{base}/health", server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1700, "height": 1000})
            page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs")
            page.get_by_text(parent.info.run_name, exact=True).first.wait_for(timeout=90_000)
            # nested runs are folded under their parent: unfold them as a person would
            page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
            for child in children:
                page.get_by_text(child.info.run_name, exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "mlflow_runs.png"), full_page=True)
            text = page.inner_text("body")
            assert parent.info.run_name in text
            assert all(child.info.run_name in text for child in children)

            # every model of the sweep in one view: filtered to model runs, sorted by the uniform metric `estimate`
            models = [r for r in runs if r.data.tags.get("eqexp.kind") == "model"]
            assert len(models) == 2 + 2 + 3  # hetero=none: (1), (2); ownership: 2 groups; region: 3 groups
            query = urllib.parse.urlencode({"searchFilter": "tags.`eqexp.kind` = 'model'", "orderByKey": "metrics.`estimate`",
                                            "orderByAsc": "true"})
            page = browser.new_page(viewport={"width": 1700, "height": 1000})  # a fresh page: the URL's view, not the last one
            page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs?{query}")
            page.get_by_text(models[0].info.run_name, exact=True).first.wait_for(timeout=60_000)
            estimate = {m.info.run_name: m.data.metrics["estimate"] for m in models}
            deadline = time.time() + 30
            while True:  # the table fills, then sorts
                shown = [t for t in page.locator("a[href*='/runs/']").all_inner_texts() if t in estimate]
                if [estimate[n] for n in shown] == sorted(estimate.values()) or time.time() > deadline:
                    break
                time.sleep(0.5)
            page.screenshot(path=str(tmp_path / "mlflow_models.png"), full_page=True)
            assert sorted(shown) == sorted(estimate) and [estimate[n] for n in shown] == sorted(estimate.values()), shown

            # a model's page lists its metrics under the same names as every other model's, with its coefficients.csv values
            for model in models:
                page.goto(f"{base}/#/experiments/{experiment.experiment_id}/runs/{model.info.run_id}")
                page.get_by_text("estimate", exact=True).first.wait_for(timeout=60_000)
                job = next(c for c in children if c.info.run_id == model.data.tags["mlflow.parentRunId"])
                coefs = pd.read_csv(Path(records[job.info.run_name].dir) / "coefficients.csv")
                value = coefs[(coefs.model == model.data.params["fit.column"]) & (coefs.term == "market")].estimate.iloc[0]
                assert model.data.metrics["estimate"] == pytest.approx(value, rel=1e-12)
                text = page.inner_text("body")
                assert model.info.run_name in text and repr(float(value))[:8] in text
            page.screenshot(path=str(tmp_path / "mlflow_run.png"), full_page=True)
            browser.close()
    finally:
        stop(server)
    assert server.poll() is not None
    for shot in ("mlflow_runs.png", "mlflow_models.png", "mlflow_run.png"):
        assert (tmp_path / shot).stat().st_size > 10_000
    print(f"screenshots: {tmp_path / 'mlflow_runs.png'} {tmp_path / 'mlflow_models.png'} {tmp_path / 'mlflow_run.png'}")
