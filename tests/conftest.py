"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("C2M_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip with a visible reason; in CI (C2M_REQUIRE_SERVICES=1) fail instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"C2M_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def c2m_command() -> list[str]:
    """The installed `c2m` script beside this Python, or `python -m c2m`."""
    script = Path(sys.executable).with_name("c2m")
    if script.exists():
        return [str(script)]
    found = shutil.which("c2m")
    return [found] if found else [sys.executable, "-m", "c2m"]


def run_c2m(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*c2m_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
