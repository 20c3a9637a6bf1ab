"""Shared fixtures: a small hand-made panel with a known quadratic DGP, the small world, a small real sweep."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from numerics import in_test_order

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """`make test-latest`: a deprecation that eqexp's own code triggers fails its test (pyproject ignores them otherwise)."""
    import os

    if os.environ.get("EQEXP_CANARY"):
        for category in ("DeprecationWarning", "FutureWarning"):
            config.addinivalue_line("filterwarnings", f"error::{category}:eqexp")


def default_sigint() -> None:
    """Popen's preexec_fn for a command that a test Ctrl-C's: Ctrl-C as from a terminal, even when
    the suite itself runs where SIGINT is ignored (a background job, `nohup`), which children inherit."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def process_cache():
    """This process's cache of jobs' shared work (`eqexp.cache.PROCESS`), empty for the test and after it."""
    from eqexp.cache import PROCESS

    PROCESS.reset()
    try:
        yield PROCESS
    finally:
        PROCESS.reset()


def make_panel(n_firms: int = 300, seed: int = 7) -> pd.DataFrame:
    """An unbalanced firm-year panel, 2004-2013, with gaps, a province-level treatment and a firm effect."""
    rng = np.random.default_rng(seed)
    rows = []
    for firm in range(n_firms):
        years = np.arange(2004, 2014)[rng.random(10) < 0.7]
        rows += [(firm, int(y)) for y in years]
    df = pd.DataFrame(rows, columns=["firm_id", "year"])
    df["province"] = df.firm_id % 12 + 11
    shock = rng.normal(0, 0.3, (100, 20))
    df["market"] = 4 + shock[df.province - 11, df.year - 2004]
    df["scale"] = rng.normal(10, 1, len(df))
    df["age"] = rng.normal(2, 0.5, len(df))
    firm_effect = rng.normal(0, 0.1, n_firms)[df.firm_id]
    df["quality"] = 0.05 * df.market - 0.006 * df.market**2 + 0.02 * df.scale + firm_effect + 0.01 * (df.year - 2004) + rng.normal(0, 0.05, len(df))
    df["soe"] = (df.firm_id % 10 == 0).astype("int64")
    return in_test_order(df)


@pytest.fixture
def panel() -> pd.DataFrame:
    return make_panel()


SMALL_WORLD = dict(n_firms=4000, n_obs=24000, seed=20240101)


@pytest.fixture(scope="session")
def world():
    """The small synthetic world (4,000 firms), generated once per test session."""
    from eqexp.data.synthetic import WorldParams, generate_world

    return generate_world(WorldParams(**SMALL_WORLD))


@pytest.fixture(scope="session")
def raw(world):
    """Its raw sources (customs, accounts, prices, education, R&D, ...), with every complication of the licensed files."""
    from eqexp.data.synthetic import generate_sources

    return generate_sources(world)


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory) -> Path:
    """One data cache shared by the modules whose sweeps run on `data=synthetic_small` (as the README's
    `data.cache_dir=/shared/...` is shared): the first sweep that needs the panel builds it, the others
    read it. Entries are keyed by the data's fingerprint and written atomically."""
    return tmp_path_factory.mktemp("small_cache")


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory) -> Path:
    """A real `run.py -m` sweep on the small world, in its own folder with its MLflow store: two jobs
    that finish and one that fails (an empty sample). Shared by the report and the package tests."""
    base = tmp_path_factory.mktemp("small_sweep")
    args = [sys.executable, "run.py", "-m", "data=synthetic_small", f"data.cache_dir={base / 'cache'}",
            f"tracking.uri=sqlite:///{base / 'mlflow.db'}", f"tracking.artifact_root={base / 'mlartifacts'}",
            f"hydra.sweep.dir={base / 'sweep'}", 'sample.query="year != 2010","year != 2004","year > 2030"']
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1 and "2 finished, 1 failed" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    return base


PIXEL_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
HOSTILE = "<script>alert('x')</script> & <i onclick=alert(1)>"  # a text that must reach a page escaped


def hand_made_run(path: Path, root: Path) -> Path:
    """A finished single run's directory as eqexp writes it, made by hand (no estimation): Hydra's
    record, results, a table, a figure, a build log, its environment, and a stray data file."""
    from eqexp import environment
    from eqexp.inference import hypothesis
    from eqexp.inference.hypothesis import p_test
    from eqexp.report.table import Table, write_table

    hydra = {"runtime": {"cwd": str(root), "choices": {"data": "tiny", "model": "baseline", "experiment": None},
                         "config_sources": [{"path": "hydra.conf", "schema": "pkg", "provider": "hydra"},
                                            {"path": str(root / "conf"), "schema": "file", "provider": "main"}]},
             "job": {"config_name": "config"},
             "overrides": {"hydra": [f"hydra.run.dir={path}", "hydra.mode=RUN"],
                           "task": ["data=tiny", f"data.cache_dir={root}/cache", f"tracking.uri=sqlite:///{root}/m.db",
                                    "model.controls=[scale]", f"data.path={root}/panel.csv"]}}
    config = {"data": {"name": "tiny", "source": "panel", "path": f"{root}/panel.csv"}, "model": {"controls": ["scale"]}}
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": hydra}))
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(hydra["overrides"]["task"]))
    (path / "job.json").write_text(json.dumps({"status": "finished", "seconds": 1.5, "fingerprint": "panel-0123abcd"}))
    pd.DataFrame({"model": ["(1)"], "term": ["market"], "estimate": [0.05], "statistic": [2.5], "p_value": [0.01]}).to_csv(path / "coefficients.csv", index=False)
    lind_mehlum = p_test("utest", "lind_mehlum", "the curve is monotone or U-shaped", 2.65, 0.004, "t", 96)
    hypothesis.frame([("(1)", lind_mehlum)]).to_csv(path / "tests.csv", index=False)
    pd.DataFrame({"step": ["(1) singletons"], "rows_in": [100], "rows_out": [97], "reason": [HOSTILE]}).to_csv(path / "rows.csv", index=False)
    table = Table("baseline", [["", "(1)"], ["VARIABLES", "quality"]], [["Market", "0.0500**"], ["", "(2.50)"]],
                  [["Observations", "97"]], ["t-statistics in parentheses", HOSTILE])
    write_table(table, path / "tables", "table")
    (path / "figures").mkdir()
    (path / "figures" / "inverted_u_m1.png").write_bytes(PIXEL_PNG)
    (path / "build_log.json").write_text(json.dumps({"options": {"sigma": "table"},
                                                      "steps": [{"step": "clean", "rows_in": 120, "rows_out": 100, "reason": "duplicates"}]}))
    (path / "panel.parquet").write_bytes(b"PAR1 not really")  # data that must never reach a package
    environment.write(path, root)
    return path


TIDY = dict(hs_vintages=False, monthly=False, customs_ids=False, restructuring=False)


@pytest.fixture(scope="session")
def tidy(world):
    """The same world's sources with every complication switched off: one id, one HS vintage, yearly records."""
    from eqexp.data.synthetic import generate_sources

    return generate_sources(world, TIDY)


@pytest.fixture(scope="session")
def built(raw):
    """The panel built from the small world's sources, every complication on."""
    from eqexp.build import build

    return build(raw)
