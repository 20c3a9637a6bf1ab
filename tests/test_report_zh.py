"""`report=zh` end to end: a job and a sweep on the small world, their tables in every format (the
Word ones read back), notes without English left, MLflow's copies, report.html, the combined table
rebuilt by `eqexp.compare`, the replication package; and a user's own labels in UTF-8 YAML."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from docx import Document

from eqexp.report.regression import stars

ROOT = Path(__file__).resolve().parents[1]
# What a Chinese table keeps in Latin letters: statistics' names and symbols, as Chinese papers print them.
SYMBOLS = {"p", "t", "z", "F", "chi2", "Wald", "suest", "bdiff", "SLM", "Fieller", "x_L", "x_H", "x_c", "a", "b", "c", "ab", "c′",
           "inf", "Sobel", "Aroian", "Goodman", "WCR", "Rademacher", "Webb", "Robin", "Hood", "L", "L2", "L3", "R²", "P10", "P50",
           "P90", "a1", "a2", "x", "U", "HS6", "e"}
STUBS = {"市场一体化": "market", "市场一体化²": "market_sq", "企业规模（对数）": "scale", "企业年龄": "age", "资产收益率": "roa",
         "资产负债率": "rdebt", "融资约束": "fic", "人力资本": "humancapital"}
USER_REPORT = """\
# a user's own report: the Chinese preset, a title and a label of their own
defaults:
  - zh
  - _self_
title: 表12 按所有制分组的稳健性检验
labels:
  scale: 企业规模（对数）
"""
USER_GROUPS = """\
name: mine
label: 所有制
groups:
  国有: "soe == 1"
  非国有: "soe == 0"
