"""China's 31 provinces: NBS codes, names, three-belt regions and land adjacency.

Regions follow the NBS East/Central/West scheme (methods.md §8). Adjacency is
shared land borders, plus Hainan–Guangdong by the convention of Gui et al.
(2006), so the "adjacent provinces" market-integration variant (methods.md §2,
variant a) gives every province at least one partner.
"""

from __future__ import annotations

import pandas as pd

# code, English name, Chinese name, region, share of exporting firm-years (%),
# number of prefecture-level divisions. Shares are rough magnitudes chosen so
# that the regions carry the reference study's firm-year shares
# (East 90.6 %, Central 6.5 %, West 2.8 %; seeds/003 Table 11).
_PROVINCES: tuple[tuple[int, str, str, str, float, int], ...] = (
    (11, "Beijing", "北京", "East", 1.2, 1),
    (12, "Tianjin", "天津", "East", 2.0, 1),
    (13, "Hebei", "河北", "East", 1.0, 11),
    (14, "Shanxi", "山西", "Central", 0.3, 11),
    (15, "Inner Mongolia", "内蒙古", "West", 0.15, 12),
    (21, "Liaoning", "辽宁", "East", 1.8, 14),
    (22, "Jilin", "吉林", "Central", 0.4, 9),
    (23, "Heilongjiang", "黑龙江", "Central", 0.5, 13),
    (31, "Shanghai", "上海", "East", 9.0, 1),
    (32, "Jiangsu", "江苏", "East", 18.5, 13),
    (33, "Zhejiang", "浙江", "East", 20.0, 11),
    (34, "Anhui", "安徽", "Central", 1.3, 17),
    (35, "Fujian", "福建", "East", 5.0, 9),
    (36, "Jiangxi", "江西", "Central", 1.0, 11),
    (37, "Shandong", "山东", "East", 8.0, 17),
    (41, "Henan", "河南", "Central", 1.0, 17),
    (42, "Hubei", "湖北", "Central", 1.1, 13),
    (43, "Hunan", "湖南", "Central", 0.9, 14),
    (44, "Guangdong", "广东", "East", 24.0, 21),
    (45, "Guangxi", "广西", "West", 0.45, 14),
    (46, "Hainan", "海南", "East", 0.1, 2),
    (50, "Chongqing", "重庆", "West", 0.6, 1),
    (51, "Sichuan", "四川", "West", 0.7, 21),
    (52, "Guizhou", "贵州", "West", 0.06, 9),
    (53, "Yunnan", "云南", "West", 0.2, 16),
    (54, "Tibet", "西藏", "West", 0.01, 7),
    (61, "Shaanxi", "陕西", "West", 0.35, 10),
    (62, "Gansu", "甘肃", "West", 0.07, 14),
    (63, "Qinghai", "青海", "West", 0.02, 8),
    (64, "Ningxia", "宁夏", "West", 0.04, 5),
    (65, "Xinjiang", "新疆", "West", 0.15, 14),
)

# Shared land borders (each pair once), plus the Hainan–Guangdong convention.
_BORDERS: tuple[tuple[int, int], ...] = (
    (11, 12), (11, 13), (12, 13), (13, 14), (13, 15), (13, 21), (13, 37), (13, 41),
    (14, 15), (14, 41), (14, 61), (15, 21), (15, 22), (15, 23), (15, 61), (15, 62),
    (15, 64), (21, 22), (22, 23), (31, 32), (31, 33), (32, 33), (32, 34), (32, 37),
    (33, 34), (33, 35), (33, 36), (34, 36), (34, 37), (34, 41), (34, 42), (35, 36),
    (35, 44), (36, 42), (36, 43), (36, 44), (37, 41), (41, 42), (41, 61), (42, 43),
    (42, 50), (42, 61), (43, 44), (43, 45), (43, 50), (43, 52), (44, 45), (44, 46),
    (45, 52), (45, 53), (50, 51), (50, 52), (50, 61), (51, 52), (51, 53), (51, 54),
    (51, 61), (51, 62), (51, 63), (52, 53), (53, 54), (54, 63), (54, 65), (61, 62),
    (61, 64), (62, 63), (62, 64), (62, 65), (63, 65),
)

REGIONS: tuple[str, ...] = ("East", "Central", "West")
PROVINCE_CODES: tuple[int, ...] = tuple(p[0] for p in _PROVINCES)
REGION_OF: dict[int, str] = {p[0]: p[3] for p in _PROVINCES}
NAME_OF: dict[int, str] = {p[0]: p[1] for p in _PROVINCES}


def _adjacency() -> dict[int, tuple[int, ...]]:
    neighbours: dict[int, set[int]] = {code: set() for code in PROVINCE_CODES}
    for a, b in _BORDERS:
        neighbours[a].add(b)
        neighbours[b].add(a)
    return {code: tuple(sorted(n)) for code, n in neighbours.items()}


ADJACENCY: dict[int, tuple[int, ...]] = _adjacency()


def provinces() -> pd.DataFrame:
    """One row per province: code, name, name_zh, region, weight (sums to 1), n_cities."""
    df = pd.DataFrame(
        _PROVINCES, columns=["code", "name", "name_zh", "region", "weight", "n_cities"]
    )
    df["weight"] /= df["weight"].sum()
    return df


def adjacent_pairs() -> list[tuple[int, int]]:
    """Unordered adjacent province pairs (i < j), for the adjacent-pairs MI variant."""
    return sorted((min(a, b), max(a, b)) for a, b in _BORDERS)
