"""The synthetic world: determinism, shape, the study's descriptives, the DGP, geography."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from eqexp.data import geography
from eqexp.data.synthetic.latent import INTENSITY_OF
from eqexp.data.synthetic.world import CONTROLS, World, WorldParams, generate_world, multiplier, sa_fic

# One fifth of the reference size: descriptives and shares settle, generation takes < 1 s.
MEDIUM = WorldParams(n_firms=20_000, n_obs=118_919)
SMALL = WorldParams(n_firms=2_000, n_obs=12_000)

# Reference study, Table 2 (seeds/003): median, sd, and our tolerance on each.
TABLE2 = {
    "quality": (0.714, 0.107, 0.01),
    "market": (4.276, 0.271, 0.05),
    "scale": (10.746, 1.449, 0.15),
    "age": (2.122, 0.648, 0.1),
    "roa": (0.083, 0.166, 0.015),
    "rdebt": (0.553, 0.272, 0.015),
    "invint": (0.199, 0.161, 0.02),
    "humancapital": (2.234, 0.097, 0.03),
    "rd": (5.859, 0.923, 0.1),
}
STUDY_REGION_SHARES = {"East": 539_022, "Central": 38_753, "West": 16_821}  # Table 11 N


@pytest.fixture(scope="module")
def medium() -> World:
    return generate_world(MEDIUM)


def test_same_params_same_world_and_other_seed_differs():
    a, b = generate_world(SMALL), generate_world(WorldParams(**asdict(SMALL)))
    pd.testing.assert_frame_equal(a.panel, b.panel, check_exact=True)
    pd.testing.assert_frame_equal(a.latent, b.latent, check_exact=True)
    assert a.truth == b.truth
    c = generate_world(WorldParams(**{**asdict(SMALL), "seed": SMALL.seed + 1}))
    assert not np.allclose(a.panel.quality, c.panel.quality)
    assert not np.allclose(a.province_year.market, c.province_year.market)


def test_columns_and_dtypes(medium):
    ints = ["firm_id", "year", "province", "city", "industry", "cic2", "soe"]
    strings = ["region", "factor_intensity", "intensity2"]
    floats = ["quality", "market", "scale", "age", "roa", "rdebt", "fic", "invint"]
    floats += ["humancapital", "rd", "market_iv"]
    assert list(medium.panel.columns) == ints[:6] + ["region", "soe"] + strings[1:] + floats
    panel = medium.panel
    assert all(panel[c].dtype == np.int64 for c in ints)
    assert all(pd.api.types.is_string_dtype(panel[c]) for c in strings)
    assert all(panel[c].dtype == np.float64 for c in floats)
    assert panel.notna().all().all()
    assert list(medium.latent.columns) == ["firm_id", "year", "quality_latent", "effect"]


def test_panel_shape(medium):
    panel = medium.panel
    assert len(panel) == MEDIUM.n_obs
    assert panel.firm_id.nunique() == MEDIUM.n_firms
    assert (panel.year.min(), panel.year.max()) == (2004, 2013)
    assert not panel.duplicated(["firm_id", "year"]).any()
    assert panel.equals(panel.sort_values(["firm_id", "year"]))
    # Every year carries between 8 % and 12 % of the firm-years.
    assert panel.year.value_counts(normalize=True).between(0.08, 0.12).all()


def test_panel_is_unbalanced_with_gaps(medium):
    keys = set(zip(medium.panel.firm_id, medium.panel.year))
    gaps = sum((f, y + 2) in keys and (f, y + 1) not in keys for f, y in keys)
    assert gaps > 0.02 * MEDIUM.n_obs
    per_firm = medium.panel.groupby("firm_id").size()
    assert per_firm.min() == 1 and per_firm.max() == 10
    assert 5.5 < per_firm.mean() < 6.5


def test_geography_and_region_shares(medium):
    panel = medium.panel
    assert sorted(panel.province.unique()) == sorted(geography.PROVINCE_CODES)
    regions = panel.groupby("province").region.agg(lambda r: set(r))
    assert {p: r.pop() for p, r in regions.items() if len(r) == 1} == geography.REGION_OF
    assert [geography.REGION_OF[p] for p in (11, 14, 50, 46)] == ["East", "Central", "West", "East"]
    shares = panel.region.value_counts(normalize=True)
    for region, share in STUDY_REGION_SHARES.items():
        assert abs(shares[region] - share / 594_596) < 0.015, region
    assert (panel.city // 100 == panel.province).all()
    assert (panel.industry // 100 == panel.cic2).all()


def test_ownership_and_factor_intensity(medium):
    panel = medium.panel
    assert 0.03 <= panel.soe.mean() <= 0.05
    assert panel.groupby("firm_id").soe.nunique().max() == 1  # initial status, fixed
    assert set(panel.cic2) <= set(range(13, 43)) - {38}
    assert (panel.factor_intensity == panel.cic2.map(INTENSITY_OF)).all()
    assert ((panel.intensity2 == "labour") == (panel.factor_intensity == "labour")).all()
    assert abs((panel.intensity2 == "labour").mean() - 262_095 / 594_596) < 0.02


@pytest.mark.parametrize("var", list(TABLE2))
def test_descriptives_match_table2(medium, var):
    median, sd, tol = TABLE2[var]
    x = medium.panel[var]
    assert abs(x.median() - median) < tol
    assert abs(x.std() - sd) < tol


def test_ranges(medium):
    panel = medium.panel
    assert 0 < panel.quality.min() and panel.quality.max() < 1
    assert 0.35 < panel.quality.min() < 0.45 and 0.92 < panel.quality.max() < 0.99
    assert 3.1 < panel.market.min() and panel.market.max() < 4.8
    assert panel.age.min() == 0 and panel.invint.between(0, 0.75).all()
    assert panel.roa.between(-0.234, 0.909).all() and panel.rdebt.between(0.023, 1.37).all()


def test_fic_is_ln_abs_sa_index(medium):
    panel = medium.panel
    size = panel.scale - np.log(1000)  # ln RMB million
    age_years = np.minimum(np.round(np.expm1(panel.age)), 37)
    sa = -0.737 * size + 0.043 * size**2 - 0.040 * age_years
    np.testing.assert_allclose(panel.fic, np.log(np.abs(sa)), rtol=1e-12)
    # e million RMB of assets (size 1), 50 years old (capped at 37).
    by_hand = np.log(abs(-0.737 * 1 + 0.043 * 1 - 0.040 * 37))
    np.testing.assert_allclose(sa_fic(np.array([np.log(1000) + 1]), np.array([50])), by_hand)


def test_segmentation_path(medium):
    py = medium.province_year
    assert (py.year.min(), py.year.max()) == (2000, 2013) and len(py) == 31 * 14
    np.testing.assert_allclose(py.market, np.log(np.sqrt(1 / py.seg)))
    assert py.seg.between(5e-5, 2e-3).all()
    national = py.groupby("year").seg.median()
    assert national[2013] < 0.6 * national[2004]
    # Province-specific movement net of province levels and the common year path.
    wide = py.pivot(index="province", columns="year", values="market").to_numpy()
    resid = wide - wide.mean(1, keepdims=True) - wide.mean(0, keepdims=True) + wide.mean()
    assert resid.std() > 0.15
    merged = medium.panel.merge(py, on=["province", "year"], suffixes=("", "_py"))
    np.testing.assert_array_equal(merged.market, merged.market_py)


def test_quality_is_latent_plus_bounded_noise(medium):
    eps = medium.panel.quality - medium.latent.quality_latent
    assert abs(eps.mean()) < 1e-3 and abs(eps.std() - MEDIUM.sigma_eps) < 1e-3
    assert eps.abs().max() < 3 * MEDIUM.sigma_eps


def test_effect_is_multiplied_centred_quadratic(medium):
    p, panel, truth = MEDIUM, medium.panel, medium.truth
    mult = multiplier(p, panel.soe.to_numpy(), panel.region.to_numpy(), panel.year.to_numpy())
    expected = mult * (p.beta1 * panel.market + p.beta2 * panel.market**2 - truth["effect_offset"])
    np.testing.assert_allclose(medium.latent.effect, expected, atol=1e-12)
    assert (medium.latent.effect[panel.soe == 1] == 0).all()
    assert truth["turning_point"] == pytest.approx(0.05 / 0.0124)


def test_within_firm_quality_follows_the_equation(medium):
    """Within a firm, latent quality moves exactly with γ_t, the effect, δ'x and the mediators."""
    p, panel, latent = MEDIUM, medium.panel, medium.latent
    gamma = panel.year.astype(str).map(medium.truth["year_effects"]).to_numpy()
    systematic = (
        gamma + latent.effect
        + sum(p.delta[k] * panel[k] for k in CONTROLS)
        + p.b_h * panel.humancapital + p.b_r * panel.rd
    )
    alpha = latent.quality_latent - systematic
    assert alpha.groupby(panel.firm_id).std().max() < 1e-12


