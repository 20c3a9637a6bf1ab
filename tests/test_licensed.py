"""The licensed layout (per-year GB18030 customs CSVs with Chinese headers, HS8 numbers and YYYYMM; per-year
ASIF .dta files whose names change) builds the same panel as the one-file-per-source folder of the same world."""

import numpy as np
import pandas as pd
import yaml

from eqexp.data.load import load
from eqexp.data.synthetic.__main__ import main as write_template
from eqexp.data.synthetic.licensed import ABSENT_YEARS, with_absent_years, write_licensed
from eqexp.estimate import fit
from eqexp.panel import add_square
from eqexp.spec import DataSpec, VcovSpec

REGRESSORS = ["market", "market_sq", "scale", "age", "roa", "rdebt", "fic"]


def test_licensed_layout_builds_the_same_panel_as_one_file_per_source(tmp_path, raw):
    config = yaml.safe_load(write_licensed(raw, tmp_path / "licensed").read_text())
    licensed = load(DataSpec(**(config | {"cache_dir": str(tmp_path / "cache")})))
    with_absent_years(raw).write(tmp_path / "one", format="csv")  # 本年折旧 missing in the same years
    one = load(DataSpec(name="one", source="raw", path=str(tmp_path / "one"), cache_dir=str(tmp_path / "cache")))
    assert licensed.fingerprint != one.fingerprint
    keys = ["firm_id", "year"]
    a = licensed.panel.sort_values(keys, ignore_index=True)
    b = one.panel.sort_values(keys, ignore_index=True)
    assert len(a) == len(b) > 0.97 * 24000
    pd.testing.assert_frame_equal(a.drop(columns="quality"), b.drop(columns="quality"))
    np.testing.assert_allclose(a["quality"], b["quality"], rtol=0, atol=1e-12)
    fits = [fit(add_square(p, "market"), "quality", REGRESSORS, keys, VcovSpec()).tidy.set_index("term") for p in (a, b)]
    np.testing.assert_allclose(fits[0]["estimate"], fits[1]["estimate"], rtol=1e-9)
    np.testing.assert_allclose(fits[0]["std_error"], fits[1]["std_error"], rtol=1e-9)

    steps = pd.DataFrame(licensed.build["steps"])
    read = steps[steps.stage == "read"].set_index("step")
    files = read.loc["read_file", "reason"].tolist()
    assert sum("customs: customs/customs_" in r and "read as gb18030" in r for r in files) == 10
    assert sum("accounts: asif/asif_" in r and "read as stata" in r for r in files) == 10
    lacking = raw.accounts["year"].isin(ABSENT_YEARS["current_depreciation"]).sum()
    assert f"missing in their {lacking:,} rows, not filled" in read.loc["absent_current_depreciation", "reason"]
    padded = raw.customs["hs6"].astype(str).str.startswith("0").sum()  # HS8 numbers that lost their leading zero
    assert read.loc["hs8_to_hs6", "changed"] == padded > 0
    assert f"{padded:,} shorter" in read.loc["hs8_to_hs6", "reason"]


def test_template_command_writes_the_licensed_layout(tmp_path):
    write_template([str(tmp_path / "lic"), "--n-firms", "150", "--n-obs", "900", "--layout", "licensed"])
    config = yaml.safe_load((tmp_path / "lic" / "data.yaml").read_text())
    assert config["files"] == {"customs": "customs/customs_*.csv", "accounts": "asif/asif_*.dta"}
    assert config["columns"]["accounts"]["法人代码"] == config["columns"]["accounts"]["组织机构代码"] == "firm_id"
    header = (tmp_path / "lic" / "customs" / "customs_2004.csv").read_bytes().split(b"\n")[0].decode("gb18030")
    assert header.split(",")[:2] == ["企业编码", "企业名称"] and "年月" in header
    assert len(list((tmp_path / "lic" / "asif").glob("asif_*.dta"))) == 10
