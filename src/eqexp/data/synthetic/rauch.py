"""The rauch file: Rauch's (1999) classification of each HS6 product, conservative and liberal.

n: differentiated, r: reference priced, w: traded on an organised exchange. Metals and basic
chemicals (chapters 28, 29, 72–81) are mostly reference priced or exchange traded, the rest mostly
differentiated. The liberal classification classifies more goods as r or w than the conservative
one (Rauch 1999), so its differentiated goods are a subset of the conservative's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HOMOGENEOUS_CHAPTERS = {"28", "29", *map(str, range(72, 82))}


def rauch(rng: np.random.Generator, hs6: np.ndarray) -> pd.DataFrame:
    """hs6, con, lib for the catalogue's HS2002 codes."""
    hs6 = pd.Series(hs6, dtype=str)
    homogeneous = hs6.str[:2].isin(HOMOGENEOUS_CHAPTERS).to_numpy()
    u = rng.random(hs6.size)
    con = np.where(homogeneous, np.where(u < 0.15, "w", np.where(u < 0.8, "r", "n")), np.where(u < 0.05, "r", "n"))
    v = rng.random(hs6.size)
    lib = np.where((con == "n") & (v < 0.1), "r", np.where((con == "r") & (v < 0.3), "w", con))
    return pd.DataFrame({"hs6": hs6.to_numpy(), "con": con, "lib": lib})
