"""Share rules: logit, first choice, randomized first choice, purchase likelihood, scale tuning."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tests.small_project import SMALL

from c2m.domain import FeatureCoder, project_from_dict
from c2m.errors import C2MError
from c2m.market import MarketSimulator, _simulator
from c2m.optimize import line_objective, optimize_line

LINE = [
    {"style": "b", "colour": "white", "price": 52000.0},
    {"style": "a", "colour": "red", "price": 44000.0},
]


def _coefs(project, make_coef, n, none=-1.5):  # type: ignore[no-untyped-def]
    coefs = np.vstack([make_coef(project, s) for s in range(n)])
    coefs[:, -1] = none + np.linspace(-0.5, 0.5, n)  # None near the products: no share is degenerate
    return coefs


def _no_ties(sim: MarketSimulator, line) -> None:  # type: ignore[no-untyped-def]
    u = np.hstack([np.atleast_2d(sim.utilities(line)), sim.other_utilities()])
    top2 = -np.sort(-u, axis=1)[:, :2]
    assert np.all(top2[:, 0] - top2[:, 1] > 1e-3)


def test_first_choice_is_the_limit_of_logit_at_a_large_scale(project, make_coef) -> None:
    coefs = _coefs(project, make_coef, 25)
    fc = MarketSimulator(project, coefs[0], individual=coefs, rule="first_choice")
    _no_ties(fc, LINE)
    logit = MarketSimulator(project, coefs[0], individual=coefs, scale=1e3)
    np.testing.assert_allclose(logit.shares(LINE)["share"].to_numpy(), fc.shares(LINE)["share"].to_numpy(),
                               atol=1e-9)
    # and at scale 1 they differ (the test can fail)
    plain = MarketSimulator(project, coefs[0], individual=coefs).shares(LINE)["share"].to_numpy()
    assert np.abs(plain - fc.shares(LINE)["share"].to_numpy()).max() > 0.05
    # first choice does not depend on the scale
    fc2 = MarketSimulator(project, coefs[0], individual=coefs, rule="first-choice", scale=0.01)
    assert fc2.shares(LINE).equals(fc.shares(LINE))


@pytest.mark.parametrize("rule", ["logit", "first_choice", "rfc"])
@pytest.mark.parametrize("individual", [False, True])
def test_shares_sum_to_one_with_none(project, make_coef, rule, individual) -> None:
    coefs = _coefs(project, make_coef, 12)
    sim = MarketSimulator(project, coefs[0], individual=coefs if individual else None, rule=rule,
                          product_variability=0.5, attribute_variability=0.5, scale=1.3, n_rfc_draws=50)
    out = sim.shares(LINE)
    assert out["product"].to_list()[-1] == "none"
    assert out["share"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (out["share"] >= 0).all()
    # volumes follow the shares
    assert sim.volumes(LINE)["annual_volume"].sum() == pytest.approx(out["share"][:2].sum() * sim.market_size)


@pytest.mark.parametrize("individual", [False, True])
def test_rfc_without_variability_is_first_choice(project, make_coef, individual) -> None:
    coefs = _coefs(project, make_coef, 30)
    kw = {"individual": coefs if individual else None}
    fc = MarketSimulator(project, coefs[3], rule="first_choice", **kw).shares(LINE)
    rfc = MarketSimulator(project, coefs[3], rule="rfc", product_variability=0.0, attribute_variability=0.0,
                          scale=2.0, **kw).shares(LINE)
    assert rfc.equals(fc)


@pytest.mark.parametrize("scale", [1.0, 1.7])
def test_rfc_with_gumbel_product_error_converges_to_logit(project, make_coef, scale) -> None:
    coef = _coefs(project, make_coef, 1)[0]
    n = 40_000
    rfc = MarketSimulator(project, coef, rule="rfc", product_variability=1.0, attribute_variability=0.0,
                          scale=scale, n_rfc_draws=n, seed=4).shares(LINE)["share"].to_numpy()
    logit = MarketSimulator(project, coef, scale=scale).shares(LINE)["share"].to_numpy()
    se = np.sqrt(logit * (1 - logit) / n)
    assert np.all(np.abs(rfc - logit) < 5 * se + 1e-12)
    assert rfc.sum() == pytest.approx(1.0)


def test_rfc_attribute_variability_corrects_iia(project, make_coef) -> None:
    """A near copy of a product (same levels, 1,000 dearer) mostly splits its twin's share under RFC
    with attribute error, while the logit gives the pair nearly twice the share (IIA)."""
    coef = _coefs(project, make_coef, 1)[0]
    a = {"style": "b", "colour": "white", "price": 50000.0}
    twin = {**a, "price": 51000.0}
    kw = {"rule": "rfc", "product_variability": 0.0, "attribute_variability": 1.0, "n_rfc_draws": 20_000}
    alone = MarketSimulator(project, coef, **kw).shares([a])["share"][0]
    pair = MarketSimulator(project, coef, **kw).shares([a, twin])["share"][:2].sum()
    assert pair <= alone + 0.01
    logit_alone = MarketSimulator(project, coef).shares([a])["share"][0]
    logit_pair = MarketSimulator(project, coef).shares([a, twin])["share"][:2].sum()
    assert logit_pair > logit_alone * 1.5


def test_rfc_is_seeded_and_independent_of_chunking(project, make_coef, monkeypatch) -> None:
    coefs = _coefs(project, make_coef, 40)
    kw = {"individual": coefs, "rule": "rfc", "product_variability": 0.7, "attribute_variability": 0.4,
          "n_rfc_draws": 60}
    first = MarketSimulator(project, coefs[0], seed=3, **kw).shares(LINE)
    assert MarketSimulator(project, coefs[0], seed=3, **kw).shares(LINE).equals(first)
    assert not MarketSimulator(project, coefs[0], seed=4, **kw).shares(LINE).equals(first)
    monkeypatch.setattr(_simulator, "RFC_CELLS", 500)  # a few persons per chunk
    again = MarketSimulator(project, coefs[0], seed=3, **kw).shares(LINE)
    np.testing.assert_array_equal(again["share"].to_numpy(), first["share"].to_numpy())


def test_purchase_likelihood(project, make_coef) -> None:
    coefs = _coefs(project, make_coef, 5)
    w = np.array([1.0, 2.0, 3.0, 1.0, 1.0])
    sim = MarketSimulator(project, coefs[0], individual=coefs, weights=w, rule="likelihood", scale=0.8)
    out = sim.shares(LINE)
    assert out.columns == ["product", "kind", "likelihood", "likelihood_low", "likelihood_high"]
    assert out["product"].to_list() == ["V1", "V2", "Rival1", "Rival2"]
    coder = FeatureCoder.from_project(project)
    X = np.vstack([coder.encode_many(LINE), coder.encode_many([c.profile for c in project.competitors])])
    asc = np.array([0.0, 0.0] + [c.asc for c in project.competitors])
    u = 0.8 * (coefs @ X.T + asc)
    u_none = 0.8 * (coefs @ coder.none_row())
    expected = (w / w.sum()) @ (np.exp(u) / (np.exp(u) + np.exp(u_none)[:, None]))
    np.testing.assert_allclose(out["likelihood"].to_numpy(), expected, rtol=1e-12)
    assert out["likelihood"].sum() != pytest.approx(1.0)
    for call in (lambda: sim.volumes(LINE), lambda: sim.line_economics(LINE),
                 lambda: sim.cannibalisation(LINE), lambda: optimize_line(project, sim, n_variants=1)):
        with pytest.raises(C2MError, match="likelihood"):
            call()
    no_none = project_from_dict({**SMALL, "none_option": {"enabled": False}})
    with pytest.raises(C2MError, match="None option"):
        MarketSimulator(no_none, np.zeros(FeatureCoder.from_project(no_none).n_features), rule="likelihood")


@pytest.mark.parametrize("individual", [False, True])
def test_tune_scale_recovers_a_known_scale(project, make_coef, individual) -> None:
    coefs = _coefs(project, make_coef, 20)
    kw = {"individual": coefs if individual else None}
    truth = MarketSimulator(project, coefs[0], scale=2.3, **kw)
    shares = truth.shares(LINE)
    observed = dict(zip(shares["product"], shares["share"], strict=True))
    sim = MarketSimulator(project, coefs[0], **kw)
    assert sim.tune_scale(observed, line=LINE) == pytest.approx(2.3, rel=1e-4)
    assert sim.scale == pytest.approx(2.3, rel=1e-4)
    # the current market only (competitors and None), squared error
    others = {k: v for k, v in observed.items() if k not in ("V1", "V2")}
    assert MarketSimulator(project, coefs[0], **kw).tune_scale(others, line=LINE, loss="squared") == pytest.approx(
        2.3, rel=1e-3)


def test_tune_scale_rfc_and_errors(project, make_coef) -> None:
    coef = _coefs(project, make_coef, 1)[0]
    kw = {"rule": "rfc", "product_variability": 1.0, "attribute_variability": 0.0, "n_rfc_draws": 20_000}
    shares = MarketSimulator(project, coef, scale=0.6, **kw).shares(LINE)
    observed = dict(zip(shares["product"], shares["share"], strict=True))
    assert MarketSimulator(project, coef, **kw).tune_scale(observed, line=LINE) == pytest.approx(0.6, rel=0.02)
    sim = MarketSimulator(project, coef)
    with pytest.raises(C2MError, match="names no product"):
        sim.tune_scale({"Rival1": 0.2, "nobody": 0.3})
    with pytest.raises(C2MError, match=r"observed_shares\['none'\]"):
        sim.tune_scale({"Rival1": 0.2, "none": 1.5})
    with pytest.raises(C2MError, match="first_choice"):
        MarketSimulator(project, coef, rule="first_choice").tune_scale({"Rival1": 0.2, "none": 0.5})
    with pytest.raises(C2MError, match="scale"):
        MarketSimulator(project, coef, scale=0.0)
    with pytest.raises(C2MError, match="unknown rule"):
        MarketSimulator(project, coef, rule="borda")  # type: ignore[arg-type]
    with pytest.raises(C2MError, match="product_variability"):
        MarketSimulator(project, coef, rule="rfc", product_variability=-1.0)


@pytest.mark.parametrize("rule", ["logit", "first_choice", "rfc"])
def test_optimiser_runs_with_each_rule_and_its_bound_holds(project, make_coef, rule) -> None:
    coefs = _coefs(project, make_coef, 15, none=-2.5)
    grid = [40000.0, 50000.0, 60000.0]
    sim = MarketSimulator(project, coefs.mean(axis=0), individual=coefs, rule=rule, scale=1.4,
                          product_variability=0.5, attribute_variability=0.5, n_rfc_draws=30)
    sol = optimize_line(project, sim, n_variants=2, objective="profit", price_grid=grid)
    assert sol.method == "greedy"
    assert sol.objective_value == pytest.approx(line_objective(sim, sol.variants, "profit"))
    # brute force over every line of two distinct configurations
    configs = [(s, c) for s in ("a", "b", "c") for c in ("white", "red") if (s, c) != ("c", "red")]
    products = [{"style": s, "colour": c, "price": p} for s, c in configs for p in grid]
    best = max(
        line_objective(sim, [x, y], "profit")
        for x, y in itertools.combinations(products, 2)
        if (x["style"], x["colour"]) != (y["style"], y["colour"])
    )
    assert sol.objective_value <= best + 1e-6 * abs(best)
    assert best <= sol.bound + 1e-6 * abs(best)
    assert sol.objective_value >= 0.95 * best


@pytest.mark.parametrize("rule", ["logit", "first_choice", "likelihood", "rfc"])
def test_point_shares_in_person_blocks_equal_one_block(project, make_coef, monkeypatch, rule) -> None:
    coefs = _coefs(project, make_coef, 101)
    sim = MarketSimulator(project, coefs.mean(axis=0), individual=coefs, rule=rule, scale=0.7)
    whole = sim.shares(LINE)
    monkeypatch.setattr(_simulator, "SHARE_BLOCK_CELLS", 17)  # blocks of 3 persons, one short
    blocked = sim.shares(LINE)
    col = "likelihood" if rule == "likelihood" else "share"
    np.testing.assert_allclose(blocked[col].to_numpy(), whole[col].to_numpy(), rtol=0, atol=1e-15)
