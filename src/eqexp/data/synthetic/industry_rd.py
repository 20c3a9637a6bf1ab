"""The industry_rd file: R&D expenditure and output (10k RMB) by CIC2 × province × year.

rd_expenditure = 10⁴ e^rd and output = 100 rd_expenditure / rd, so both the "pct" (100 R&D /
output) and the "ln_expenditure" transforms of `measures.mediators.rd_intensity` return the
world's rd.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def industry_rd(rd_cells: pd.DataFrame) -> pd.DataFrame:
    """R&D expenditure and output (10k RMB) by CIC2 × province × year, from the world's rd."""
    rd = rd_cells.rd.to_numpy()
    expenditure = 1e4 * np.exp(rd)
    return pd.DataFrame({
        "industry": rd_cells.cic2.to_numpy().astype(np.int64),
        "province": rd_cells.province.to_numpy().astype(np.int64),
        "year": rd_cells.year.to_numpy().astype(np.int64),
        "rd_expenditure": expenditure,
        "output": 100 * expenditure / rd,
    })
