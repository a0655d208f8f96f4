"""Matplotlib (Agg, no pyplot) figures as inline SVG that can share one HTML page."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
from cycler import cycler
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
OURS = "#2563eb"
COMPETITOR = "#94a3b8"
NONE = "#d1d5db"
ACCENT = "#f97316"
GOOD = "#16a34a"
BAD = "#dc2626"
PALETTE = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#0891b2", "#db2777", "#ca8a04", "#475569"]

RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "c2m-report",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "axes.labelcolor": INK,
    "axes.edgecolor": "#9ca3af",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "both",
    "axes.axisbelow": True,
    "axes.prop_cycle": cycler(color=PALETTE),
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelcolor": INK,
    "ytick.labelcolor": INK,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.dpi": 72,
    "savefig.bbox": None,
    "savefig.pad_inches": 0.08,
    "savefig.transparent": False,
    "savefig.facecolor": "white",
    "lines.linewidth": 1.8,
}

# the SVG's text falls back on the reader's system fonts, like the page around it
_FONT_STACK = (
    "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,'Noto Sans',"
    "'DejaVu Sans',sans-serif"
)


@contextmanager
def style() -> Iterator[None]:
    """The report's matplotlib settings, for figure creation and saving."""
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]
        yield


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure (inches); draw on it inside :func:`style`."""
    return Figure(figsize=(width, height), layout="constrained")


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element: no XML prolog, no metadata, ids prefixed by ``name``.

    Ids become ``name-1``, ``name-2``... so the clip paths and markers of
    several figures on one page do not collide and the same figure always
    gives the same text; the size becomes a responsive ``width:100%``.
    """
    buffer = io.StringIO()
    with style():
        fig.savefig(
            buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
        )
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    # sequential ids: matplotlib hashes clip boxes, whose last bits vary with the layout's history
    names: dict[str, str] = {}
    for found in _ID.findall(text):
        names.setdefault(found, f"{prefix}-{len(names) + 1}")
    text = _ID.sub(lambda m: f'id="{names[m.group(1)]}"', text)
    text = _REF.sub(lambda m: f"{m.group(1)}{names.get(m.group(2), prefix + '-' + m.group(2))}", text)
    head_end = text.index(">")
    head = text[:head_end]
    head = re.sub(r'\s(width|height)="[^"]*"', "", head, count=2)
    head = head.replace("<svg", f'<svg role="img" aria-label="{prefix}" class="figure-svg"', 1)
    text = head + text[head_end:]
    text = re.sub(r"font-family: ?'DejaVu Sans'(, ?sans-serif)?", _FONT_STACK, text)
    return text.strip()


def thousands(decimals: int = 0) -> FuncFormatter:
    return FuncFormatter(lambda x, _pos: f"{x:,.{decimals}f}")


def percent(decimals: int = 0) -> FuncFormatter:
    return FuncFormatter(lambda x, _pos: f"{100 * x:,.{decimals}f}%")


def yuan() -> FuncFormatter:
    def fmt(x: float, _pos: int) -> str:
        size = abs(x)
        sign = "-" if x < 0 else ""
        if size >= 1e9:
            return f"{sign}\u00a5{size / 1e9:,.1f}bn"
        if size >= 1e6:
            return f"{sign}\u00a5{size / 1e6:,.0f}M"
        return f"{sign}\u00a5{size:,.0f}"

    return FuncFormatter(fmt)


def yuan_k() -> FuncFormatter:
    """Prices on an axis: ``¥45k``, ``¥110k``."""
    return FuncFormatter(lambda x, _pos: f"\u00a5{x / 1000:,.0f}k" if abs(x) >= 1000 else f"\u00a5{x:,.0f}")
