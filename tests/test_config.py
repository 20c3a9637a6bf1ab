"""Every YAML file in conf/ composes with Hydra and validates against the typed spec."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from eqexp.spec import SpecError, load_spec

CONF = Path(__file__).resolve().parents[1] / "conf"
OPTIONS = sorted(
    (group.name, f.stem) for group in CONF.iterdir() if group.is_dir() for f in group.glob("*.yaml")
)


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


# groups the defaults list does not name are appended: python run.py -m +multiverse=reference
APPENDED = {"multiverse"}


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_config_file_composes(group, option):
    if (group, option) == ("estimator", "iv"):  # 2SLS needs instruments: alone it is refused, with them it composes
        with pytest.raises(SpecError, match="'model.instruments' is empty"):
            load_spec(composed("estimator=iv"))
        assert load_spec(composed("estimator=iv", "experiment=endogeneity_iv")).model.estimator == "iv"
        return
    spec = load_spec(composed(f"{'+' * (group in APPENDED)}{group}={option}"))
    if group == "hetero" and option != "none":
        assert len(spec.hetero.groups) >= 2
    if group == "lags" and option != "none":
        assert spec.lags.treatment == int(option[-1])
        assert spec.lags.controls == (spec.lags.treatment if option.startswith("all") else 0)


def test_defaults_are_the_reference_baseline():
    spec = load_spec(composed())
    assert (spec.model.outcome, spec.model.treatment, spec.model.square) == ("quality", "market", True)
    assert spec.model.fixed_effects == ["firm_id", "year"] and spec.vcov.cluster == ["firm_id"]
    assert [c.controls for c in spec.model.columns] == [[], None]


def test_command_line_override_is_validated():
    spec = load_spec(composed("vcov=province", "model.controls=[scale,age]"))
    assert spec.vcov.cluster == ["province"] and spec.model.controls == ["scale", "age"]
    with pytest.raises(SpecError, match="Did you mean 'controls'"):
        load_spec(composed("+model.contrls=[scale]"))


def test_table5_has_six_lag_columns():
    spec = load_spec(composed("experiment=table5_lags"))
    assert [(c.lags.treatment, c.lags.controls) for c in spec.model.columns] == [(1, 0), (2, 0), (3, 0), (1, 1), (2, 2), (3, 3)]


def test_one_outputs_root_moves_runs_sweeps_cache_and_mlflow(monkeypatch, tmp_path):
    """`outputs` in conf/config.yaml is the one place the output root is set; every path follows it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "elsewhere"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        spec = load_spec(compose("config", overrides=[f"outputs={root}"]))
        hydra = compose("config", overrides=[f"outputs={root}"], return_hydra_config=True).hydra
        hydra_dirs = (str(hydra.run.dir), str(hydra.sweep.dir))
        default = load_spec(compose("config"))
    assert spec.data.cache_dir == f"{root}/cache"
    assert spec.tracking.uri == f"sqlite:///{root}/mlflow.db" and spec.tracking.artifact_root == f"{root}/mlartifacts"
    assert hydra_dirs[0].startswith(f"{root}/runs/") and hydra_dirs[1].startswith(f"{root}/sweeps/")
    assert default.data.cache_dir == "outputs/cache" and default.tracking.uri == "sqlite:///outputs/mlflow.db"