permutation: {draws: 99, seed: 1}
"""


def latin_words(texts: list[str]) -> set[str]:
    return {w for t in texts for w in re.findall(r"[A-Za-z][A-Za-z0-9_²′]*", t)}


def docx_grid(path: Path) -> list[list[list[str]]]:
    return [[[c.text for c in row.cells] for row in t.rows] for t in Document(str(path)).tables]


def docx_paragraphs(path: Path) -> list[str]:
    return [p.text for p in Document(str(path)).paragraphs]


def agrees_with_coefficients(grid: list[list[str]], coefficients: pd.DataFrame, columns: list[str]) -> int:
    """Every coefficient of `coefficients.csv` (columns: the models, in order) at its place in the
    grid, formatted as the tables print it; returns how many were checked."""
    rows = {r[0]: i for i, r in enumerate(grid) if r[0]}
    checked = 0
    for c in coefficients.itertuples():
        stub = next(s for s, term in STUBS.items() if term == c.term)
        i, j = rows[stub], columns.index(c.model) + 1
        assert grid[i][j] == f"{c.estimate:.4f}{stars(c.p_value)}" and grid[i + 1][j] == f"({c.statistic:.2f})", (c.model, c.term)
        checked += 1
    return checked


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def zh_job(tmp_path_factory, small_cache) -> Path:
    """One job with the user's report (the Chinese preset plus their own title and label) and
    their own groups with Chinese names, both UTF-8 YAML in their folder, tracked in MLflow."""
    base = tmp_path_factory.mktemp("zh_job")
    for group, text in (("report", USER_REPORT), ("hetero", USER_GROUPS)):
        (base / "conf" / group).mkdir(parents=True)
        (base / "conf" / group / "mine.yaml").write_text(text, encoding="utf-8")
    done = run(base, "--config-dir", str(base / "conf"), "report=mine", "hetero=mine", "data=synthetic_small",
               f"data.cache_dir={small_cache}", f"hydra.run.dir={base / 'run'}", f"tracking.uri=sqlite:///{base / 'mlflow.db'}",
               f"tracking.artifact_root={base / 'mlartifacts'}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "missing from font" not in done.stderr  # the figures' Chinese labels found their glyphs
    return base


@pytest.mark.slow
def test_a_job_in_chinese_in_every_format(zh_job):
    out = zh_job / "run"
    md = (out / "tables" / "table.md").read_text(encoding="utf-8")
    for expected in ("表12 按所有制分组的稳健性检验", "| 国有 | 非国有 |", "| 变量 | 出口产品质量 | 出口产品质量 |", "| 企业规模（对数） |",
                     "| 市场一体化² |", "| 观测值 |", "| 企业固定效应 | 是 | 是 |", "| 年份固定效应 | 是 | 是 |",
                     "| 标准误 | 聚类到企业层面 | 聚类到企业层面 |", "注：括号内为 t 值；***、**、* 分别表示在 1%、5%、10% 的水平上显著。"):
        assert expected in md, expected
    for ext in ("tex", "html", "txt"):
        assert "企业固定效应" in (out / "tables" / f"table.{ext}").read_text(encoding="utf-8") and "国有" in md
    (grid,) = docx_grid(out / "tables" / "table.docx")
    coefficients = pd.read_csv(out / "coefficients.csv")
    assert agrees_with_coefficients(grid, coefficients, ["(1)", "(2)"]) == len(coefficients) == 14
    notes = docx_paragraphs(out / "tables" / "table.docx")[1:]
    assert any(n.startswith("倒U型检验 (1)（市场一体化）：") for n in notes)
    assert any(re.search("Wald 检验，(国有 与 非国有|非国有 与 国有)：", n) for n in notes) and any(n.startswith("市场一体化、市场一体化² 的组间差异检验") for n in notes)
    assert latin_words([c for row in grid for c in row] + notes) <= SYMBOLS
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<html lang='zh'>" in page and 'href="tables/table.docx"' in page and "聚类到企业层面" in page


@pytest.mark.slow
def test_mlflow_keeps_the_chinese_tables_labels_and_group_names(zh_job, tmp_path):
    import json

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{zh_job / 'mlflow.db'}")
    (job,) = [r for r in client.search_runs([client.get_experiment_by_name("eqexp").experiment_id])
              if "mlflow.parentRunId" not in r.data.tags]
    got = Path(client.download_artifacts(job.info.run_id, "tables", str(tmp_path)))
    for name in ("table.docx", "table.md", "table.html"):
        assert (got / name).read_bytes() == (zh_job / "run" / "tables" / name).read_bytes()
    params = job.data.params
    assert params["report.labels.scale"] == "企业规模（对数）" and params["report.title"] == "表12 按所有制分组的稳健性检验"
    kept = json.loads(params["report.labels"])  # the labels MLflow cannot name a param by, together
    assert kept["{} FE"] == "{}固定效应" and kept["Table 4: Benchmark regression estimation results (inverse U-test)"].startswith("表4")
    assert params["hetero.groups.国有"] == "soe == 1"
    assert any("国有" in name for name in job.data.metrics)  # the group tests' metrics, named by the user's groups
    assert "report.html" in {a.path for a in client.list_artifacts(job.info.run_id)}


@pytest.fixture(scope="module")
def zh_sweep(tmp_path_factory, small_cache) -> Path:
    base = tmp_path_factory.mktemp("zh_sweep")
    done = run(base, "-m", "experiment=table6_mediation_humancapital,robust_drop2010_province,table8_ownership", "report=zh",
               "data=synthetic_small", f"data.cache_dir={small_cache}", f"hydra.sweep.dir={base / 'sweep'}",
               f"tracking.uri=sqlite:///{base / 'mlflow.db'}", f"tracking.artifact_root={base / 'mlartifacts'}")
    assert done.returncode == 0 and "3 finished" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    return base / "sweep"


@pytest.mark.slow
def test_a_sweep_in_chinese_tables_notes_and_combined_docx(zh_sweep):
    jobs = sorted(p for p in zh_sweep.iterdir() if (p / "tables" / "table.docx").exists())
    assert len(jobs) == 3
    for job in jobs:  # the mediation's, the wild bootstrap's and two lines', the group tests' notes: no English left
        (grid,) = docx_grid(job / "tables" / "table.docx")
        notes = docx_paragraphs(job / "tables" / "table.docx")
        assert latin_words([c for row in grid for c in row] + notes) <= SYMBOLS, job.name
    titles = {docx_paragraphs(j / "tables" / "table.docx")[0] for j in jobs}
    assert titles == {"表6 中介机制检验结果：人力资本", "稳健性检验：剔除2010年，聚类到省份层面", "表8 产权性质异质性分析"}
    robust = next(j for j in jobs if "robust" in j.name)
    notes = docx_paragraphs(robust / "tables" / "table.docx")
    assert any(n.startswith("野聚类自助法 (1)（WCR，") for n in notes) and any(n.startswith("两线检验 (1)（市场一体化，") for n in notes)
    mediation = docx_paragraphs(next(j for j in jobs if "mediation" in j.name) / "tables" / "table.docx")
    assert any(n.startswith("中介效应检验结论（温忠麟、叶宝娟）：") for n in mediation)
    grids = docx_grid(zh_sweep / "combined.docx")
    cells = [c for g in grids for row in g for c in row]
    assert {"观测值", "企业固定效应", "experiment=table8_ownership: 国有企业", "experiment=table8_ownership: 非国有企业"} <= set(cells)
    assert docx_paragraphs(zh_sweep / "combined.docx")[0].startswith(f"扫描 {zh_sweep.name}：")
    combined = pd.read_csv(zh_sweep / "combined_coefficients.csv")
    shown = [c for c in cells if re.fullmatch(r"-?\d+\.\d{4}\**", c)]
    treatment = combined[combined.term.isin(["market", "market_sq"])]
    assert sorted(shown) == sorted(f"{r.estimate:.4f}{stars(r.p_value)}" for r in treatment.itertuples())
    assert 'href="combined.docx"' in (zh_sweep / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_compare_rebuilds_the_combined_docx_and_the_package_carries_the_word_tables(zh_sweep, tmp_path):
    done = subprocess.run([sys.executable, "-m", "eqexp.compare", str(zh_sweep), "--jobs", "2", "0", "--out", str(tmp_path / "cmp")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    grids = docx_grid(tmp_path / "cmp" / "combined.docx")
    header = [c for g in grids for c in g[1][1:]]  # the jobs' columns, across the panels
    assert len(header) == 5 and all(h.startswith("experiment=table8_ownership") for h in header[:2])
    assert all(h.startswith("experiment=table6_mediation_humancapital") for h in header[2:])
    assert all("观测值" in [r[0] for r in g] for g in grids)
    done = subprocess.run([sys.executable, "-m", "eqexp.package", str(zh_sweep), "--out", str(tmp_path / "p.zip")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    names = zipfile.ZipFile(tmp_path / "p.zip").namelist()
    assert any(n.endswith("results/combined.docx") for n in names)
    assert sum(n.endswith("/tables/table.docx") for n in names) == 3


PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
GROUPINGS = sorted(p.stem for p in (ROOT / "conf" / "hetero").glob("*.yaml"))


@pytest.mark.parametrize("overrides", [[f"experiment={e}"] for e in PRESETS] + [[f"hetero={h}"] for h in GROUPINGS]
                         + [["sample=drop2010", "vcov=province"], ["mediator=rd"], ["fe=region_year", "vcov=twoway"]], ids=str)
def test_report_zh_has_chinese_for_every_text_a_preset_shows(overrides):
    """Composed with report=zh (no estimation): the title, column and group labels, sample, clustering,
    and every variable a table of the preset shows are Chinese, whichever preset set them."""
    from hydra import compose, initialize_config_dir

    from eqexp.models import plans
    from eqexp.report.language import needs_cjk, text
    from eqexp.spec import load_spec
    from eqexp.terms import label

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        spec = load_spec(compose("config", overrides=["report=zh", "tracking=off", *overrides]))
    labels = spec.report.labels
    shown = {"title": text(spec.report.title or spec.model.name, labels), "sample": text(spec.sample.label, labels),
             "clusters": text(spec.vcov.label, labels)}
    shown |= {f"group {g}": text(g, labels) for g in spec.hetero.groups}
    shown |= {f"column {p.model}": text(p.label, labels) for p in plans(spec) if p.label}
    variables = {spec.model.outcome, *spec.model.fixed_effects, *(t for p in plans(spec) for t in [p.outcome, *p.regressors])}
    shown |= {f"variable {v}": label(v, labels) for v in variables | set(spec.report.descriptives)}
    english = {what: s for what, s in shown.items() if not needs_cjk(s) and s not in ("HS6", "R²")}
    assert not english, english