def test_mediator_shocks_orthogonal_to_market(medium):
    """With province and year effects, humancapital on market returns a_h exactly."""
    panel = medium.panel
    x, y = panel.market.to_numpy(), panel.humancapital.to_numpy()
    prov, year = (np.unique(panel[c], return_inverse=True)[1] for c in ("province", "year"))
    for _ in range(300):  # two-way demeaning by alternating projections
        for g in (prov, year):
            x = x - (np.bincount(g, x) / np.bincount(g))[g]
            y = y - (np.bincount(g, y) / np.bincount(g))[g]
    assert (x @ y) / (x @ x) == pytest.approx(MEDIUM.a_h, abs=1e-6)


def test_truth_is_json_and_records_params(medium):
    truth = json.loads(json.dumps(medium.truth))
    assert truth["params"] == asdict(MEDIUM)
    assert WorldParams(**truth["params"]) == MEDIUM
    assert truth["multipliers"]["soe"] == {"0": 1.0, "1": 0.0}
    assert set(truth["year_effects"]) == {str(y) for y in range(2004, 2014)}
    assert truth["indirect_linear"]["humancapital"] == pytest.approx(0.0303 * 0.0338)
    from_yaml = WorldParams(region_mult={"East": 1, "Central": 0, "West": 0})
    assert from_yaml.region_mult == {"East": 1.0, "Central": 0.0, "West": 0.0}


