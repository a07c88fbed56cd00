"""The report's charts, drawn with matplotlib as inline SVG (text kept as text, so it stays escaped and searchable)."""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
LABEL_COLOURS = {"better": "#2ca02c", "worse": "#d62728"}
NEUTRAL = "#7f7f7f"
_SVG_START = re.compile(r"<svg\b")
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)
_BETWEEN_TAGS = re.compile(r">\s+<")
_SPACES = re.compile(r"\s+")
_counter = itertools.count()


def _rc() -> dict[str, object]:
    return {
        "svg.fonttype": "none",  # <text> elements: small, selectable, escaped by the SVG writer
        "svg.hashsalt": f"audio-evals-{next(_counter)}",  # unique clip-path ids per inline figure
        "text.parse_math": False,  # a label holding '$' is text, not TeX
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],  # one name in each <text>'s style, not a dozen
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_rc()):
        yield Figure(figsize=(width, height))


def _text_inches(labels: Sequence[str], size: float = 9.0) -> float:
    """About how wide the longest label is, in inches (a sans-serif character is ~0.6 em)."""
    longest = max((len(str(label)) for label in labels), default=0)
    return longest * 0.6 * size / 72.0


def _margins(
    fig: Figure, *, left: float, bottom: float, right: float = 0.2, top: float = 0.15
) -> None:
    """Fixed margins in inches (a layout engine would cost more time than the drawing)."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=min(left / width, 0.6),
        right=max(1.0 - right / width, 0.65),
        bottom=min(bottom / height, 0.6),
        top=max(1.0 - top / height, 0.65),
    )


def to_svg(fig: Figure, title: str) -> str:
    """The figure as an inline <svg> element (no XML prolog), titled for screen readers."""
    buf = io.StringIO()
    import matplotlib

    with matplotlib.rc_context(_rc()):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Title": title})
    text = buf.getvalue()
    match = _SVG_START.search(text)
    text = text[match.start() :] if match else text
    # SVG collapses runs of whitespace when it draws text, so collapsing them here changes nothing
    text = _METADATA.sub("", text)
    return _SPACES.sub(" ", _BETWEEN_TAGS.sub("><", text))


def variant_colours(variants: Sequence[str]) -> dict[str, str]:
    """One colour per variant, in order (cycling past ten)."""
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(variants)}


def accuracy_chart(fields: pd.DataFrame, variants: Sequence[str]) -> str:
    """Per field (rows) and variant (colour): accuracy as a dot with its 95% interval."""
    order = list(dict.fromkeys(fields["field"]))
    colours = variant_colours(variants)
    k = max(len(variants), 1)
    height = 1.1 + 0.1 * k * len(order) + 0.15 * len(order)
    with _figure(8.0, height) as fig:
        ax = fig.add_subplot()
        _margins(fig, left=_text_inches(order) + 0.2, bottom=0.45, right=0.3, top=0.4)
        step = 0.8 / k
        for i, v in enumerate(variants):
            sel = fields[fields["variant"] == v].set_index("field")
            ys, xs, lo, hi = [], [], [], []
            for row, fld in enumerate(order):
                if fld not in sel.index:
                    continue
                r = sel.loc[fld]
                ys.append(row - 0.4 + step * (i + 0.5))
                xs.append(100 * r["accuracy"])
                lo.append(100 * (r["accuracy"] - r["ci_low"]))
                hi.append(100 * (r["ci_high"] - r["accuracy"]))
            ax.errorbar(xs, ys, xerr=[lo, hi], fmt="o", ms=4, capsize=2, color=colours[v], label=v)
        ax.set_yticks(range(len(order)), order)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("accuracy, % (95% interval)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            ncols=min(k, 4),
            fontsize=8,
            frameon=False,
            borderaxespad=0.2,
        )
        return to_svg(fig, "accuracy by field and variant")


def forest_chart(comparison: pd.DataFrame) -> str:
    """Paired differences (B - A) with 95% intervals, one row per field and compared pair."""
    rows = comparison.reset_index(drop=True)
    labels = [f"{r['field']}: {r['variant_b']} vs {r['variant_a']}" for _, r in rows.iterrows()]
    with _figure(8.0, 0.8 + 0.2 * len(rows)) as fig:
        ax = fig.add_subplot()
        _margins(fig, left=_text_inches(labels) + 0.2, bottom=0.5, right=0.3)
        for i, r in rows.iterrows():
            colour = LABEL_COLOURS.get(str(r["label"]), NEUTRAL)
            diff = 100 * r["diff"]
            ax.errorbar(
                [diff],
                [i],
                xerr=[[diff - 100 * r["ci_low"]], [100 * r["ci_high"] - diff]],
                fmt="s",
                ms=4,
                capsize=2,
                color=colour,
            )
        ax.axvline(0, color="#333333", lw=0.8)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set_xlim(-100, 100)
        ax.set_xlabel("B - A, accuracy points (95% interval); green better, red worse (Holm)")
        ax.grid(axis="x", alpha=0.3)
        return to_svg(fig, "paired differences")


def tradeoff_chart(variants: pd.DataFrame) -> str:
    """Exact-record accuracy (with interval) against cost per 1,000 cases and against p50 latency."""
    colours = variant_colours(list(variants["variant"]))
    with _figure(8.0, 3.0) as fig:
        cost_ax, lat_ax = fig.subplots(1, 2)
        _margins(fig, left=0.6, bottom=0.5, right=0.9, top=0.3)
        fig.subplots_adjust(wspace=0.3)
        unknown = []
        for _, r in variants.iterrows():
            acc = 100 * r["exact_accuracy"]
            yerr = [[acc - 100 * r["ci_low"]], [100 * r["ci_high"] - acc]]
            colour = colours[r["variant"]]
            cost = r["cost_per_1000_usd"]
            if isinstance(cost, float) and math.isnan(cost):
                unknown.append(str(r["variant"]))
            else:
                cost_ax.errorbar([cost], [acc], yerr=yerr, fmt="o", color=colour, capsize=2)
                cost_ax.annotate(
                    str(r["variant"]),
                    (cost, acc),
                    fontsize=7,
                    xytext=(4, 3),
                    textcoords="offset points",
                )
            lat = r["latency_p50_ms"]
            lat_ax.errorbar([lat], [acc], yerr=yerr, fmt="o", color=colour, capsize=2)
            lat_ax.annotate(
                str(r["variant"]), (lat, acc), fontsize=7, xytext=(4, 3), textcoords="offset points"
            )
        cost_ax.set_xlabel("cost per 1,000 cases, USD")
        if unknown:
            cost_ax.set_title("cost unknown: " + ", ".join(unknown), fontsize=7)
        lat_ax.set_xlabel("latency p50, ms")
        for ax in (cost_ax, lat_ax):
            ax.set_ylabel("exact record, %")
            ax.set_ylim(0, 100)
            ax.set_xlim(left=0)
            ax.grid(alpha=0.3)
        return to_svg(fig, "accuracy against cost and latency")


def heatmap_chart(cells: pd.DataFrame, fields: Sequence[str], columns: Sequence[str]) -> str:
    """Field (rows) x slice (columns) accuracy as colour, with accuracy and n written in every cell."""
    import numpy as np

    grid = np.full((len(fields), len(columns)), np.nan)
    text: dict[tuple[int, int], str] = {}
    index = cells.set_index(["field", "column"])
    for i, fld in enumerate(fields):
        for j, col in enumerate(columns):
            if (fld, col) in index.index:
                r = index.loc[(fld, col)]
                grid[i, j] = r["accuracy"]
                text[(i, j)] = f"{100 * r['accuracy']:.0f}%\nn={int(r['n'])}"
    left = _text_inches(fields) + 0.25
    bottom = _text_inches(columns) * 0.65 + 0.3
    width = left + 0.7 * len(columns) + 1.2
    with _figure(width, bottom + 0.4 * len(fields) + 0.2) as fig:
        ax = fig.add_subplot()
        _margins(fig, left=left, bottom=bottom, right=1.2, top=0.15)
        mesh = ax.pcolormesh(
            np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=0.0, vmax=1.0, edgecolors="white"
        )
        for (i, j), label in text.items():
            dark = grid[i, j] < 0.2 or grid[i, j] > 0.85
            ax.text(
                j + 0.5,
                i + 0.5,
                label,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
        ax.set_xticks([j + 0.5 for j in range(len(columns))], columns, rotation=40, ha="right")
        ax.set_yticks([i + 0.5 for i in range(len(fields))], fields)
        ax.invert_yaxis()
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        fig.colorbar(mesh, ax=ax, fraction=0.4 / width, pad=0.15 / width, label="accuracy")
        return to_svg(fig, "accuracy by slice")
