"""The decision report: one self-contained HTML page (inline CSS and SVG) from typed stage results."""

from ._analysis import Importance, PartWorth, Preferences, coefficient_table, fit_statistics, preferences
from ._build import build_report, render_figures, report_context, write_figures, write_report
from ._format import fmt_int, fmt_pct, fmt_yuan
from ._inputs import ReportInputs, validate_inputs
from ._read import level_counts, read_inputs

__all__ = [
    "Importance",
    "PartWorth",
    "Preferences",
    "ReportInputs",
    "build_report",
    "coefficient_table",
    "fit_statistics",
    "fmt_int",
    "fmt_pct",
    "fmt_yuan",
    "level_counts",
    "preferences",
    "read_inputs",
    "render_figures",
    "report_context",
    "validate_inputs",
    "write_figures",
    "write_report",
]
