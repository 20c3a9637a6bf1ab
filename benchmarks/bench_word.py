"""What the Word rendering costs: python-docx's import, and one table written as .docx against the
four text renderings, for a job's table (Table 5's shape) and sweeps' combined tables (the study's
23 columns, the reference multiverse's 132), in Chinese (report=zh).

    .venv/bin/python benchmarks/bench_word.py          # prints a Markdown table for results.md
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from eqexp.report.table import RENDERERS, Table  # noqa: E402
from eqexp.report.word import layout, to_docx  # noqa: E402

LABELS = yaml.safe_load((ROOT / "conf/report/zh.yaml").read_text(encoding="utf-8"))["labels"]


def table(columns: int, terms: int, head: str) -> Table:
    header = [[""] + [f"({i})" for i in range(1, columns + 1)], [""] + [f"{head} {i}" for i in range(1, columns + 1)],
              ["变量"] + ["出口产品质量"] * columns]
    body = [row for t in range(terms) for row in ([f"{LABELS['market']} {t}"] + ["-0.0123***"] * columns, [""] + ["(-2.84)"] * columns)]
    footer = [[w] + ["23,287"] * columns for w in ("观测值", "R²", "组内 R²", "企业固定效应", "年份固定效应", "标准误")]
    return Table("表5 解释变量滞后对出口产品质量的影响", header, body, footer, ["注：括号内为 t 值；***、**、* 分别表示在 1%、5%、10% 的水平上显著。"] * 3)


def seconds(write, rounds: int = 15) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        write()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    imported = subprocess.run([sys.executable, "-X", "importtime", "-c", "import docx"], capture_output=True, text=True).stderr
    import_s = int(imported.strip().splitlines()[-1].split("|")[1]) / 1e6
    print(f"Machine: {os.cpu_count()} cores (shared); python-docx import {import_s:.3f} s (once per process that writes tables)\n")
    print("| table | layout | .docx (s) | md+tex+html+txt (s) |\n|:---|:---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, t in (("a job's: 6 columns x 20 terms (Table 5)", table(6, 20, "解释变量滞后")),
                        ("a sweep's combined: 23 columns x 8 terms (the study)", table(23, 8, "experiment=table8_ownership: 国有企业")),
                        ("a multiverse's combined: 132 columns x 2 terms", table(132, 2, "trim=p5,lags=l1,controls=full"))):
            landscape, panels = layout(t)
            docx = seconds(lambda: to_docx(t, Path(tmp) / "t.docx"))
            text = seconds(lambda: [(Path(tmp) / f"t.{e}").write_text(r(t), encoding="utf-8") for e, r in RENDERERS.items()])
            where = ("landscape" if landscape else "portrait") + (f", {len(panels)} panels" if len(panels) > 1 else "")
            print(f"| {name} | {where} | {docx:.3f} | {text:.4f} |")


if __name__ == "__main__":
    main()
