"""Fixtures of the report tests: one full set of synthetic stage results per session."""

from __future__ import annotations

import pytest

from c2m.report import ReportInputs, build_report

from ._synthetic import synthetic_inputs


@pytest.fixture(scope="session")
def full_inputs() -> ReportInputs:
    return synthetic_inputs()


@pytest.fixture(scope="session")
def full_html(full_inputs: ReportInputs) -> str:
    return build_report(full_inputs)
