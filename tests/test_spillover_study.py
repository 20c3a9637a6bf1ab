"""The second study (Shi & Sang 2023, information spillover) as measures + YAML only.

Fast: every spill* preset composes and runs on the small spillover world, with the layout it
promises. Slow: at full size, the spillover effects and their heterogeneity have the truth's
signs and sizes (truth.json: "spillover").
"""

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from eqexp.data.load import load
from eqexp.runner import run_job
from eqexp.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("spill*.yaml"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def config(cache: Path, experiment: str, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["tracking=off", f"data.cache_dir={cache}", f"experiment={experiment}",
                                            *overrides])


def coefs(result, term: str) -> list[float]:
    return [f.coef(term) for f in result.fits]


def test_presets_exist():
    assert {"spill1_baseline", "spill2_alt_indicators", "spill3_city", "spill4_general_trade", "spill5_network",
            "spill6_density", "spill7_size", "spill8_factor", "spill9_destination"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_spill_preset_runs_on_the_small_world(cache, tmp_path, experiment):
    cfg = config(cache, experiment, "data=spill_small")
    spec = load_spec(cfg)
    assert spec.data.name == "spill_small" and spec.data.build["spillover"]
    result = run_job(cfg, tmp_path)
    assert result.fits and all(np.isfinite(f.coef(spec.model.treatment)) for f in result.fits)
    if spec.hetero.groups:  # group-difference tests, as in the reference study's Tables 8-11
        assert len(result.fits) == len(spec.hetero.groups)
        assert not result.tests.empty
    assert (tmp_path / "job.json").exists()


def test_small_world_spillover_is_positive_and_recovered(cache, tmp_path):
    """Even at 4,000 firms the pooled effects have the truth's sign and are significant."""
    result = run_job(config(cache, "spill1_baseline", "data=spill_small"), tmp_path)
    truth = load(load_spec(config(cache, "spill1_baseline", "data=spill_small")).data).truth["spillover"]
    fit = result.fits[-1]
    assert truth["gamma"] == {"spill_scale": 0.01, "spill_div": 0.05}
    for term in ("spill_scale", "spill_div"):
        assert fit.coef(term) > 0
        assert 0.4 < fit.coef(term) / truth["gamma"][term] < 1.6


def test_destination_income_columns_differ(cache, tmp_path):
    result = run_job(config(cache, "spill9_destination", "data=spill_small"), tmp_path)
    high, other = coefs(result, "spill_scale")
    assert high > other > 0  # multipliers 1.3 vs 0.7


def test_reference_world_is_unchanged_by_default():
    """No spillover unless asked: the reference world draws no exogenous values."""
    from eqexp.data.synthetic import WorldParams, generate_world
    from eqexp.data.synthetic import generate_sources

    world = generate_world(WorldParams(n_firms=300, n_obs=1500))
    assert world.truth["spillover"]["gamma"] == {"spill_scale": 0.0, "spill_div": 0.0}
    info = generate_sources(world).info["customs"]
    assert info["exogenous_values"] is False and info["spillover"] == {}


# --------------------------------------------------------------------------- full size (slow)


def _full(cache, tmp_path, experiment):
    return run_job(config(cache, experiment, "data=spill"), tmp_path)  # the world with a true spillover


@pytest.mark.slow
def test_full_size_recovery(cache, tmp_path):
    """Pooled, by factor intensity, by size and by destination income: signs, sizes and order of the truth.

    Nominal effect of a group = γ × its multiplier × the mean of the other multipliers (destination:
    about 1.19 for the value-weighted TQ, 82 % of flows go to high-income destinations; size: 1.0;
    factor intensity: the sample mix). Tolerance: the estimate lies within [0.6, 1.25] of nominal
    (the pooled OLS weights groups by their within variation in S and D, and the build's measures
    differ slightly from the generator's), and every ordering the truth implies holds.
    """
    base = _full(cache, tmp_path / "b", "spill1_baseline")
    truth = load(load_spec(config(cache, "spill1_baseline", "data=spill")).data).truth["spillover"]
    g, m = truth["gamma"], truth["multipliers"]
    panel = load(load_spec(config(cache, "spill1_baseline", "data=spill")).data).panel
    m_int = panel["factor_intensity"].map(m["factor_intensity"]).mean()
    dest = 0.82 * m["destination"]["high"] + 0.18 * m["destination"]["other"]
    fit = base.fits[-1]
    for term in ("spill_scale", "spill_div"):
        nominal = g[term] * m_int * dest
        assert 0.6 < fit.coef(term) / nominal < 1.25, (term, fit.coef(term), nominal)

    size = coefs(_full(cache, tmp_path / "s", "spill7_size"), "spill_scale")
    assert size[0] > size[1] > 0
    factor = coefs(_full(cache, tmp_path / "f", "spill8_factor"), "spill_scale")
    assert factor[2] > factor[1] > factor[0] > 0  # technology > capital > labour
    high, other = coefs(_full(cache, tmp_path / "d", "spill9_destination"), "spill_scale")
    ratio = m["destination"]["high"] / m["destination"]["other"]
    assert high > other > 0 and 0.6 * ratio < high / other < 1.6 * ratio
