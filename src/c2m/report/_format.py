"""Number formatting for the report: thousands separators, yuan, percentages."""

from __future__ import annotations

import math
from typing import Any

DASH = "\u2013"


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_int(value: Any) -> str:
    """``12345.6`` -> ``"12,346"``."""
    number = _finite(value)
    return "\u2014" if number is None else f"{round(number):,}"


def fmt_num(value: Any, digits: int = 2) -> str:
    """A float with thousands separators and ``digits`` decimals."""
    number = _finite(value)
    return "\u2014" if number is None else f"{number:,.{digits}f}"


def fmt_yuan(value: Any) -> str:
    """``49900`` -> ``"¥49,900"`` (whole yuan; a minus sign before the symbol)."""
    number = _finite(value)
    if number is None:
        return "\u2014"
    sign = "-" if round(number) < 0 else ""
    return f"{sign}\u00a5{abs(round(number)):,}"


def fmt_yuan_compact(value: Any) -> str:
    """Big yuan amounts for the summary tiles: ``¥412.5 M``, ``¥1.23 bn``."""
    number = _finite(value)
    if number is None:
        return "\u2014"
    size = abs(number)
    sign = "-" if number < 0 else ""
    if size >= 1e9:
        return f"{sign}\u00a5{size / 1e9:,.2f} bn"
    if size >= 1e7:
        return f"{sign}\u00a5{size / 1e6:,.1f} M"
    return fmt_yuan(number)


def fmt_pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``"12.3%"``."""
    number = _finite(value)
    return "\u2014" if number is None else f"{100 * number:,.{digits}f}%"


def fmt_pct_interval(value: Any, low: Any, high: Any, digits: int = 1) -> str:
    """``"12.3% (10.1–14.5%)"``; the interval is left out when unknown."""
    text = fmt_pct(value, digits)
    lo, hi = _finite(low), _finite(high)
    if lo is None or hi is None:
        return text
    return f"{text} ({100 * lo:,.{digits}f}{DASH}{100 * hi:,.{digits}f}%)"


def fmt_int_interval(value: Any, low: Any, high: Any) -> str:
    """``"12,345 (10,000–15,000)"``; the interval is left out when unknown."""
    text = fmt_int(value)
    lo, hi = _finite(low), _finite(high)
    if lo is None or hi is None:
        return text
    return f"{text} ({round(lo):,}{DASH}{round(hi):,})"


def fmt_value(value: Any) -> str:
    """Any run-info value as short text: ints and floats with separators, the rest as str."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "\u2014"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        if float(value).is_integer():
            return f"{value:,.0f}"
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return ", ".join(fmt_value(v) for v in value)
    return str(value)
