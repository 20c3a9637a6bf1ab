"""Mediators of the reference study (seeds/003 §5.2.1): provincial human capital and industry R&D intensity."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from eqexp.data.validate import (
    DataValidationError,
    Rule,
    at_least,
    check_ranges,
    check_unique_keys,
    positive,
    require_columns,
)
from eqexp.measures.classify import cic2, province_code

# Years of schooling per education level of the employed (Wang & Wang 2019, as in the study):
# H = (0h1 + 6h2 + 9h3 + 12h4 + 12h5 + 15h6 + 15h7 + 16h8 + 19h9) / 100 with h1..h9 in this
# order (the seed's "15h6 1+ 5h7" is a typo for 15h6 + 15h7). Named, not positional, because
# the seed lists the shares in two different orders.
EDUCATION_YEARS = {
    "no_school": 0,  # h1 未上过学
    "primary": 6,  # h2 小学
    "junior_high": 9,  # h3 初中
    "secondary_vocational": 12,  # h4 中等职业教育
    "high_school": 12,  # h5 高中
    "higher_vocational": 15,  # h6 高等职业教育
    "college": 15,  # h7 大学专科
    "undergraduate": 16,  # h8 大学本科
    "graduate": 19,  # h9 研究生
}
VOCATIONAL = ("secondary_vocational", "higher_vocational")  # absent from older yearbooks: counted as 0
SHARE_TOLERANCE = 1.0  # percentage points: nine shares each rounded to 0.1 can miss 100 by 0.45


def education_years(education: pd.DataFrame, file: str = "education shares") -> pd.Series:
    """H = Σ years_k · share_k / 100, average years of schooling of the employed (shares in percent)."""
    levels = [k for k in EDUCATION_YEARS if k not in VOCATIONAL or k in education.columns]
    require_columns(education, ["province", "year", *levels], file)
    shares = education[levels].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    total = shares.sum(axis=1)
    bad = (total - 100).abs() > SHARE_TOLERANCE
    if bad.any():
        hint = " They look like fractions: multiply by 100." if total[bad].between(0.9, 1.1).all() else ""
        examples = education.loc[bad, ["province", "year"]].assign(total=total[bad]).head(5).to_string()
        raise DataValidationError(
            f"{file}: education shares must be percentages summing to 100 per province-year; {int(bad.sum())} row(s) "
            f"sum to something else, e.g.\n{examples}\n"
            f"  Fix: supply the nine shares ({', '.join(EDUCATION_YEARS)}) in percent.{hint}")
    return (shares @ pd.Series({k: EDUCATION_YEARS[k] for k in levels}) / 100).rename("education_years")


def human_capital(
    education: pd.DataFrame, transform: Literal["log", "level"] = "log", file: str = "education shares"
) -> pd.DataFrame:
    """Province-year human capital: columns province, year, education_years (H), humancapital.

    Default "log": humancapital = ln H. The study's Table 2 (median 2.234, range 2.025–2.475)
    is ln of 9.3 years (range 7.6–11.9), the span of Chinese provinces' average schooling of
    the employed in 2004–2013; H itself would have a median near 9.
    """
    check_unique_keys(education, ["province", "year"], file)
    h = education_years(education, file)
    value = np.log(h) if transform == "log" else h
    return pd.DataFrame({"province": province_code(education["province"]), "year": education["year"],
                         "education_years": h, "humancapital": value}).reset_index(drop=True)


RD_TRANSFORMS = {
    "pct": lambda rd, out: 100 * rd / out,
    "ratio": lambda rd, out: rd / out,
    "permille": lambda rd, out: 1000 * rd / out,
    "ln_ratio": lambda rd, out: np.log(rd / out),
    "ln_expenditure": lambda rd, out: np.log(rd / 1e4),  # ln(R&D in 100 million RMB), from 10k RMB
}
MAX_RD_SHARE = 0.2  # no industry spends a fifth of its output on R&D: a larger ratio is a unit mismatch


def rd_intensity(
    industry_rd: pd.DataFrame,
    transform: Literal["pct", "ratio", "permille", "ln_ratio", "ln_expenditure"] = "pct",
    file: str = "industry R&D",
) -> pd.DataFrame:
    """Industry-year R&D intensity: columns cic2, year, rd.

    Input: industry (CIC2 or CIC4), year, rd_expenditure and output, both in 10k RMB (万元, the
    S&T yearbook's unit; convert the industrial yearbook's 亿元 output first). Default "pct":
    100 × R&D / output, the study's stated definition in the usual percent unit. Its Table 2
    "RD" (median 5.859, range 3.165–7.305) fits no plausible ratio (0.1–2 % for Chinese
    manufacturing) but does fit ln(R&D expenditure in 100 million RMB): use "ln_expenditure"
    to reproduce that scale.
    """
    require_columns(industry_rd, ["industry", "year", "rd_expenditure", "output"], file)
    check_unique_keys(industry_rd, ["industry", "year"], file)
    share = Rule(("rd_expenditure", "output"), lambda d: d["rd_expenditure"] > MAX_RD_SHARE * d["output"],
                 f"R&D above {MAX_RD_SHARE:.0%} of output", "put rd_expenditure and output in the same unit (10k RMB)")
    spend = positive("rd_expenditure") if transform.startswith("ln") else at_least("rd_expenditure", 0)
    check_ranges(industry_rd, [spend, positive("output"), share], file)
    sums = (industry_rd.assign(cic2=cic2(industry_rd["industry"]))  # CIC4 rows add up to their CIC2
            .groupby(["cic2", "year"], as_index=False)[["rd_expenditure", "output"]].sum())
    return sums.assign(rd=RD_TRANSFORMS[transform](sums["rd_expenditure"], sums["output"]))[["cic2", "year", "rd"]]
