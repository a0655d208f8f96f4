"""The decision report: structure, self-containment, formatting, decoding, atomic writes, reading."""

from __future__ import annotations

import dataclasses
import json
import math
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from c2m.data import default_project
from c2m.domain import FeatureCoder
from c2m.errors import C2MError
from c2m.report import (
    ReportInputs,
    build_report,
    fmt_int,
    fmt_pct,
    fmt_yuan,
    level_counts,
    preferences,
    read_inputs,
    render_figures,
    write_figures,
    write_report,
)
from c2m.report._format import fmt_pct_interval, fmt_yuan_compact

from ._synthetic import synthetic_model

ALL_SECTIONS = [
    "Executive summary",
    "Survey",
    "Preferences",
    "Market",
    "Forecast",
    "Build plan",
    "Battery service",
    "Method notes",
]
ALL_FIGURES = {
    "design_balance",
    "sample_vs_population",
    "importance",
    "partworths",
    "shares",
    "demand_curve",
    "tornado",
    "forecast_total",
    "forecast_cities",
    "preorders",
    "build_plan",
    "swap_map",
    "rent_vs_buy",
}


class _Page(HTMLParser):
    """Collects what the tests look at: section headings, tags, URLs, visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[str] = []
        self.tags: dict[str, int] = {}
        self.urls: list[str] = []
        self.text: list[str] = []
        self._in_h2 = False
        self._depth: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "data", "action") and value is not None:
                self.urls.append(value)
        if tag == "h2":
            self._in_h2 = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h2:
            self.headings[-1] += data


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def titles(page: _Page) -> list[str]:
    """Heading text without its number: '3.Preferences' -> 'Preferences'."""
    return [h.split(".", 1)[1].strip() for h in page.headings]


def test_full_report_has_every_section_in_order_and_every_figure(full_html: str) -> None:
    page = parse(full_html)
    assert titles(page) == ALL_SECTIONS
    assert [h.split(".", 1)[0] for h in page.headings] == [str(i) for i in range(1, 9)]
    assert page.tags.get("svg") == len(ALL_FIGURES)
    assert full_html.count("<svg") == len(ALL_FIGURES)
    for name in ALL_FIGURES:
        assert f'id="fig-{name}"' in full_html


def test_full_report_is_self_contained(full_html: str) -> None:
    page = parse(full_html)
    assert "script" not in page.tags
    assert "<script" not in full_html.lower()
    assert "link" not in page.tags and "img" not in page.tags and "iframe" not in page.tags
    # every URL is an in-page anchor: no external asset, no CDN
    assert page.urls, "the table of contents links sections"
    assert all(url.startswith("#") for url in page.urls), [u for u in page.urls if not u.startswith("#")]
    for attr in ("src=", "href="):
        for quote in ('"', "'"):
            assert f"{attr}{quote}http" not in full_html
    assert "@import" not in full_html and "url(http" not in full_html
    # one inline style block
    assert page.tags.get("style") == 1 + full_html.count('<style type="text/css">')


def test_svg_ids_are_unique_across_figures(full_html: str) -> None:
    import re

    ids = re.findall(r'\sid="([^"]+)"', full_html)
    duplicated = {i for i in ids if ids.count(i) > 1}
    assert not duplicated
    # every url(#...) and href="#..." points at an id on the page
    refs = set(re.findall(r"url\(#([^)]+)\)", full_html)) | set(re.findall(r'href="#([^"]+)"', full_html))
    assert refs <= set(ids)


def test_numbers_are_formatted(full_inputs: ReportInputs, full_html: str) -> None:
    text = " ".join(parse(full_html).text)
    # variant V1: share 0.1234, interval 0.85x/1.15x, price 49,900 yuan, volume 0.1234 * 900,000
    assert "12.3%" in text
    assert "10.5%\u201314.2%" in text
    assert "\u00a549,900" in text
    assert "111,060" in text
    # line totals
    line = full_inputs.product_definition["line"]  # type: ignore[index]
    assert fmt_pct(line["share"]) in text
    assert fmt_int(line["annual_volume"]) in text
    # profit-maximising price of the demand curve, read off the frame
    curve = full_inputs.demand_curve
    assert curve is not None
    best = curve["price"][int(np.argmax(curve["profit"].to_numpy()))]
    assert f"profit peaks at a price of {fmt_yuan(best)}" in text


def test_formatters() -> None:
    assert fmt_pct(0.1234) == "12.3%"
    assert fmt_pct(1) == "100.0%"
    assert fmt_yuan(49900) == "\u00a549,900"
    assert fmt_yuan(-1200.4) == "-\u00a51,200"
    assert fmt_int(1234567.6) == "1,234,568"
    assert fmt_int(None) == fmt_yuan(float("nan")) == "\u2014"
    assert fmt_pct_interval(0.1234, 0.1, 0.15) == "12.3% (10.0\u201315.0%)"
    assert fmt_yuan_compact(2_750_000_000) == "\u00a52.75 bn"
    assert fmt_yuan_compact(151_500_000) == "\u00a5151.5 M"
    assert fmt_yuan_compact(9_000_000) == "\u00a59,000,000"


def test_only_model_shows_only_preferences() -> None:
    model = synthetic_model(default_project())
    for project in (None, default_project()):
        html = build_report(ReportInputs(project=project, model=model))
        page = parse(html)
        assert titles(page) == ["Preferences"]
        assert set(render_figures(ReportInputs(project=project, model=model))) == {"importance", "partworths"}
        assert page.tags.get("svg") == 2


def test_empty_inputs_give_a_page_without_sections() -> None:
    page = parse(build_report(ReportInputs()))
    assert page.headings == []
    assert "svg" not in page.tags


def test_partworth_decoding_with_default_project() -> None:
    project = default_project()
    model = synthetic_model(project, seed=3)
    # the file's feature order need not be the coder's: shuffle it
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(model["features"]))
    shuffled = {
        **model,
        "features": [model["features"][i] for i in perm],
        "coef": [model["coef"][i] for i in perm],
        "se": [model["se"][i] for i in perm],
    }
    coef = dict(zip(model["features"], model["coef"], strict=True))
    se = dict(zip(model["features"], model["se"], strict=True))
    prefs = preferences(shuffled, project)
    groups = prefs.by_attribute()
    assert list(groups) == project.attribute_names
    price = project.attribute("price")
    beta_p = coef["price"]
    for attribute in project.attributes:
        rows = groups[attribute.name]
        assert rows[0].reference and rows[0].partworth == 0.0 and rows[0].se is None
        assert [r.level for r in rows] == attribute.level_names
        if attribute.kind == "numeric":
            base = attribute.levels[0].value
            for r, level in zip(rows, attribute.levels, strict=True):
                step = (level.value - base) / attribute.scale
                assert r.partworth == pytest.approx(coef[attribute.name] * step)
            continue
        for r in rows[1:]:
            name = f"{attribute.name}={r.level}"
            assert r.partworth == pytest.approx(coef[name])
            assert r.low == pytest.approx(coef[name] - 1.959964 * se[name], abs=1e-6)
            assert r.high == pytest.approx(coef[name] + 1.959964 * se[name], abs=1e-6)
            assert r.wtp == pytest.approx(-coef[name] / beta_p * price.scale)
    # importance: range of part-worths; numeric = |coef| x value range / scale
    importance = {i.attribute: i for i in prefs.importance}
    low, high = price.value_range
    assert importance["price"].range == pytest.approx(abs(beta_p) * (high - low) / price.scale)
    colour = [0.0] + [coef[f"colour={lv}"] for lv in project.attribute("colour").level_names[1:]]
    assert importance["colour"].range == pytest.approx(max(colour) - min(colour))
    assert sum(i.share for i in prefs.importance) == pytest.approx(1.0)
    assert prefs.none_coef == pytest.approx(coef["none"])
    # the same decoding as the domain's coder on the coder-ordered vector
    decoded = FeatureCoder.from_project(project).decode_coefficients(np.asarray(model["coef"]))
    for attribute in project.attributes:
        if attribute.kind != "numeric":
            for r in groups[attribute.name]:
                assert r.partworth == pytest.approx(decoded[attribute.name][r.level])


def test_wtp_appears_in_yuan(full_inputs: ReportInputs, full_html: str) -> None:
    prefs = preferences(full_inputs.model, full_inputs.project)  # type: ignore[arg-type]
    some = next(pw for pw in prefs.partworths if pw.wtp is not None and not pw.reference)
    assert fmt_yuan(some.wtp) in full_html


def test_model_features_not_matching_the_project_fail_clearly() -> None:
    model = synthetic_model(default_project())
    model = {**model, "features": ["x=1", *model["features"][1:]]}
    with pytest.raises(C2MError, match="do not match the project"):
        build_report(ReportInputs(project=default_project(), model=model))


def test_text_is_escaped(full_inputs: ReportInputs) -> None:
    assert full_inputs.shares is not None
    evil = "<script>alert('x')</script>"
    shares = full_inputs.shares.with_columns(
        product=pl.when(pl.col("kind") == "ours").then(pl.lit(evil)).otherwise(pl.col("product"))
    )
    run_info = {"note": '<img src="http://example.com/x.png">'}
    small = ReportInputs(
        project=full_inputs.project,
        shares=shares,
        product_definition=full_inputs.product_definition,
        run_info=run_info,
    )
    html = build_report(small)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert 'src="http' not in html
    page = parse(html)
    assert "img" not in page.tags


def test_report_is_deterministic(full_inputs: ReportInputs, full_html: str) -> None:
    assert build_report(full_inputs) == full_html


def test_write_report_is_atomic(full_inputs: ReportInputs, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    small = ReportInputs(shares=full_inputs.shares, product_definition=full_inputs.product_definition)
    written = write_report(small, target)
    assert written == target
    before = target.read_bytes()
    parse(before.decode("utf-8"))
    assert full_inputs.shares is not None
    bad = dataclasses.replace(full_inputs, shares=full_inputs.shares.drop("kind"))
    assert target.read_text(encoding="utf-8") == build_report(small)
    with pytest.raises(C2MError, match="shares"):
        write_report(bad, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    # a target that does not exist yet is not created on failure
    fresh = tmp_path / "new" / "report.html"
    with pytest.raises(C2MError):
        write_report(bad, fresh)
    assert not fresh.exists()
    assert not any(fresh.parent.glob("*")) if fresh.parent.exists() else True


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("model", {"features": ["a", "b"], "coef": [1.0]}, "model.coef"),
        ("model", {"features": ["a"], "coef": ["x"]}, r"model.coef\[0\]"),
        ("forecast", pl.DataFrame({"week": [1]}), "forecast"),
        ("product_definition", {"variants": []}, "product_definition.variants"),
        ("product_definition", {"variants": [{"name": "A", "profile": {}, "price": -1}]}, "price"),
        ("shares", pl.DataFrame({"product": ["a"], "kind": ["mine"], "share": [0.1]}), "shares.kind"),
        ("respondents", [1, 2], "respondents"),
    ],
)
def test_invalid_inputs_name_the_field(field: str, value: object, where: str) -> None:
    with pytest.raises(C2MError, match=where):
        build_report(ReportInputs(**{field: value}))  # type: ignore[arg-type]


def test_write_figures_writes_standalone_svg(full_inputs: ReportInputs, tmp_path: Path) -> None:
    paths = write_figures(full_inputs, tmp_path / "figures")
    assert {p.stem for p in paths} == ALL_FIGURES
    for path in paths:
        root = ET.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert "viewBox" in root.attrib


def test_level_counts_match_brute_force() -> None:
    project = default_project()
    rng = np.random.default_rng(7)
    n = 500
    design = pl.DataFrame(
        {
            "style": rng.choice(project.attribute("style").level_names[:2], n),
            "price": rng.choice([45000.0, 55000.0, 110000.0], n),
        }
    )
    counts = level_counts(design, project=project)
    style = counts.filter(pl.col("attribute") == "style")
    assert style["level"].to_list() == project.attribute("style").level_names
    for row in style.iter_rows(named=True):
        expected = int((design["style"] == row["level"]).sum())
        assert row["count"] == expected
        assert row["share"] == pytest.approx(expected / n)
        assert row["ideal_share"] == pytest.approx(1 / 3)
    price = counts.filter(pl.col("attribute") == "price")
    assert price["level"].to_list()[0] == "\u00a545,000"
    assert price.height == 6  # every level of the project, shown or not
    assert int(price["count"].sum()) == n
    assert price.filter(pl.col("level") == "\u00a565,000")["count"].item() == 0


def _write_subset(folder: Path, inputs: ReportInputs) -> None:
    assert inputs.shares is not None and inputs.forecast is not None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(inputs.model), encoding="utf-8")
    inputs.shares.write_csv(folder / "shares.csv")
    inputs.forecast.write_csv(folder / "forecast.csv")


def test_read_inputs_on_a_subset(full_inputs: ReportInputs, tmp_path: Path) -> None:
    _write_subset(tmp_path, full_inputs)
    inputs = read_inputs(tmp_path, project=default_project())
    present = {f.name for f in dataclasses.fields(inputs) if getattr(inputs, f.name) is not None}
    assert present == {"project", "model", "shares", "forecast"}
    assert inputs.model == full_inputs.model
    assert inputs.shares is not None and inputs.shares.height == full_inputs.shares.height  # type: ignore[union-attr]
    assert inputs.forecast is not None
    assert inputs.forecast["demand"].sum() == pytest.approx(full_inputs.forecast["demand"].sum())  # type: ignore[index]
    page = parse(build_report(inputs))
    assert titles(page) == ["Executive summary", "Preferences", "Market", "Forecast"]
    assert page.tags.get("svg") == 5  # importance, part-worths, shares, forecast total and by city


def test_read_inputs_design_folder_and_project_file(tmp_path: Path) -> None:
    project = default_project()
    rng = np.random.default_rng(1)
    rows = 2 * 4 * 3
    design = pl.DataFrame(
        {
            "version": np.repeat([1, 2], 12),
            "task": np.tile(np.repeat([1, 2, 3, 4], 3), 2),
            "alt": np.tile([1, 2, 3], 8),
            **{
                a.name: (
                    rng.choice([float(lv.value) for lv in a.levels], rows)  # type: ignore[arg-type]
                    if a.kind == "numeric"
                    else rng.choice(a.level_names, rows)
                )
                for a in project.attributes
            },
            "holdout": np.tile([False, False, False, True], 6),
        }
    )
    (tmp_path / "design").mkdir()
    design.write_parquet(tmp_path / "design" / "design.parquet")
    (tmp_path / "design" / "design.json").write_text(
        json.dumps({"method": "random", "none_option": True}), encoding="utf-8"
    )
    (tmp_path / "run.json").write_text(json.dumps({"seed": 5, "design_d_error": 0.25}), encoding="utf-8")
    from c2m.data import default_project_text

    (tmp_path / "project.toml").write_text(default_project_text(), encoding="utf-8")
    inputs = read_inputs(tmp_path)
    assert inputs.project is not None and inputs.project.name == project.name
    diagnostics = inputs.design_diagnostics
    assert diagnostics is not None
    assert diagnostics["method"] == "random"
    assert diagnostics["d_error"] == 0.25
    assert (diagnostics["n_versions"], diagnostics["n_tasks"], diagnostics["n_alts"]) == (2, 4, 3)
    counts = diagnostics["level_counts"]
    kept = design.filter(~pl.col("holdout"))
    assert int(counts.filter(pl.col("attribute") == "style")["count"].sum()) == kept.height
    page = parse(build_report(inputs))
    assert titles(page) == ["Survey", "Method notes"]
    assert "0.2500" in " ".join(page.text)


def test_read_inputs_rejects_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(C2MError, match="not a folder"):
        read_inputs(tmp_path / "nope")


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(C2MError, match=r"model\.json"):
        read_inputs(tmp_path)


def test_shares_whiskers_and_kinds(full_inputs: ReportInputs) -> None:
    svg = render_figures(dataclasses.replace(ReportInputs(), shares=full_inputs.shares))["shares"]
    assert svg.count("<svg") == 1
    for product in full_inputs.shares["product"].to_list():  # type: ignore[index]
        assert product in svg
    assert math.isfinite(float(full_inputs.shares["share"].sum()))  # type: ignore[index]
