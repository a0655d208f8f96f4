"""Shared test fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
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


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def page() -> Iterator[object]:
    """A Playwright page in Debian's chromium, phone-sized; skips (or fails in CI) without chromium."""
    executable = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    if executable is None:
        skip_or_fail("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        yield context.new_page()
        browser.close()


ARTIFACTS = Path(os.environ.get("C2M_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A directory kept after the run for this test's screenshots (``test-artifacts/`` or $C2M_TEST_ARTIFACTS)."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.nodeid.split("::", 1)[-1])
    path = ARTIFACTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path
