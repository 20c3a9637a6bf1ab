"""The specification curve's figure (Simonsohn, Simmons & Nelson 2020, Fig. 2): the specs'
estimates with their 95 % intervals, sorted, above an indicator panel of the choices that
made each one; for an inverted U also its turning point and the utest p-value per spec.
Matplotlib's object API, as `eqexp.report.figures`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLOURS = {True: "#1f4e9c", False: "0.6"}  # significant with the dominant sign, or not


def _panels(frame: pd.DataFrame, axes: dict[str, list[str]]) -> list[tuple[str, float]]:
    rows = sum(len(options) for options in axes.values())
    panels = [("estimate", 3.0)]
    if "turning_point" in frame and frame.turning_point.notna().any():
        panels += [("turning_point", 1.2), ("utest_p", 1.0)]
    return panels + [("choices", max(1.0, 0.22 * rows))]


def _estimates(ax, frame: pd.DataFrame, rank: np.ndarray) -> None:
    colours = frame.significant.map(COLOURS)
    ax.vlines(rank, frame.ci_low, frame.ci_high, colors=colours, linewidth=0.8, alpha=0.6)
    ax.scatter(rank, frame.estimate, c=colours, s=10, zorder=3)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.axhline(frame.estimate.median(), color="C3", linewidth=0.8, linestyle="--", label=f"median {frame.estimate.median():.4g}")
    ax.set_ylabel(f"{', '.join(dict.fromkeys(frame.term))}\nestimate, 95 % CI", fontsize=8)
    ax.legend(loc="upper left", fontsize=7)


def _inverted_u(ax_tp, ax_p, frame: pd.DataFrame, rank: np.ndarray) -> None:
    ax_tp.scatter(rank, frame.turning_point, c=frame.significant.map(COLOURS), s=8)
    ax_tp.set_ylabel("turning point", fontsize=8)
    ax_p.scatter(rank, frame.utest_p.clip(lower=1e-6), c="0.3", s=8)
    ax_p.set_yscale("log")
    ax_p.axhline(0.05, color="C3", linewidth=0.6, linestyle="--")
    ax_p.set_ylabel("utest p", fontsize=8)


def _choices(ax, frame: pd.DataFrame, axes: dict[str, list[str]], rank: np.ndarray) -> None:
    labels, y = [], 0
    for axis, options in axes.items():
        for option in options:
            chosen = (frame[axis] == option).to_numpy()
            ax.scatter(rank[chosen], np.full(chosen.sum(), -y), marker="|", s=40, c=frame.significant[chosen].map(COLOURS))
            labels.append(f"{axis}: {option}")
            y += 1
        ax.axhline(-y + 0.5, color="0.85", linewidth=0.5)
    ax.set_yticks(-np.arange(len(labels)), labels, fontsize=7)
    ax.set_ylim(-len(labels) + 0.5, 0.5)
    ax.set_xlabel("specification (sorted by estimate)")


def curve_figure(frame: pd.DataFrame, axes: dict[str, list[str]], title: str, notes: list[str], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(frame, axes)
    fig = Figure(figsize=(max(8.0, min(16.0, 0.06 * len(frame) + 6)), 1.6 + sum(h for _, h in panels)))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(panels), 1, height_ratios=[h for _, h in panels], hspace=0.08, left=0.2, right=0.98, top=0.9, bottom=0.06)
    ax = {name: fig.add_subplot(grid[i]) for i, (name, _) in enumerate(panels)}
    rank = frame["rank"].to_numpy()
    _estimates(ax["estimate"], frame, rank)
    if "turning_point" in ax:
        _inverted_u(ax["turning_point"], ax["utest_p"], frame, rank)
    _choices(ax["choices"], frame, axes, rank)
    for a in ax.values():
        a.set_xlim(0.5, len(frame) + 0.5)
        if a is not ax["choices"]:
            a.tick_params(labelbottom=False)
    fig.suptitle(title + "\n" + "; ".join(notes), fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, pil_kwargs={"compress_level": 1})
    return path
