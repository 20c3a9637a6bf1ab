"""Who the synthetic firms are: names, legal representatives, zip codes and telephone numbers.

One row per firm of the sources (world firms, non-exporters, exporters outside the accounts,
frontier exporters, trade intermediaries), indexed by the generator's firm id. Names are
Chinese registered names, "{province}{trade name}{industry}{suffix}" (浙江宏达昌机械制造有限公司);
trade names are three characters, distinct across firms, drawn from a vocabulary without the
characters of the trade-intermediary keywords (进出口, 经贸, 贸易, 科贸, 外经). Legal
representatives' names repeat, as common Chinese names do. Telephones are an area code of the
firm's city plus an eight-digit local number; zip codes start with the province's postal zone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.geography import provinces
from eqexp.data.synthetic import names
from eqexp.data.synthetic.params import INTERMEDIARY_ID0, NONEXPORTER_ID0, UNMATCHED_ID0

TRADE_CHARS = "宏达昌盛华兴隆泰丰源鑫荣富康永安新联合金利通恒瑞德天明光祥和顺佳美诚信鼎益海正中东南北万宝龙凯博远星汇创亿骏豪腾飞宇晨辉阳欣锦绣川岳峰林森雅俊威"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文斌志峰辉波宁鹏飞春林海云浩宇轩涵博鑫晨阳俊帅宏亮凯东旭洁琳雪梅婷慧颖佳欣悦嘉瑞晓鸿德福庆龙虎凤燕鹰雁松柏竹菊荷莲桃杏枫桦杨柳泉江河湖溪潮源清澄洪淑贤良恭俭仁义礼智信忠孝诚勤朴毅坚韧敢健康乐安定思远立新永胜利振兴学成少小秋冬夏雨露霜雷电光彩虹星月日"
INDUSTRY_WORD = {
    13: "食品", 14: "食品", 15: "饮料", 16: "烟草", 17: "纺织", 18: "服装", 19: "皮革", 20: "木业", 21: "家具", 22: "纸业",
    23: "印刷", 24: "文体用品", 25: "石化", 26: "化工", 27: "制药", 28: "化纤", 29: "橡胶", 30: "塑料", 31: "建材", 32: "钢铁",
    33: "金属", 34: "五金", 35: "机械", 36: "设备", 37: "汽车配件", 39: "电器", 40: "电子", 41: "仪器", 42: "工艺品",
}
MAKER_SUFFIXES = (*names.MAKER_SUFFIXES, "有限责任公司")
# First two digits of the zip codes of each province (China Post's zones).
ZIP_ZONE = {11: "10", 12: "30", 13: "05", 14: "03", 15: "01", 21: "11", 22: "13", 23: "15", 31: "20", 32: "21", 33: "31",
            34: "23", 35: "35", 36: "33", 37: "25", 41: "45", 42: "43", 43: "41", 44: "51", 45: "53", 46: "57", 50: "40",
            51: "61", 52: "55", 53: "65", 54: "85", 61: "71", 62: "73", 63: "81", 64: "75", 65: "83"}
MUNICIPALITIES = (11, 12, 31, 50)  # two-digit area codes (010, 022, 021, 023)


def trade_codes(rng: np.random.Generator, n: int, taken: np.ndarray | None = None) -> np.ndarray:
    """`n` distinct trade names, as codes (`trade_names` spells them), none of them `taken`:
    three characters (codes 0..k³−1) while they suffice, four (codes from k³ on) for worlds of
    more firms than three-character names (k³ = 373,248), so a world of the default size
    draws the same names as ever."""
    k = len(TRADE_CHARS)
    for size in (k**3, k**3 + k**4):
        pool = np.arange(size)
        if taken is not None:
            pool = np.setdiff1d(pool, taken)
        if n <= pool.size:
            return rng.choice(pool, n, replace=False)
    raise ValueError(f"{n} firms need more trade names than the vocabulary's {pool.size} left")


def trade_names(code: np.ndarray) -> np.ndarray:
    """Three characters of the vocabulary per code below k³, four from k³ on."""
    k = len(TRADE_CHARS)
    chars = np.array(list(TRADE_CHARS), dtype=object)
    code = np.asarray(code)
    three = chars[code // k**2 % k] + chars[code // k % k] + chars[code % k]
    four = np.maximum(code - k**3, 0)
    return np.where(code < k**3, three, chars[four // k**3 % k] + chars[four // k**2 % k] + chars[four // k % k] + chars[four % k])


def people(rng: np.random.Generator, n: int) -> np.ndarray:
    """Legal representatives' names: a surname and one or (mostly) two given characters; common names repeat."""
    surname = np.array(list(SURNAMES), dtype=object)[rng.integers(0, len(SURNAMES), n)]
    given = np.array(list(GIVEN), dtype=object)
    first = given[rng.integers(0, len(GIVEN), n)]
    second = np.where(rng.random(n) < 0.85, given[rng.integers(0, len(GIVEN), n)], "")
    return surname + first + second


