"""Figures draw Chinese labels: a CJK font is found and put behind matplotlib's own, every glyph is
drawn (each character its own shape, where a missing glyph is the same empty box for all), and
matplotlib warns of no missing glyph."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from PIL import Image

from eqexp.report.figures import cjk_family, save_figure, with_cjk_fallback
from eqexp.report.language import needs_cjk

LABEL = "市场一体化出口产品质量"


def drawn(text: str, fallback: bool) -> np.ndarray:
    """`text` drawn alone in a small figure, as grey levels."""
    fig = Figure(figsize=(1.0, 1.0), dpi=60)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=28)
    if fallback:
        with_cjk_fallback(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., 0].copy()


def test_a_cjk_font_is_found_and_has_every_glyph_of_the_labels():
    family = cjk_family()
    assert family is not None, "no CJK font: run `make test` or `make run` (they install Debian's fonts-noto-cjk: make fonts)"
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    font = FT2Font(path)
    assert all(font.get_char_index(ord(c)) for c in LABEL)  # a glyph of its own for each character


def test_each_chinese_character_is_drawn_not_a_box():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shapes = [drawn(c, fallback=True) for c in LABEL]
        boxes = [drawn(c, fallback=False) for c in LABEL[:3]]  # matplotlib's own font alone: the missing-glyph box
    assert all((s < 128).sum() > 20 for s in shapes)  # ink on the page
    assert all(not np.array_equal(a, b) for i, a in enumerate(shapes) for b in shapes[i + 1:])  # distinct characters, distinct shapes
    assert np.array_equal(boxes[0], boxes[1]) and np.array_equal(boxes[1], boxes[2])  # what the test would see without the font
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing and all("DejaVu" in m for m in missing)  # only the boxes warned: the fallback drawings did not


def test_a_saved_figure_with_chinese_labels_warns_of_no_missing_glyph(tmp_path: Path):
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([1, 2, 3], [1, 4, 2], label="拟合效应")
    ax.set_xlabel("市场一体化")
    ax.set_title("(1) 国有企业: 出口产品质量")
    ax.legend()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning: here an error
        path = save_figure(fig, tmp_path / "zh.png")
    assert Image.open(path).size == (4 * 120, 3 * 120)
    assert all(cjk_family() in t.get_fontfamily() for t in [ax.xaxis.label, ax.title])


def test_latin_labels_keep_their_font():
    fig = Figure()
    FigureCanvasAgg(fig)
    title = fig.add_subplot().set_title("Market and quality")
    with_cjk_fallback(fig)
    assert cjk_family() not in title.get_fontfamily() and not needs_cjk("Market²") and needs_cjk("市场")


@pytest.mark.parametrize("text", ["（全角）", "表"])
def test_full_width_forms_need_the_font(text):
    assert needs_cjk(text)
