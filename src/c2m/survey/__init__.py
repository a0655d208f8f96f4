"""Choice-based-conjoint survey design: random, complete enumeration, balanced overlap, shortcut,
D-efficient; prohibitions, holdout tasks, design diagnostics and sample size."""

from ._design import Design, check_design, read_design
from ._diagnostics import (
    Diagnostics,
    d_error,
    design_diagnostics,
    expected_standard_errors,
    required_sample_size,
    respondent_information,
)
from ._make import METHODS, holdout_positions, make_design

__all__ = [
    "METHODS",
    "Design",
    "Diagnostics",
    "check_design",
    "d_error",
    "design_diagnostics",
    "expected_standard_errors",
    "holdout_positions",
    "make_design",
    "read_design",
    "required_sample_size",
    "respondent_information",
]
