"""Coefficient tables (estimate, SE, z, p, 95% CI) and a printable report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy import stats

from c2m.choice._mnl_math import FloatArray

Z95 = float(stats.norm.ppf(0.975))


def coef_table(names: Sequence[str], coef: FloatArray, se: FloatArray) -> pl.DataFrame:
    """Polars table: feature, estimate, std_err, z, p_value, ci_low, ci_high (95%)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = coef / se
    p = 2.0 * stats.norm.sf(np.abs(z))
    return pl.DataFrame(
        {
            "feature": list(names),
            "estimate": coef,
            "std_err": se,
            "z": z,
            "p_value": p,
            "ci_low": coef - Z95 * se,
            "ci_high": coef + Z95 * se,
        }
    )


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def format_report(title: str, header: Sequence[tuple[str, str]], table: pl.DataFrame) -> str:
    """Two-column header of fit statistics followed by the coefficient table."""
    width = max(len(f) for f in [*table.get_column("feature").to_list(), "feature"])
    lines = [title, "=" * len(title)]
    half = (len(header) + 1) // 2
    left, right = header[:half], header[half:]
    for i in range(half):
        a = f"{left[i][0]:<18}{left[i][1]:>14}"
        b = f"{right[i][0]:<18}{right[i][1]:>14}" if i < len(right) else ""
        lines.append(f"{a}    {b}".rstrip())
    cols = f"{'feature':<{width}} {'estimate':>11} {'std_err':>10} {'z':>8} {'p_value':>9} "
    cols += f"{'ci_low':>10} {'ci_high':>10}"
    lines += ["-" * len(cols), cols, "-" * len(cols)]
    for r in table.iter_rows(named=True):
        lines.append(
            f"{r['feature']:<{width}} {r['estimate']:>11.5g} {r['std_err']:>10.4g} {r['z']:>8.3f} "
            f"{r['p_value']:>9.3g} {r['ci_low']:>10.4g} {r['ci_high']:>10.4g} {_stars(r['p_value'])}"
        )
    lines += ["-" * len(cols), "signif.: *** 0.001  ** 0.01  * 0.05  . 0.1"]
    return "\n".join(lines)