def maker_names(rng: np.random.Generator, province: np.ndarray, cic2: np.ndarray, trade: np.ndarray) -> np.ndarray:
    zh = dict(zip(provinces().code, provinces().name_zh))
    suffix = np.array(MAKER_SUFFIXES, dtype=object)[rng.integers(0, len(MAKER_SUFFIXES), trade.size)]
    place = np.array([zh[int(c)] for c in province], dtype=object)
    word = np.array([INDUSTRY_WORD.get(int(c), "工业") for c in cic2], dtype=object)
    return place + trade + word + suffix


def identities(rng: np.random.Generator, firms: pd.DataFrame) -> pd.DataFrame:
    """Name, legal person, zip, area code and local telephone number of each firm.

    `firms`: firm_id (the generator's), province, city, cic2. Intermediaries are named as
    trading companies, every other firm as a manufacturer.
    """
    n = len(firms)
    province, city = firms["province"].to_numpy(), firms["city"].to_numpy()
    code = trade_codes(rng, n)
    trade = trade_names(code)
    firm_names = maker_names(rng, province, firms["cic2"].to_numpy(), trade)
    inter = (firms["firm_id"].to_numpy() >= INTERMEDIARY_ID0) & (firms["firm_id"].to_numpy() < NONEXPORTER_ID0)
    zh = dict(zip(provinces().code, provinces().name_zh))
    suffix = np.array(names.INTERMEDIARY_SUFFIXES, dtype=object)[rng.integers(0, len(names.INTERMEDIARY_SUFFIXES), n)]
    firm_names[inter] = np.array([zh[int(c)] for c in province[inter]], dtype=object) + trade[inter] + suffix[inter]
    cities = np.unique(city)
    digits = np.where(np.isin(cities // 100, MUNICIPALITIES), 2, 3)
    area = {c: "0" + str(rng.integers(10**(d - 1), 10**d)) for c, d in zip(cities, digits)}
    zone = np.array([ZIP_ZONE[int(c)] for c in province], dtype=object)
    text = {  # kept as Python strings: the generator indexes them millions of times
        "firm_name": firm_names,
        "legal_person": people(rng, n),
        "zip": zone + np.char.zfill((city % 100).astype(str), 2).astype(object)
        + np.char.zfill(rng.integers(0, 100, n).astype(str), 2).astype(object),
        "area_code": np.array([area[c] for c in city], dtype=object),
        "local_phone": rng.integers(20_000_000, 90_000_000, n).astype(str).astype(object),
    }
    columns = {"firm_id": firms["firm_id"].to_numpy(), "city": city, "trade_code": code}
    return pd.DataFrame(columns | {k: pd.Series(v, dtype=object) for k, v in text.items()})[
        ["firm_id", "city", "firm_name", "trade_code", "legal_person", "zip", "area_code", "local_phone"]]


def firms_of_sources(panel: pd.DataFrame, accounts: pd.DataFrame, customs: pd.DataFrame,
                     rng: np.random.Generator) -> pd.DataFrame:
    """Every firm of the sources with its province, city and CIC2 (customs-only firms: drawn)."""
    world = panel.drop_duplicates("firm_id")[["firm_id", "province", "city", "cic2"]]
    non = accounts[accounts["firm_id"] >= NONEXPORTER_ID0]
    non = non.drop_duplicates("firm_id").assign(cic2=lambda d: d["industry"] // 100)[["firm_id", "province", "city", "cic2"]]
    others = np.unique(customs["firm_id"].to_numpy())
    others = others[(others >= UNMATCHED_ID0) & (others < NONEXPORTER_ID0)]
    geo = provinces()
    prov_idx = rng.choice(len(geo), others.size, p=geo.weight)
    cities = geo["n_cities"].to_numpy()[prov_idx]
    province = geo["code"].to_numpy()[prov_idx]
    outside = pd.DataFrame({"firm_id": others, "province": province,
                            "city": province * 100 + 1 + rng.integers(0, 10**6, others.size) % cities,
                            "cic2": rng.choice(sorted(INDUSTRY_WORD), others.size)})
    return pd.concat([world, non, outside], ignore_index=True).astype("int64")


def with_identity(rng: np.random.Generator, accounts: pd.DataFrame, ident: pd.DataFrame) -> pd.DataFrame:
    """The accounts with each firm's name, legal person, zip and telephone (written "0571-86912345" or "86912345"),
    as categoricals: each firm's repeat over its years."""
    with_area = rng.random(len(ident)) < 0.7
    columns = {"firm_name": ident["firm_name"], "legal_person": ident["legal_person"], "zip": ident["zip"],
               "phone": pd.Series(np.where(with_area, ident["area_code"] + "-" + ident["local_phone"], ident["local_phone"]))}
    order = np.argsort(ident["firm_id"].to_numpy())
    row = order[np.searchsorted(ident["firm_id"].to_numpy()[order], accounts["firm_id"].to_numpy())]
    ids = {"firm_id": accounts["firm_id"], "year": accounts["year"]}
    for name, values in columns.items():
        codes, uniques = pd.factorize(values)
        ids[name] = pd.Categorical.from_codes(codes[row], uniques.astype("str"))
    return pd.concat([pd.DataFrame(ids, index=accounts.index), accounts.drop(columns=["firm_id", "year"])], axis=1)
