"""The HS6 product catalogue of the synthetic customs: products per CIC2 industry, their units and price levels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.params import SourceParams

# HS chapters each CIC2 industry exports. Food, beverages, tobacco and petroleum would
# naturally export chapters that methods §1.4 step 7 excludes; here they export
# manufactured by-products so every world firm-year keeps a measurable flow, and their
# agricultural exports appear as side flows the cleaning drops (AGRI_CHAPTERS).
CHAPTERS: dict[int, tuple[int, ...]] = {
    13: (29, 35, 38), 14: (33, 35), 15: (35, 38), 16: (48,), 17: (52, 54, 55, 58, 60, 63), 18: (61, 62),
    19: (42, 43, 64), 20: (44, 45, 46), 21: (94,), 22: (48,), 23: (49,), 24: (92, 95, 96), 25: (34, 38),
    26: (28, 29, 31, 32, 33, 34, 38), 27: (30,), 28: (54, 55), 29: (40,), 30: (39,), 31: (68, 69, 70),
    32: (72, 73), 33: (74, 75, 76, 78, 79, 81), 34: (73, 82, 83), 35: (84,), 36: (84,), 37: (86, 87, 88, 89),
    39: (85,), 40: (85,), 41: (90, 91), 42: (66, 67, 96),
}
AGRI_CHAPTERS = (2, 3, 7, 8, 9, 16, 20, 22)
# Customs quantity units (China customs unit codes): 035 kg, 011 件 pieces, 025 双 pairs,
# 001 台 sets, 007 个 units, 015 辆 vehicles; 036 g is the odd unit of the noise records.
UNIT_OF_CHAPTER = {61: "011", 62: "011", 64: "025", 84: "001", 85: "007", 90: "007", 91: "007", 87: "015"}
DEFAULT_UNIT, ODD_UNIT = "035", "036"


def catalogue(rng: np.random.Generator, fy_per_cic2: pd.Series, p: SourceParams) -> pd.DataFrame:
    """HS6 products per CIC2 industry (enough flows each) plus agricultural side products."""
    mean_flows = 2 + p.flows_extra_mean
    rows, used = [], set()

    def code(chapter: int) -> str:
        while True:
            c = f"{chapter:02d}{rng.integers(1, 90):02d}{rng.integers(10, 100):02d}"
            if c not in used:
                used.add(c)
                return c

    for cic2, n_fy in fy_per_cic2.items():
        n_products = max(1, int(round(n_fy * mean_flows / p.flows_per_product)))
        chapters = CHAPTERS[int(cic2)]
        for k in range(n_products):
            rows.append((code(chapters[k % len(chapters)]), int(cic2)))
    for chapter in AGRI_CHAPTERS:
        rows.append((code(chapter), 0))  # cic2 0: side products of the food industries
    cat = pd.DataFrame(rows, columns=["hs6", "cic2"])
    chapter = cat["hs6"].str[:2].astype(int)
    cat["unit"] = chapter.map(UNIT_OF_CHAPTER).fillna(DEFAULT_UNIT)
    cat["ln_price"] = rng.normal(np.log(8.0), 1.0, len(cat))  # product's unit-value level (USD)
    cat["ln_quantity"] = np.log(30_000.0) - cat["ln_price"] + rng.normal(0, 0.5, len(cat))  # median value ≈ 30k USD
    return cat
