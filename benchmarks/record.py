"""Where every benchmark's figures go: printed, and appended to benchmarks/results.md."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def append_results(text: str) -> None:
    print(text)
    with open(RESULTS, "a") as f:
        f.write(text)
