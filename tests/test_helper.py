"""Helper processes (eqexp.helper): a figure drawn by the command's figure process is the same
file as one drawn in the command; a call's exception, and a helper's death, reach the caller."""

from __future__ import annotations

import numpy as np
import pytest

from eqexp import helper
from eqexp.inference.two_lines import Curve, Line, TwoLinesResult
from eqexp.report import figures


def drawings() -> dict[str, figures.Drawing]:
    x = np.linspace(0.0, 1.0, 50)
    result = TwoLinesResult("inverted_u", 0.5, 0.5, 0.3, 0.7, Line(1.0, 3.0, 0.01, 40), Line(-1.0, -2.5, 0.02, 40), 25, 25)
    curve = Curve(x, x * (1 - x), np.full(50, 0.01))
    return {f"two_lines_{title}.png": figures.Drawing(figures.two_lines_figure, (result, curve, "x", title)) for title in ("a", "b")}


def test_figures_drawn_by_the_figure_process_equal_those_drawn_here(tmp_path):
    here = figures.save_drawings(drawings(), tmp_path / "here")()
    figures.preload([])
    try:
        assert helper._PRELOADED  # the process exists: the files below come from it
        there = figures.save_drawings(drawings(), tmp_path / "there")()
    finally:
        figures.discard_preloaded()
    assert [p.name for p in there] == [p.name for p in here] == ["two_lines_a.png", "two_lines_b.png"]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(here, there))
    assert not helper._PRELOADED and not helper._LIVE  # taken, and ended once it had drawn them


def test_figures_are_drawn_here_when_the_figure_process_was_killed(tmp_path):
    figures.preload([])
    drawer = helper._PRELOADED["drawing figures"]
    drawer._process.kill()  # as the OOM killer would, before the run sends its drawings
    drawer._process.join()
    assert sorted(p.name for p in figures.save_drawings(drawings(), tmp_path)()) == sorted(p.name for p in tmp_path.glob("*.png")) == ["two_lines_a.png", "two_lines_b.png"]
    assert not drawer.alive() and not helper._LIVE


def test_a_sweep_or_figures_off_on_the_command_line_starts_no_figure_process():
    for overrides in (["-m", "hetero=region,ownership"], ["report.figures=false"], ["++report.figures=false"], ["--multirun"]):
        figures.preload(overrides)
        assert not helper._PRELOADED


def fail(message: str) -> None:
    raise ValueError(message)


def test_a_calls_exception_reaches_the_caller_and_a_dead_helper_is_named():
    process = helper.Helper("testing", lambda: None, RuntimeError)
    try:
        assert process.submit(divmod, 7, 2).get() == (3, 1)
        with pytest.raises(ValueError, match="bad input named here"):
            process.submit(fail, "bad input named here").get()
        process._process.kill()
        process._process.join()
        with pytest.raises(RuntimeError, match=r"the process testing ended \(exit code -9\) before it answered"):
            process.submit(divmod, 1, 1).get()
    finally:
        process.close()
    assert not process.alive() and process not in helper._LIVE
