"""Monthly transaction records: each customs record shipped over 1 + Poisson(λ) distinct months (at most 12).

A record's value and quantity are shared out over its months (exponential weights), so that
aggregation to the year gives the record back to rounding; its unit, code and trade mode stay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.params import SourceParams

STEPS = np.array([1, 5, 7, 11])  # coprime with 12: k steps from any month visit k distinct months


def monthly(rng: np.random.Generator, customs: pd.DataFrame, p: SourceParams) -> tuple[pd.DataFrame, dict]:
    """Customs split into monthly records, with a `month` column after `year`."""
    n = len(customs)
    k = np.minimum(12, 1 + rng.poisson(p.months_extra_mean, n))
    row = np.repeat(np.arange(n), k)
    j = np.arange(row.size) - np.repeat(np.cumsum(k) - k, k)  # 0..k-1 within a record
    first, step = rng.integers(0, 12, n), rng.choice(STEPS, n)
    month = (first[row] + j * step[row]) % 12 + 1
    w = rng.exponential(1.0, row.size)
    share = w / np.repeat(np.add.reduceat(w, np.cumsum(k) - k), k)
    out = customs.iloc[row].reset_index(drop=True)
    out["quantity"] = out["quantity"].to_numpy() * share
    out["value_usd"] = out["value_usd"].to_numpy() * share
    out.insert(out.columns.get_loc("year") + 1, "month", month.astype(np.int64))
    return out, {"records_before": int(n), "monthly_records": int(row.size)}