def test_rd_cells_cover_industry_province_year(medium):
    cells = medium.rd_cells
    assert len(cells) == 29 * 31 * 14
    merged = medium.panel.merge(cells, on=["cic2", "province", "year"], suffixes=("", "_cell"))
    assert len(merged) == MEDIUM.n_obs
    np.testing.assert_array_equal(merged.rd, merged.rd_cell)


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError, match="n_obs"):
        generate_world(WorldParams(n_firms=100, n_obs=2_000))
    with pytest.raises(ValueError, match="region_mult"):
        generate_world(WorldParams(region_mult={"East": 1.0}))


def test_adjacency():
    adj = geography.ADJACENCY
    assert set(adj) == set(geography.PROVINCE_CODES) and len(adj) == 31
    assert all(a in adj[b] for a in adj for b in adj[a])  # symmetric
    assert all(adj.values())
    assert adj[46] == (44,) and adj[31] == (32, 33) and adj[11] == (12, 13)
    assert len(geography.adjacent_pairs()) == sum(map(len, adj.values())) // 2
    regions = pd.Series(geography.REGION_OF).value_counts()
    assert regions.to_dict() == {"West": 12, "East": 11, "Central": 8}


@pytest.mark.slow
def test_full_size_world_and_pooled_recovery():
    import pyfixest as pf
    full = generate_world(WorldParams())
    panel = full.panel.assign(quality_latent=full.latent.quality_latent)
    assert len(panel) == 594_596 and panel.firm_id.nunique() == 100_000
    rhs = "market + I(market**2) + scale + age + roa + rdebt + fic | firm_id + year"
    fit = pf.feols(f"quality ~ {rhs}", panel, vcov={"CRV1": "firm_id"})
    pseudo = pf.feols(f"quality_latent ~ {rhs}", panel).coef()
    terms = ["market", "I(market ** 2)"]
    z = (fit.coef()[terms] - pseudo[terms]) / fit.se()[terms]
    assert (z.abs() < 3).all(), z
    assert fit.tstat()["I(market ** 2)"] < -4


def test_trade_names_stay_three_characters_for_the_default_world_and_grow_to_four_beyond():
    """A world of more firms than three-character names (72³) draws four-character ones; smaller
    worlds draw exactly the names they always did (the same codes from the same stream)."""
    from eqexp.data.synthetic.identity import TRADE_CHARS, trade_codes, trade_names

    k = len(TRADE_CHARS)
    small = trade_codes(np.random.default_rng(5), 1000)
    assert (small == np.random.default_rng(5).choice(np.arange(k**3), 1000, replace=False)).all()
    assert {len(n) for n in trade_names(small)} == {3}
    big = trade_names(trade_codes(np.random.default_rng(5), k**3 + 5000))
    assert len(set(big)) == k**3 + 5000 and {len(n) for n in big} == {3, 4}
    assert set(trade_names(np.array([k**3, k**3 + k**4 - 1]))) == {TRADE_CHARS[0] * 4, TRADE_CHARS[-1] * 4}
