"""The education file: province-year shares of the employed by education level, in percent.

Shares tilt a base distribution exponentially until the mean years of schooling equal
exp(humancapital), so ln H reproduces the world's human capital.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.geography import PROVINCE_CODES
from eqexp.measures.mediators import EDUCATION_YEARS


def education(rng: np.random.Generator, province_year: pd.DataFrame) -> pd.DataFrame:
    """Shares (percent) of the nine education levels whose mean years of schooling are exp(humancapital)."""
    levels = list(EDUCATION_YEARS)
    years_of = np.array([EDUCATION_YEARS[k] for k in levels], dtype=float)
    base = np.array([5.0, 25.0, 42.0, 4.0, 12.0, 2.5, 5.5, 3.5, 0.5])
    n = len(province_year)
    prov_effect = rng.normal(0, 0.15, (len(PROVINCE_CODES), len(levels)))
    prov_idx = np.searchsorted(np.array(PROVINCE_CODES), province_year.province.to_numpy())
    ln_base = np.log(base)[None, :] + prov_effect[prov_idx] + rng.normal(0, 0.03, (n, len(levels)))
    target = np.exp(province_year.humancapital.to_numpy())
    theta = np.zeros(n)
    for _ in range(100):  # Newton on the exponential tilt: d mean / d θ = variance of years
        w = np.exp(ln_base + theta[:, None] * years_of[None, :] - (ln_base + theta[:, None] * years_of).max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        mean = w @ years_of
        var = w @ years_of**2 - mean**2
        step = (target - mean) / var
        theta += step
        if np.abs(step).max() < 1e-15:
            break
    w = np.exp(ln_base + theta[:, None] * years_of[None, :] - (ln_base + theta[:, None] * years_of).max(1, keepdims=True))
    shares = 100 * w / w.sum(1, keepdims=True)
    out = pd.DataFrame(shares, columns=levels)
    out.insert(0, "year", province_year.year.to_numpy().astype(np.int64))
    out.insert(0, "province", province_year.province.to_numpy().astype(np.int64))
    return out
