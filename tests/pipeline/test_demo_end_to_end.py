"""`c2m demo` in a subprocess: every file, valid contents, a line that obeys the rules."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import run_c2m

from c2m.domain import check_profile, is_prohibited, load_project
from c2m.pipeline import ProductDefinition

EXPECTED_FILES = [
    "report.html", "product_definition.json", "build_plan.csv", "swap_plan.csv", "model.json",
    "project.toml", "shares.csv", "volumes.csv", "forecast.csv", "preorders.csv", "responses.parquet",
    "respondents.parquet", "run.json", "market/persons.parquet", "market/manifest.json",
    "design/design.parquet",
]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = run_c2m("demo", "--out", str(out), "--persons", "20000", "--respondents", "600")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "recommended line" in result.stdout
    return out


def test_demo_writes_every_file(demo_dir: Path) -> None:
    missing = [name for name in EXPECTED_FILES if not (demo_dir / name).exists()]
    assert not missing
    assert not list(demo_dir.rglob("*.tmp")), "no temporary files left behind"


def test_product_definition_is_valid_and_obeys_the_project(demo_dir: Path) -> None:
    project = load_project(demo_dir / "project.toml")
    definition = ProductDefinition.model_validate_json((demo_dir / "product_definition.json").read_text())
    assert 1 <= len(definition.variants) <= 3
    profiles = [check_profile(project, v.profile, where=v.name) for v in definition.variants]
    assert not any(is_prohibited(project, p) for p in profiles)
    assert len({tuple(sorted(p.items())) for p in profiles}) == len(profiles), "variants are distinct"
    for variant in definition.variants:
        assert variant.share_low <= variant.share <= variant.share_high
        assert variant.annual_volume_low <= variant.annual_volume <= variant.annual_volume_high
        assert variant.price == pytest.approx(float(variant.profile["price"]))
    total = definition.line.share + sum(c.share for c in definition.competitors) + (definition.none_share or 0)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert definition.gap is not None and definition.gap <= 0.01


def test_stage_files_agree_with_each_other(demo_dir: Path) -> None:
    definition = json.loads((demo_dir / "product_definition.json").read_text())
    volumes = pl.read_csv(demo_dir / "volumes.csv")
    by_variant = volumes.group_by("variant").agg(pl.col("annual_volume").sum())
    for variant in definition["variants"]:
        total = by_variant.filter(pl.col("variant") == variant["name"])["annual_volume"].item()
        assert total == pytest.approx(variant["annual_volume"], rel=1e-6)
    plan = pl.read_csv(demo_dir / "build_plan.csv")
    assert (plan["build"] >= 0).all()
    weekly = plan.group_by("week").agg(pl.col("build").sum(), pl.col("capacity").first())
    assert (weekly["build"] <= weekly["capacity"] + 1e-9).all()
    swap = pl.read_csv(demo_dir / "swap_plan.csv")
    project = load_project(demo_dir / "project.toml")
    assert set(swap["store_id"]) <= {s.id for s in project.stores}
    assert swap["station"].sum() >= 1
    model = json.loads((demo_dir / "model.json").read_text())
    assert model["model"] == "MultinomialLogit" and model["converged"]


def test_report_is_self_contained_html_with_plots(demo_dir: Path) -> None:
    html = (demo_dir / "report.html").read_text(encoding="utf-8")
    HTMLParser().feed(html)
    assert html.count("<svg") >= 6
    assert "src=\"http" not in html and "href=\"http" not in html and "<script src" not in html


def test_report_opens_in_a_browser_and_shows_every_plot(demo_dir: Path, page) -> None:  # type: ignore[no-untyped-def]
    """The report renders offline in chromium: each figure is a visible SVG with drawn marks, nothing fetched."""
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto((demo_dir / "report.html").resolve().as_uri())
    assert page.locator("h1").first.is_visible()
    figures = page.locator("figure")
    assert figures.count() >= 10
    for index in range(figures.count()):
        svg = figures.nth(index).locator("svg").first
        svg.scroll_into_view_if_needed()
        box = svg.bounding_box()
        name = figures.nth(index).get_attribute("id")
        assert box is not None and box["width"] > 200 and box["height"] > 100, name
        marks = svg.locator("path, rect, circle, polygon, line, use").count()
        assert marks > 5, f"{name} draws nothing"
    assert not errors
    assert all(url.startswith("file:") or url.startswith("data:") for url in requests), requests
