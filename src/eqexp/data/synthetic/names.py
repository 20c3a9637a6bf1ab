"""Firm names of the synthetic customs: makers named after their province, intermediaries by their trade suffix."""

from __future__ import annotations

import numpy as np

from eqexp.data.geography import provinces
from eqexp.data.synthetic.params import FRONTIER_ID0, INTERMEDIARY_ID0, UNMATCHED_ID0

INTERMEDIARY_SUFFIXES = ("进出口有限公司", "贸易有限公司", "经贸有限公司", "科贸有限公司", "外经贸易公司")
MAKER_SUFFIXES = ("制造有限公司", "实业有限公司", "科技有限公司", "工业有限公司", "股份有限公司")


def firm_names(rng, panel, n_firms, n_unmatched, n_frontier, n_inter):
    """Names of all exporters and a map from firm ids to their index in the names array."""
    zh = dict(zip(provinces().code, provinces().name_zh))
    prov = np.zeros(n_firms + 1, dtype=np.int64)
    prov[panel.firm_id.to_numpy()] = panel.province.to_numpy()
    maker = rng.integers(0, len(MAKER_SUFFIXES), n_firms + n_unmatched + n_frontier)
    names = [f"{zh[prov[i]]}{i:06d}{MAKER_SUFFIXES[maker[i - 1]]}" for i in range(1, n_firms + 1)]
    names += [f"外资{i:06d}{MAKER_SUFFIXES[maker[n_firms + i - 1]]}" for i in range(1, n_unmatched + 1)]
    names += [f"前沿{i:06d}{MAKER_SUFFIXES[maker[n_firms + n_unmatched + i]]}" for i in range(n_frontier)]
    inter = rng.integers(0, len(INTERMEDIARY_SUFFIXES), n_inter)
    names += [f"中国{i:05d}{INTERMEDIARY_SUFFIXES[inter[i - 1]]}" for i in range(1, n_inter + 1)]
    offsets = ((INTERMEDIARY_ID0, n_firms + n_unmatched + n_frontier - 1), (FRONTIER_ID0, n_firms + n_unmatched),
               (UNMATCHED_ID0, n_firms - 1), (0, -1))

    def code(ids: np.ndarray) -> np.ndarray:
        out = np.empty(ids.size, dtype=np.int64)
        done = np.zeros(ids.size, dtype=bool)
        for base, offset in offsets:
            hit = ~done & (ids >= base)
            out[hit] = ids[hit] - base + offset
            done |= hit
        return out

    return np.array(names, dtype=object), code
