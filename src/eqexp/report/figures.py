"""Figures: the fitted inverted U with its turning point, over the treatment's distribution, and
the two lines of Simonsohn's test over the flexible fit.

Drawn on matplotlib's object API (no pyplot: no global state), with fixed margins and one
axis: a tight layout draws a figure twice and a twin axis doubles the ticks, and a job
draws one figure per model.

Analyses return `Drawing`s (a figure's function and arguments), not figures: a single run
draws them in a helper process (`preload`, `eqexp.helper`), which imported matplotlib while
the run composed its config and estimated, and draws while the run writes its other files.
"""

from __future__ import annotations

import functools
import glob
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eqexp import helper
from eqexp.inference.two_lines import Curve, TwoLinesResult
from eqexp.inference.utest import UTestResult
from eqexp.report.language import needs_cjk, text

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _canvas():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    return fig, fig.add_axes((0.13, 0.12, 0.82, 0.8))


# CJK fonts by family name, Debian's fonts-noto-cjk first (the make targets install it), then the
# usual ones of macOS and Windows; and where Debian puts Noto's files, for a font cache made before.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "PingFang SC",
                "Microsoft YaHei", "SimHei")
_CJK_FILES = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


@functools.cache
def cjk_family() -> str | None:
    """The first CJK font matplotlib can use, added to its font list if its cache predates it."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return family
    for path in glob.glob(_CJK_FILES):
        font_manager.fontManager.addfont(path)
        return font_manager.FontProperties(fname=path).get_name()
    return None


def with_cjk_fallback(fig: Figure) -> Figure:
    """Every text of `fig` drawn with a CJK font behind its own when any text needs one, so that
    Chinese labels are drawn rather than empty boxes (matplotlib takes each glyph from the first
    font in the list that has it)."""
    from matplotlib.text import Text

    texts = fig.findobj(Text)
    family = cjk_family() if any(needs_cjk(t.get_text()) for t in texts) else None
    if family is not None:
        for t in texts:
            own = [f for f in t.get_fontfamily() if f != family]
            t.set_fontfamily([*own, family])
    return fig


def save_figure(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with_cjk_fallback(fig).savefig(path, dpi=120, pil_kwargs={"compress_level": 1})
    return path


@dataclass(frozen=True)
class Drawing:
    """A figure to draw: a function of this module that returns it, and its arguments."""

    function: Callable[..., Figure]
    args: tuple[Any, ...]

    def save(self, path: Path) -> Path:
        return save_figure(self.function(*self.args), path)


_ROLE = "drawing figures"


def _load_matplotlib() -> None:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def preload(overrides: list[str]) -> None:
    """Start the process that draws this command's figures, importing matplotlib now, unless
    its command line runs a sweep (each worker draws its own jobs' figures) or turns them off."""
    if not helper.on_command_line(overrides, {"-m", "--multirun", "hydra.mode=MULTIRUN", "report.figures=false", "report.figures=False"}):
        helper.preload(_ROLE, _load_matplotlib, RuntimeError)


def discard_preloaded() -> None:
    """This command draws nothing (more): end the preloaded process."""
    helper.discard(_ROLE)


def save_drawings(drawings: dict[str, Drawing], directory: Path) -> Callable[[], list[Path]]:
    """Start saving each drawing as `directory/name`; returns the wait for the files.

    In the preloaded process when the command has one (it draws while the caller goes on, and
    ends once it has drawn these; what it could not draw because it was killed is drawn
    here), else here, now.
    """
    drawer = helper.take_preloaded(_ROLE)
    if drawer is None:
        paths = [drawing.save(directory / name) for name, drawing in drawings.items()]
        return lambda: paths
    replies = [(drawer.submit(Drawing.save, drawing, directory / name), drawing, directory / name) for name, drawing in drawings.items()]

    def wait() -> list[Path]:
        try:
            return [_saved(reply, drawer, drawing, path) for reply, drawing, path in replies]
        finally:
            drawer.close()

    return wait


def _saved(reply: helper.Reply, drawer: helper.Helper, drawing: Drawing, path: Path) -> Path:
    try:
        return reply.get()
    except Exception:
        if drawer.alive():  # the drawing itself failed
            raise
        return drawing.save(path)  # the process was killed (the OOM killer): drawn here


def inverted_u_figure(result: UTestResult, vcov: np.ndarray, x: np.ndarray, xlabel: str, title: str,
                      labels: dict[str, str] | None = None) -> Figure:
    """Partial effect b1·x + b2·x², relative to its value at x_L, with a pointwise 95 % band.

    The band is the delta-method interval of b1·(x−x_L) + b2·(x²−x_L²); the turning point
    is drawn with its Fieller interval where that is a bounded set; the histogram of x
    fills the lower part of the plot, scaled to it. Its words are shown as `labels` say (report.labels).
    """
    words = functools.partial(text, labels=labels or {})
    grid = np.linspace(result.x_low, result.x_high, 200)
    g = np.column_stack([grid - result.x_low, grid**2 - result.x_low**2])
    effect = g @ np.array([result.b1, result.b2])
    se = np.sqrt(np.einsum("ij,jk,ik->i", g, vcov, g))

    fig, ax = _canvas()
    low, high = float(np.min(effect - 1.96 * se)), float(np.max(effect + 1.96 * se))
    counts, edges = np.histogram(x, bins=40)
    ax.stairs(low + 0.4 * (high - low) * counts / max(counts.max(), 1), edges, baseline=low, fill=True, color="0.88",
              label=words(f"distribution of {xlabel} ({len(x):,})"))
    ax.plot(grid, effect, color="C0", label=words("fitted effect"))
    ax.fill_between(grid, effect - 1.96 * se, effect + 1.96 * se, color="C0", alpha=0.2, label=words("95 % pointwise"))
    if result.x_low <= result.turning_point <= result.x_high:
        ax.axvline(result.turning_point, color="C3", ls="--", label=words(f"turning point {result.turning_point:.3f}"))
    if result.fieller.kind == "bounded":
        ax.axvspan(max(result.fieller.low, result.x_low), min(result.fieller.high, result.x_high), color="C3", alpha=0.1,
                   label=words("Fieller 95 %"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(words(f"effect relative to {xlabel} = {result.x_low:.3f}"))
    ax.set_title(title)
    ax.legend(loc="lower center", fontsize=8)
    return fig


def two_lines_figure(result: TwoLinesResult, curve: Curve, xlabel: str, title: str, labels: dict[str, str] | None = None) -> Figure:
    """The flexible fit with a 95 % pointwise band, the flat region, and the two lines of the test
    drawn from the fit's value at the breakpoint with their slopes; words as `labels` say."""
    words = functools.partial(text, labels=labels or {})
    fig, ax = _canvas()
    ax.plot(curve.x, curve.yhat, color="0.4", ls="--", label=words("flexible fit (spline)"))
    ax.fill_between(curve.x, curve.yhat - 1.96 * curve.se, curve.yhat + 1.96 * curve.se, color="0.5", alpha=0.15)
    ax.axvspan(result.flat_low, result.flat_high, color="C2", alpha=0.1, label=words("flat region"))
    at = float(np.interp(result.breakpoint, curve.x, curve.yhat))
    for line, side, color in ((result.first, curve.x <= result.breakpoint, "C0"), (result.second, curve.x >= result.breakpoint, "C3")):
        xs = curve.x[side]
        ax.plot(xs, at + line.slope * (xs - result.breakpoint), color=color, lw=2,
                label=words(f"slope {line.slope:.4g} (t = {line.t:.2f}, p = {line.p:.3g})"))
    ax.axvline(result.breakpoint, color="C2", ls=":", label=words(f"breakpoint {result.breakpoint:.4g}"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(words("fitted value relative to its mean"))
    ax.set_title(title + words(" — confirmed" if result.confirmed else " — not confirmed"))
    ax.legend(loc="lower center", fontsize=8)
    return fig
