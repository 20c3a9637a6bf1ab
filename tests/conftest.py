"""Shared fixtures: a small hand-made panel with a known quadratic DGP."""

import numpy as np
import pandas as pd
import pytest


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
    return df


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
