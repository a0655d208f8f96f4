"""The report's charts, one function per figure, each returning a matplotlib Figure."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ._analysis import Importance, Preferences
from ._svg import (
    ACCENT,
    BAD,
    COMPETITOR,
    GOOD,
    INK,
    MUTED,
    NONE,
    OURS,
    PALETTE,
    new_figure,
    percent,
    thousands,
    yuan,
    yuan_k,
)

WIDTH = 9.0
GRID_EDGE = "#d1d5db"


def _time_column(frame: pl.DataFrame) -> str | None:
    for name in ("week", "day", "date", "week_start", "month"):
        if name in frame.columns:
            return name
    return None


# ------------------------------------------------------------------ survey


def panel_columns(sizes: list[int], n_cols: int = 2) -> list[list[int]]:
    """Indices of panels per column: each panel, in order, goes to the shortest column so far."""
    n_cols = max(1, min(n_cols, len(sizes)))
    columns: list[list[int]] = [[] for _ in range(n_cols)]
    heights = [0.0] * n_cols
    for i, size in enumerate(sizes):
        k = int(np.argmin(heights))
        columns[k].append(i)
        heights[k] += size + 2.5
    return columns


def _panels(sizes: list[int], row_height: float, extra: float = 0.0) -> tuple[Figure, list[Axes]]:
    """A figure of horizontal-bar panels packed in two columns, bars the same thickness everywhere."""
    columns = panel_columns(sizes)
    height = max(sum(row_height * sizes[i] + 0.55 for i in col) for col in columns) + extra
    fig = new_figure(WIDTH, height)
    subfigs = fig.subfigures(1, len(columns), squeeze=False)[0]
    axes: list[Axes | None] = [None] * len(sizes)
    for sub, col in zip(subfigs, columns, strict=True):
        total = sum(row_height * sizes[i] + 0.55 for i in col)
        ratios = [row_height * sizes[i] + 0.55 for i in col]
        if height - extra - total > 0.05:
            ratios.append(height - extra - total)
        grid = sub.add_gridspec(len(ratios), 1, height_ratios=ratios)
        for r, i in enumerate(col):
            axes[i] = sub.add_subplot(grid[r, 0])
    return fig, [ax for ax in axes if ax is not None]


def level_balance(counts: pl.DataFrame, labels: dict[str, str] | None = None) -> Figure:
    """Share of each level in the design against the ideal (balanced) share, per attribute."""
    labels = labels or {}
    attributes = list(dict.fromkeys(counts["attribute"].cast(pl.String).to_list()))
    parts = [counts.filter(pl.col("attribute") == a) for a in attributes]
    fig, axes = _panels([p.height for p in parts], 0.2, extra=0.3)
    for ax, attribute, part in zip(axes, attributes, parts, strict=True):
        levels = part["level"].cast(pl.String).to_list()
        y = np.arange(len(levels))[::-1]
        share = part["share"].cast(pl.Float64).to_numpy()
        ideal = part["ideal_share"].cast(pl.Float64).to_numpy()
        ax.barh(y, share, height=0.65, color=OURS, alpha=0.85)
        ax.scatter(ideal, y, marker="|", s=120, color=ACCENT, zorder=3, linewidths=2)
        ax.set_yticks(y, levels)
        ax.set_ylim(-0.6, len(levels) - 0.4)
        ax.set_title(labels.get(attribute, attribute))
        ax.xaxis.set_major_formatter(percent())
        ax.grid(axis="y", visible=False)
        ax.set_xlim(0, max(float(share.max()), float(ideal.max())) * 1.15)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(axis="both", labelsize=8.5)
    fig.legend(
        handles=[
            Line2D([], [], color=OURS, lw=6, label="share of the design's alternatives"),
            Line2D([], [], color=ACCENT, lw=0, marker="|", markersize=12, mew=2, label="balanced share"),
        ],
        loc="outside lower center",
        ncols=2,
    )
    return fig


def sample_vs_population(respondents: pl.DataFrame, population: pl.DataFrame | None, top: int = 20) -> Figure:
    """Share of respondents by city against the population's (top cities by population).

    When the respondents carry survey weights (a ``weight`` column) the weighted
    sample is shown too: what the estimation sees after weighting.
    """
    weighted = "weight" in respondents.columns
    sample = respondents.group_by("city").agg(
        n=pl.len(), w=pl.col("weight").sum() if weighted else pl.len().cast(pl.Float64)
    )
    sample = sample.with_columns(sample=pl.col("n") / pl.col("n").sum(), weighted=pl.col("w") / pl.col("w").sum())
    frame = sample.select("city", "sample", "weighted")
    if population is not None:
        pop = (
            population.group_by("city")
            .agg(n=pl.len())
            .with_columns(population=pl.col("n") / pl.col("n").sum())
        )
        frame = (
            pop.select("city", "population").join(frame, on="city", how="full", coalesce=True).fill_null(0.0)
        )
        frame = frame.sort(["population", "city"], descending=[True, False])
    else:
        frame = frame.sort(["sample", "city"], descending=[True, False])
    frame = frame.head(top)
    cities = frame["city"].to_list()
    x = np.arange(len(cities))
    fig = new_figure(WIDTH, 3.0)
    ax = fig.add_subplot()
    series = [("population", COMPETITOR, "population")] if population is not None else []
    series.append(("sample", OURS, "survey sample"))
    if weighted:
        series.append(("weighted", ACCENT, "weighted sample"))
    width = 0.8 / len(series)
    for k, (column, colour, label) in enumerate(series):
        offset = (k - (len(series) - 1) / 2) * width
        ax.bar(x + offset, frame[column].to_numpy(), width=width, color=colour, label=label)
    ax.set_xticks(x, cities, rotation=45, ha="right", rotation_mode="anchor")
    ax.yaxis.set_major_formatter(percent())
    ax.set_ylabel("share of people")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right")
    return fig


# ------------------------------------------------------------- preferences


def partworths(prefs: Preferences) -> Figure:
    """Part-worth of every level with 95% error bars, one panel per attribute."""
    groups = prefs.by_attribute()
    names = list(groups)
    fig, axes = _panels([len(groups[a]) for a in names], 0.22, extra=0.3)
    for ax, name in zip(axes, names, strict=True):
        levels = groups[name]
        y = np.arange(len(levels))[::-1]
        values = np.array([pw.partworth for pw in levels])
        colors = [MUTED if pw.reference else (OURS if pw.partworth >= 0 else BAD) for pw in levels]
        ax.barh(y, values, height=0.62, color=colors, alpha=0.9)
        ref = np.array([pw.reference for pw in levels])
        if ref.any():
            ax.scatter(values[ref], y[ref], marker="D", s=14, color=MUTED, zorder=3)
        err = np.array([[0.0 if pw.se is None else 1.959964 * pw.se] * 2 for pw in levels]).T
        has = np.array([pw.se is not None for pw in levels])
        if has.any():
            ax.errorbar(
                values[has], y[has], xerr=err[:, has], fmt="none", ecolor=INK, elinewidth=1, capsize=2.5
            )
        ax.axvline(0, color=INK, lw=0.8)
        ax.set_yticks(y, [_short(pw.level_label, 30) for pw in levels])
        ax.set_ylim(-0.6, len(levels) - 0.4)
        ax.set_title(levels[0].attribute_label)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(axis="both", labelsize=8.5)
    fig.supxlabel("utility against the reference level (◆), with 95% intervals", fontsize=8.5, color=MUTED)
    return fig


def _short(text: str, width: int = 34) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def importance(items: list[Importance]) -> Figure:
    """Attribute importance: each attribute's part-worth range as a share of the total."""
    fig = new_figure(WIDTH, 0.32 * len(items) + 0.8)
    ax = fig.add_subplot()
    y = np.arange(len(items))[::-1]
    shares = np.array([it.share for it in items])
    ax.barh(y, shares, height=0.62, color=OURS)
    for yi, s in zip(y, shares, strict=True):
        ax.text(s, yi, f" {100 * s:.1f}%", va="center", fontsize=8.5, color=INK)
    ax.set_yticks(y, [it.attribute_label for it in items])
    ax.xaxis.set_major_formatter(percent())
    ax.set_xlim(0, float(shares.max()) * 1.15 if len(shares) and shares.max() > 0 else 1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("importance (range of part-worths, share of total)")
    return fig


# ------------------------------------------------------------------ market

_KIND_ORDER = {"ours": 0, "competitor": 1, "none": 2}
_KIND_COLOR = {"ours": OURS, "competitor": COMPETITOR, "none": NONE}


def shares(frame: pl.DataFrame) -> Figure:
    """Share of preference: our variants, competitors and None, with 95% whiskers."""
    data = frame.with_columns(
        _order=pl.col("kind").cast(pl.String).replace_strict(_KIND_ORDER, default=3)
    ).sort(["_order", "share"], descending=[False, True])
    fig = new_figure(WIDTH, 0.36 * data.height + 0.9)
    ax = fig.add_subplot()
    y = np.arange(data.height)[::-1]
    share = data["share"].cast(pl.Float64).to_numpy()
    kinds = data["kind"].cast(pl.String).to_list()
    ax.barh(y, share, height=0.65, color=[_KIND_COLOR.get(k, MUTED) for k in kinds])
    if "share_low" in data.columns and "share_high" in data.columns:
        low = data["share_low"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        high = data["share_high"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        ok = np.isfinite(low) & np.isfinite(high)
        xerr = np.vstack([np.clip(share - low, 0, None), np.clip(high - share, 0, None)])
        ax.errorbar(share[ok], y[ok], xerr=xerr[:, ok], fmt="none", ecolor=INK, elinewidth=1, capsize=3)
        right = np.where(ok, high, share)
    else:
        right = share
    for yi, s, r in zip(y, share, right, strict=True):
        ax.text(r, yi, f"  {100 * s:.1f}%", va="center", fontsize=8.5, color=INK)
    ax.set_yticks(y, data["product"].cast(pl.String).to_list())
    ax.xaxis.set_major_formatter(percent())
    ax.set_xlim(0, float(np.nanmax(right)) * 1.18 if data.height else 1)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("share of preference (95% interval)")
    fig.legend(
        handles=[
            Line2D([], [], color=c, lw=7, label=label)
            for c, label in ((OURS, "ours"), (COMPETITOR, "competitors"), (NONE, "none of these"))
        ],
        loc="outside lower center",
        ncols=3,
    )
    return fig


def profit_max(frame: pl.DataFrame) -> dict[str, tuple[float, float]]:
    """Price and profit at the maximum of each variant's profit curve."""
    if "profit" not in frame.columns:
        return {}
    out: dict[str, tuple[float, float]] = {}
    for name, part in _by_variant(frame):
        profit = part["profit"].cast(pl.Float64).to_numpy()
        if len(profit) == 0 or not np.isfinite(profit).any():
            continue
        k = int(np.nanargmax(profit))
        out[name] = (float(part["price"][k]), float(profit[k]))
    return out


def _by_variant(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    if "variant" not in frame.columns:
        return [("", frame.sort("price"))]
    names = list(dict.fromkeys(frame["variant"].cast(pl.String).to_list()))
    return [(n, frame.filter(pl.col("variant").cast(pl.String) == n).sort("price")) for n in names]


def demand_curve(frame: pl.DataFrame) -> Figure:
    """Share (or volume) and profit against price, the profit-maximising price marked."""
    has_profit = "profit" in frame.columns
    fig = new_figure(WIDTH, 3.3)
    axes = fig.subplots(1, 2 if has_profit else 1, squeeze=False)[0]
    use_volume = "volume" in frame.columns
    best = profit_max(frame)
    for k, (name, part) in enumerate(_by_variant(frame)):
        color = PALETTE[k % len(PALETTE)]
        price = part["price"].cast(pl.Float64).to_numpy()
        y = part["volume" if use_volume else "share"].cast(pl.Float64).to_numpy()
        axes[0].plot(price, y, color=color, label=name or None)
        if has_profit:
            axes[1].plot(price, part["profit"].cast(pl.Float64).to_numpy(), color=color, label=name or None)
            if name in best:
                p, v = best[name]
                axes[1].axvline(p, color=color, lw=1, ls="--")
                axes[1].scatter([p], [v], color=color, zorder=3)
                axes[1].annotate(
                    f"max at \u00a5{p:,.0f}",
                    (p, v),
                    textcoords="offset points",
                    xytext=(6, 6),
                    fontsize=8.5,
                    color=INK,
                )
                axes[0].axvline(p, color=color, lw=1, ls="--")
    axes[0].set_title("Annual volume vs price" if use_volume else "Share vs price")
    axes[0].yaxis.set_major_formatter(thousands() if use_volume else percent())
    if has_profit:
        axes[1].set_title("Profit vs price")
        axes[1].yaxis.set_major_formatter(yuan())
        axes[1].axhline(0, color=MUTED, lw=0.8)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.xaxis.set_major_formatter(yuan_k())
        ax.set_xlabel("price")
    if "variant" in frame.columns:
        axes[0].legend()
    return fig


def tornado(
    frame: pl.DataFrame, baseline: float | None = None, labels: dict[str, str] | None = None
) -> Figure:
    """Lowest to highest share over each attribute's levels, widest range on top."""
    if "prohibited" in frame.columns:
        frame = frame.filter(~pl.col("prohibited").cast(pl.Boolean).fill_null(False))
    stats = (
        frame.with_columns(pl.col("share").cast(pl.Float64))
        .group_by("attribute", maintain_order=True)
        .agg(
            low=pl.col("share").min(),
            high=pl.col("share").max(),
            low_level=pl.col("level").sort_by("share").first().cast(pl.String),
            high_level=pl.col("level").sort_by("share").last().cast(pl.String),
        )
        .with_columns(span=pl.col("high") - pl.col("low"))
        .sort(["span", "attribute"], descending=[True, False])
    )
    fig = new_figure(WIDTH, 0.42 * stats.height + 0.9)
    ax = fig.add_subplot()
    y = np.arange(stats.height)[::-1]
    low = stats["low"].to_numpy()
    high = stats["high"].to_numpy()
    centre = baseline if baseline is not None else float(np.median((low + high) / 2)) if len(low) else 0.0
    ax.barh(
        y,
        np.clip(centre - low, 0, None),
        left=np.minimum(low, centre),
        height=0.6,
        color=BAD,
        alpha=0.75,
        label="share falls",
    )
    ax.barh(
        y,
        np.clip(high - centre, 0, None),
        left=np.maximum(centre, low),
        height=0.6,
        color=GOOD,
        alpha=0.8,
        label="share rises",
    )
    for yi, lo, hi, lo_name, hi_name in zip(
        y, low, high, stats["low_level"].to_list(), stats["high_level"].to_list(), strict=True
    ):
        ax.text(
            lo, yi, f"{_short(lo_name, 18)} {100 * lo:.1f}%  ", va="center", ha="right", fontsize=8, color=INK
        )
        ax.text(
            hi, yi, f"  {_short(hi_name, 18)} {100 * hi:.1f}%", va="center", ha="left", fontsize=8, color=INK
        )
    if baseline is not None:
        ax.axvline(baseline, color=INK, lw=1)
        ax.annotate(
            f"base {100 * baseline:.1f}%",
            (baseline, 1.0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=8.5,
            color=INK,
        )
    span = float(high.max() - low.min()) if len(low) else 1.0
    ax.set_xlim(float(low.min()) - 0.45 * span - 1e-9, float(high.max()) + 0.45 * span + 1e-9)
    labels = labels or {}
    ax.set_yticks(y, [labels.get(a, a) for a in stats["attribute"].cast(pl.String).to_list()])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{100 * x:.0f}%" if x >= -1e-12 else ""))
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("share of the product when one attribute changes level (allowed levels only)")
    return fig


# ---------------------------------------------------------------- forecast


def _week_axis(frame: pl.DataFrame) -> str:
    return "week" if "week" in frame.columns else (_time_column(frame) or "week")


def forecast_total(frame: pl.DataFrame) -> Figure:
    """Weekly demand of the whole line with its band (sum of the bounds)."""
    t = _week_axis(frame)
    total = _sum_by(frame, [t]).sort(t)
    fig = new_figure(WIDTH, 3.0)
    ax = fig.add_subplot()
    x = total[t].to_numpy()
    if "demand_low" in total.columns and "demand_high" in total.columns:
        ax.fill_between(
            x,
            total["demand_low"].to_numpy(),
            total["demand_high"].to_numpy(),
            color=OURS,
            alpha=0.18,
            lw=0,
            label="interval",
        )
    ax.plot(x, total["demand"].to_numpy(), color=OURS, label="expected demand")
    ax.set_xlabel(t)
    ax.set_ylabel("cars per week")
    ax.yaxis.set_major_formatter(thousands())
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right")
    return fig


def _sum_by(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    cols = [c for c in ("demand", "demand_low", "demand_high") if c in frame.columns]
    return frame.group_by(keys).agg([pl.col(c).cast(pl.Float64).sum() for c in cols])


def top_cities(frame: pl.DataFrame, n: int = 6) -> list[str]:
    by_city = (
        frame.group_by("city")
        .agg(total=pl.col("demand").sum())
        .sort(["total", "city"], descending=[True, False])
    )
    return by_city["city"].cast(pl.String).head(n).to_list()


def forecast_cities(frame: pl.DataFrame, n: int = 6) -> Figure:
    """Small multiples: weekly demand in the top cities, shared y-axis."""
    t = _week_axis(frame)
    cities = top_cities(frame, n)
    cols = 3
    rows = math.ceil(len(cities) / cols)
    fig = new_figure(WIDTH, 1.9 * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    per_city = _sum_by(frame, ["city", t])
    for i, ax in enumerate(axes.flat):
        if i >= len(cities):
            ax.set_visible(False)
            continue
        part = per_city.filter(pl.col("city") == cities[i]).sort(t)
        x = part[t].to_numpy()
        if "demand_low" in part.columns and "demand_high" in part.columns:
            ax.fill_between(
                x, part["demand_low"].to_numpy(), part["demand_high"].to_numpy(), color=OURS, alpha=0.18, lw=0
            )
        ax.plot(x, part["demand"].to_numpy(), color=OURS, lw=1.5)
        ax.set_title(cities[i], fontsize=9.5)
        ax.yaxis.set_major_formatter(thousands())
        ax.set_ylim(bottom=0)
    fig.supxlabel(t, fontsize=8.5, color=MUTED)
    fig.supylabel("cars per week", fontsize=8.5, color=MUTED)
    return fig


def preorder_columns(frame: pl.DataFrame) -> tuple[str | None, list[str]]:
    """The time column and the count columns of a preorders frame."""
    t = _time_column(frame)
    skip = {"week", "day", "date", "week_start", "month", "variant", "city"}
    counts = [
        c
        for c in frame.columns
        if c not in skip and frame[c].dtype.is_numeric() and not c.startswith("cumulative_")
    ]
    preferred: list[str] = [
        c for c in ("reservations", "deposits", "preorders", "orders", "conversions") if c in counts
    ]
    return t, preferred or counts[:4]


def preorders(frame: pl.DataFrame) -> Figure:
    """Cumulative reservations and pre-orders over time."""
    t, counts = preorder_columns(frame)
    fig = new_figure(WIDTH, 3.0)
    ax = fig.add_subplot()
    if t is not None:
        total = frame.group_by(t).agg([pl.col(c).cast(pl.Float64).sum() for c in counts]).sort(t)
    else:
        total = frame.with_row_index("row").select(["row", *counts])
        t = "row"
    x = total[t].to_numpy()
    for k, c in enumerate(counts):
        ax.plot(x, np.cumsum(total[c].to_numpy()), color=PALETTE[k % len(PALETTE)], label=f"cumulative {c}")
    ax.set_xlabel(t)
    ax.yaxis.set_major_formatter(thousands())
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return fig


# -------------------------------------------------------------- build plan


def weekly_capacity(frame: pl.DataFrame) -> pl.DataFrame | None:
    """Plant capacity per week: the common value when rows repeat it, else the sum over variants."""
    if "capacity" not in frame.columns:
        return None
    per_week = frame.group_by("week").agg(
        n_unique=pl.col("capacity").n_unique(),
        first=pl.col("capacity").first(),
        total=pl.col("capacity").sum(),
    )
    same = bool((per_week["n_unique"] == 1).all())
    return per_week.select("week", capacity=pl.col("first" if same else "total").cast(pl.Float64)).sort(
        "week"
    )


def build_plan(frame: pl.DataFrame) -> Figure:
    """Weekly build stacked by variant, with capacity, demand and backlog lines."""
    weeks = np.sort(frame["week"].unique().to_numpy())
    variants = list(dict.fromkeys(frame["variant"].cast(pl.String).to_list()))
    fig = new_figure(WIDTH, 3.6)
    ax = fig.add_subplot()
    bottom = np.zeros(len(weeks))
    index = {w: i for i, w in enumerate(weeks)}
    for k, name in enumerate(variants):
        part = (
            frame.filter(pl.col("variant").cast(pl.String) == name)
            .group_by("week")
            .agg(pl.col("build").sum())
        )
        values = np.zeros(len(weeks))
        for w, b in zip(part["week"].to_list(), part["build"].to_list(), strict=True):
            values[index[w]] = float(b or 0.0)
        ax.bar(
            weeks, values, bottom=bottom, width=0.85, color=PALETTE[k % len(PALETTE)], label=name, alpha=0.9
        )
        bottom += values
    capacity = weekly_capacity(frame)
    if capacity is not None:
        ax.step(
            capacity["week"].to_numpy(),
            capacity["capacity"].to_numpy(),
            where="mid",
            color=MUTED,
            lw=1.8,
            ls="--",
            label="capacity",
        )
    if "demand" in frame.columns:
        demand = frame.group_by("week").agg(pl.col("demand").sum()).sort("week")
        ax.plot(demand["week"].to_numpy(), demand["demand"].to_numpy(), color=INK, lw=1.4, label="demand")
    handles, _ = ax.get_legend_handles_labels()
    if "backlog" in frame.columns:
        backlog = frame.group_by("week").agg(pl.col("backlog").sum()).sort("week")
        right = ax.twinx()
        right.grid(False)
        right.spines["right"].set_visible(True)
        (line,) = right.plot(
            backlog["week"].to_numpy(),
            backlog["backlog"].to_numpy(),
            color=BAD,
            lw=1.4,
            ls=":",
            label="backlog (right axis)",
        )
        right.set_ylabel("orders waiting", color=BAD)
        right.yaxis.set_major_formatter(thousands())
        right.set_ylim(bottom=0)
        handles.append(line)
    ax.set_xlabel("week")
    ax.set_ylabel("cars per week")
    ax.yaxis.set_major_formatter(thousands())
    ax.grid(axis="x", visible=False)
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
    return fig


# ---------------------------------------------------------- battery service


def swap_map(swap: pl.DataFrame | None, stores: pl.DataFrame | None, n_zoom: int = 4) -> Figure:
    """Stores on a lon/lat plane, swap stations highlighted and sized by swaps per day.

    Left: the whole network; right: the busiest cities zoomed in (when the
    plan names cities).
    """
    background = stores
    stations: pl.DataFrame | None = None
    if swap is not None:
        flag = swap["station"].cast(pl.Boolean).fill_null(False)
        stations = swap.filter(flag)
        if background is None:
            background = swap.filter(~flag)
    swaps = None
    if stations is not None and "swaps_per_day" in stations.columns:
        swaps = stations["swaps_per_day"].cast(pl.Float64).fill_null(0.0).clip(0.0).to_numpy()
    top = max(float(swaps.max()), 1e-9) if swaps is not None and len(swaps) else 1.0

    def size(values: np.ndarray | None, n: int, scale: float) -> np.ndarray:
        if values is None:
            return np.full(n, 30.0 * scale)
        return scale * (10 + 200 * np.sqrt(values / top))

    zoom: list[str] = []
    if stations is not None and stations.height and "city" in stations.columns:
        weight = pl.col("swaps_per_day").sum() if swaps is not None else pl.len()
        zoom = (
            stations.group_by("city")
            .agg(w=weight)
            .sort(["w", "city"], descending=[True, False])["city"]
            .cast(pl.String)
            .head(n_zoom)
            .to_list()
        )
    fig = new_figure(WIDTH, 5.4)
    if zoom:
        left, right = fig.subfigures(1, 2, width_ratios=[1.25, 1.0], squeeze=False)[0]
        ax = left.add_subplot()
        zoom_axes = right.subplots(2, 2, squeeze=False).flat
    else:
        ax = fig.add_subplot()
        zoom_axes = iter(())
    if background is not None and background.height:
        ax.scatter(background["lon"].to_numpy(), background["lat"].to_numpy(), s=5, color=COMPETITOR, lw=0)
    if stations is not None and stations.height:
        ax.scatter(
            stations["lon"].to_numpy(),
            stations["lat"].to_numpy(),
            s=size(swaps, stations.height, 0.6),
            color=OURS,
            alpha=0.35,
            edgecolor=OURS,
            lw=0.6,
        )
        if "city" in stations.columns:
            label_weight = pl.col("swaps_per_day").sum() if swaps is not None else pl.len()
            by_city = (
                stations.group_by("city")
                .agg(pl.col("lon").mean(), pl.col("lat").mean(), w=label_weight)
                .sort(["w", "city"], descending=[True, False])
                .head(8)
            )
            for row in by_city.iter_rows(named=True):
                ax.annotate(
                    str(row["city"]),
                    (row["lon"], row["lat"]),
                    textcoords="offset points",
                    xytext=(6, 4),
                    fontsize=7.5,
                    color=INK,
                )
    ax.set_aspect(1 / math.cos(math.radians(_mid_lat(stations, background))), adjustable="datalim")
    ax.set_title("Whole network")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    for city, zax in zip(zoom, zoom_axes, strict=False):
        assert stations is not None
        here = stations.filter(pl.col("city").cast(pl.String) == city)
        if background is not None and "city" in background.columns:
            bg = background.filter(pl.col("city").cast(pl.String) == city)
            zax.scatter(bg["lon"].to_numpy(), bg["lat"].to_numpy(), s=14, color=COMPETITOR, lw=0)
        local = (
            None
            if swaps is None
            else here["swaps_per_day"].cast(pl.Float64).fill_null(0.0).clip(0.0).to_numpy()
        )
        zax.scatter(
            here["lon"].to_numpy(),
            here["lat"].to_numpy(),
            s=size(local, here.height, 1.0),
            color=OURS,
            alpha=0.45,
            edgecolor=OURS,
            lw=0.8,
        )
        zax.set_aspect(1 / math.cos(math.radians(_mid_lat(here))), adjustable="datalim")
        zax.margins(0.18)
        zax.set_xticks([])
        zax.set_yticks([])
        for side in ("left", "bottom"):
            zax.spines[side].set_color(GRID_EDGE)
        n = here.height
        detail = f"{n} station{'s' if n != 1 else ''}"
        if local is not None:
            detail += f", {local.sum():,.0f} swaps/day"
        zax.set_title(f"{city}\n{detail}", fontsize=8.5, fontweight="normal")
    handles = [Line2D([], [], color=COMPETITOR, lw=0, marker="o", markersize=4, label="store")]
    if swaps is not None:
        for value in _nice_sizes(top):
            handles.append(
                ax.scatter(
                    [],
                    [],
                    s=10 + 200 * math.sqrt(value / top),
                    color=OURS,
                    alpha=0.45,
                    edgecolor=OURS,
                    lw=0.8,
                    label=f"station, {value:,.0f} swaps/day",
                )
            )
    elif stations is not None:
        handles.append(ax.scatter([], [], s=30, color=OURS, alpha=0.45, label="swap station"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), scatterpoints=1)
    return fig


def _mid_lat(*frames: pl.DataFrame | None) -> float:
    lats = [
        float(np.mean(f["lat"].cast(pl.Float64).to_numpy())) for f in frames if f is not None and f.height
    ]
    return float(np.clip(np.mean(lats), -70, 70)) if lats else 0.0


def _nice_sizes(top: float) -> list[float]:
    exp = 10 ** math.floor(math.log10(top)) if top >= 1 else 1.0
    big = math.floor(top / exp) * exp
    values = sorted({big, big / 2, big / 5} - {0.0})
    return [v for v in values if v >= 1] or [top]


def rent_vs_buy(frame: pl.DataFrame) -> Figure:
    """Cumulative cost of renting vs buying the battery, one panel per pack, break-even marked."""
    packs = list(dict.fromkeys(frame["pack"].cast(pl.String).to_list())) if "pack" in frame.columns else [""]
    cols = min(2, len(packs))
    rows = math.ceil(len(packs) / cols)
    fig = new_figure(WIDTH, 2.5 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for i, ax in enumerate(axes.flat):
        if i >= len(packs):
            ax.set_visible(False)
            continue
        part = frame if packs[i] == "" else frame.filter(pl.col("pack").cast(pl.String) == packs[i])
        plans = (
            list(dict.fromkeys(part["plan"].cast(pl.String).to_list())) if "plan" in part.columns else [""]
        )
        buy_drawn = False
        for k, plan in enumerate(plans):
            rows_ = (part if plan == "" else part.filter(pl.col("plan").cast(pl.String) == plan)).sort(
                "month"
            )
            month = rows_["month"].cast(pl.Float64).to_numpy()
            color = PALETTE[(k + 1) % len(PALETTE)]
            ax.plot(
                month,
                rows_["rent_cost"].cast(pl.Float64).to_numpy(),
                color=color,
                label=f"rent{' ' + plan if plan else ''}",
            )
            if not buy_drawn:
                ax.plot(month, rows_["buy_cost"].cast(pl.Float64).to_numpy(), color=INK, lw=2, label="buy")
                buy_drawn = True
            if "break_even_month" in rows_.columns:
                be = rows_["break_even_month"].cast(pl.Float64).drop_nulls()
                if be.len() and math.isfinite(float(be[0])):
                    m = float(be[0])
                    ax.axvline(m, color=color, lw=1, ls="--")
                    ax.annotate(
                        f"break-even {m:.0f} mo",
                        (m, 0.04 + 0.12 * k),
                        xycoords=("data", "axes fraction"),
                        xytext=(3, 0),
                        textcoords="offset points",
                        fontsize=8,
                        color=color,
                    )
        ax.set_title(packs[i] or "battery")
        ax.yaxis.set_major_formatter(yuan())
        ax.legend(loc="upper left", fontsize=8)
    fig.supxlabel("months of ownership", fontsize=8.5, color=MUTED)
    fig.supylabel("cumulative cost to the driver", fontsize=8.5, color=MUTED)
    return fig
