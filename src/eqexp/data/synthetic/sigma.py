"""The sigma file: Broda–Weinstein-like import elasticities by HS3 code, some codes missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.params import SourceParams
from eqexp.measures.quality import assign_sigma


def sigma_table(rng: np.random.Generator, hs6: pd.Series, p: SourceParams) -> tuple[pd.DataFrame, np.ndarray]:
    """A Broda–Weinstein-like table of σ by HS3 (some codes missing) and each product's true σ."""
    hs3 = np.sort(hs6.str[:3].unique())
    sigma = np.clip(1 + np.exp(rng.normal(np.log(2.5), 0.5, hs3.size)), 1.5, 15.0).round(3)
    keep = rng.random(hs3.size) >= p.sigma_missing_share
    table = pd.DataFrame({"hs3": hs3[keep], "sigma": sigma[keep]})
    truth = assign_sigma(hs6, dict(zip(table.hs3, table.sigma)), fallback=5.0)["sigma"].to_numpy()
    return table, truth
