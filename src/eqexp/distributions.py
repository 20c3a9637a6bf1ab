"""Tails and quantiles of the t, normal, χ² and F distributions.

The same special functions that `scipy.stats` evaluates, called directly: `scipy.stats`
costs about a second and a half to import, which every job would pay at start-up.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def t_sf(x, df):
    """P(T > x), T ~ t(df)."""
    return special.stdtr(df, -np.asarray(x, dtype=float))


def t_isf(q, df):
    """x with P(T > x) = q."""
    return -special.stdtrit(df, q)


def t_quantile(q, df):
    """x with P(T ≤ x) = q."""
    return special.stdtrit(df, q)


def t_two_sided(x, df):
    """2·(1 − F_t(|x|)), written as pyfixest writes it, so p-values agree to the last digit."""
    return 2 * (1 - special.stdtr(df, np.abs(np.asarray(x, dtype=float))))


def norm_sf(x):
    return special.ndtr(-np.asarray(x, dtype=float))


def norm_cdf(x):
    return special.ndtr(x)


def norm_ppf(q):
    return special.ndtri(q)


def chi2_sf(x, df):
    return special.chdtrc(df, x)


def f_sf(x, df1, df2):
    return special.fdtrc(df1, df2, x)
