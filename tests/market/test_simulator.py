"""Market simulator: shares, intervals, volumes, economics, demand, elasticities, cannibalisation."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from c2m.data import default_project
from c2m.domain import Competitor, FeatureCoder, fixed_cost, variable_cost
from c2m.errors import C2MError
from c2m.market import ExtrapolationWarning, MarketSimulator

LINE = [
    {"style": "b", "colour": "white", "price": 52000.0},
    {"style": "a", "colour": "red", "price": 44000.0},
]


def _logit_by_hand(project, coef, line):  # type: ignore[no-untyped-def]
    coder = FeatureCoder.from_project(project)
    u = [coder.encode(p) @ coef for p in line]
    u += [coder.encode(c.profile) @ coef + c.asc for c in project.competitors]
    u += [coef[-1]]
    e = np.exp(np.array(u))
    return e / e.sum()


def test_shares_match_logit_by_hand_and_sum_to_one(project, make_coef) -> None:
    coef = make_coef(project, 1)
    sim = MarketSimulator(project, coef)
    out = sim.shares(LINE)
    assert out.columns == ["product", "kind", "share", "share_low", "share_high"]
    assert out["product"].to_list() == ["V1", "V2", "Rival1", "Rival2", "none"]
    assert out["kind"].to_list() == ["ours", "ours", "competitor", "competitor", "none"]
    assert out["share"].sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(out["share"].to_numpy(), _logit_by_hand(project, coef, LINE), rtol=1e-12)
    # no vcov: the interval is the point
    assert np.array_equal(out["share_low"].to_numpy(), out["share"].to_numpy())


def test_individual_shares_are_weighted_means(project, make_coef) -> None:
    coefs = np.vstack([make_coef(project, s) for s in range(3)])
    w = np.array([1.0, 2.0, 5.0])
    sim = MarketSimulator(project, coefs.mean(axis=0), individual=coefs, weights=w)
    expected = sum(wi * _logit_by_hand(project, c, LINE) for wi, c in zip(w, coefs, strict=True)) / w.sum()
    np.testing.assert_allclose(sim.shares(LINE)["share"].to_numpy(), expected, rtol=1e-12)
    assert sim.utilities(LINE).shape == (3, 2)


def test_first_choice_counts_people(project, make_coef) -> None:
    coefs = np.vstack([make_coef(project, s) for s in range(40)])
    sim = MarketSimulator(project, coefs.mean(axis=0), individual=coefs, rule="first_choice")
    shares = sim.shares(LINE)["share"].to_numpy()
    assert shares.sum() == pytest.approx(1.0)
    for j in range(len(shares)):
        count = sum(np.argmax(_logit_by_hand(project, c, LINE)) == j for c in coefs)
        assert shares[j] == pytest.approx(count / 40)


def test_intervals_contain_point_and_shrink_with_vcov(project, make_coef) -> None:
    coef = make_coef(project, 2)
    F = coef.size
    rng = np.random.default_rng(0)
    A = rng.normal(size=(F, F))
    vcov = A @ A.T / F * 0.2
    wide = MarketSimulator(project, coef, vcov=vcov, n_draws=400, seed=3).shares(LINE)
    narrow = MarketSimulator(project, coef, vcov=vcov * 0.01, n_draws=400, seed=3).shares(LINE)
    for out in (wide, narrow):
        assert (out["share_low"] <= out["share"]).all() and (out["share"] <= out["share_high"]).all()
    width_wide = (wide["share_high"] - wide["share_low"]).to_numpy()
    width_narrow = (narrow["share_high"] - narrow["share_low"]).to_numpy()
    assert np.all(width_narrow < width_wide)
    # same seed, same intervals
    again = MarketSimulator(project, coef, vcov=vcov, n_draws=400, seed=3).shares(LINE)
    assert again.equals(wide)


def test_volumes_are_share_times_city_market(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 3), vcov=np.eye(5) * 0.01)
    shares = sim.shares(LINE)
    vol = sim.volumes(LINE, names=["Lite", "Max"])
    assert vol.columns == ["variant", "city", "annual_volume", "annual_volume_low", "annual_volume_high"]
    assert vol.height == 4
    north = vol.filter((pl.col("variant") == "Max") & (pl.col("city") == "North"))
    assert north["annual_volume"][0] == pytest.approx(shares["share"][1] * 60000)
    assert north["annual_volume_high"][0] == pytest.approx(shares["share_high"][1] * 60000)


def test_line_economics_by_hand(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 4))
    econ = sim.line_economics(LINE, years=5)
    shares = sim.shares(LINE)["share"].to_numpy()
    contribution = 0.0
    for j, profile in enumerate(LINE):
        v = econ["variants"][j]
        assert v["unit_cost"] == variable_cost(project, profile)
        assert v["unit_margin"] == pytest.approx(profile["price"] - v["unit_cost"])
        assert v["annual_volume"] == pytest.approx(shares[j] * 100000)
        contribution += shares[j] * 100000 * v["unit_margin"]
    assert econ["line"]["fixed_cost"] == fixed_cost(project, LINE)
    assert econ["line"]["profit"] == pytest.approx(contribution - fixed_cost(project, LINE) / 5)


def test_rent_counted_only_when_asked() -> None:
    project = default_project()
    coder = FeatureCoder.from_project(project)
    coef = np.zeros(coder.n_features)
    coef[coder.feature_names.index("price")] = -1.0
    sim = MarketSimulator(project, coef)
    rented = {"style": "classic", "colour": "white", "smart_pack": "basic", "battery": "ncm52",
              "energy_mode": "swap", "sunroof": "no", "ownership": "rent_capped", "price": 49900.0}
    plain = sim.line_economics([rented])
    with_rent = sim.line_economics([rented], include_rent=True)
    v, w = plain["variants"][0], with_rent["variants"][0]
    assert v["rent_per_car"] == 399 * 96 and v["rent_plan"] == "capped"
    assert w["unit_margin"] - v["unit_margin"] == pytest.approx(399 * 96)
    gained = with_rent["line"]["profit"] - plain["line"]["profit"]
    assert gained == pytest.approx(v["annual_volume"] * 399 * 96)
    assert plain["line"]["rent_revenue"] == pytest.approx(v["annual_volume"] * 399 * 96)


def test_demand_curve_decreases_with_price(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 5))
    prices = np.linspace(40000, 60000, 21)
    curve = sim.demand_curve(LINE[0], prices, others=LINE[1:])
    assert curve.columns == ["price", "share", "volume", "revenue", "profit"]
    assert np.all(np.diff(curve["share"].to_numpy()) < 0)
    np.testing.assert_allclose(curve["revenue"], curve["volume"] * curve["price"])
    at = sim.shares([{**LINE[0], "price": 50000.0}, LINE[1]])["share"][0]
    assert curve.filter(pl.col("price") == 50000.0)["share"][0] == pytest.approx(at)


@pytest.mark.parametrize("individual", [False, True])
def test_point_elasticities_match_finite_differences(project, make_coef, individual) -> None:
    coef = make_coef(project, 6)
    ind = np.vstack([make_coef(project, s) for s in range(5)]) if individual else None
    sim = MarketSimulator(project, coef, individual=ind)
    el = sim.price_elasticity(LINE)
    products = [*LINE, *[c.profile for c in project.competitors]]
    base = sim.shares(LINE)["share"].to_numpy()
    h = 1e-3
    for j, col in enumerate(["V1", "V2", "Rival1", "Rival2"]):
        if j < 2:
            up = sim.shares([{**p, "price": p["price"] + h} if i == j else p for i, p in enumerate(LINE)])
            dn = sim.shares([{**p, "price": p["price"] - h} if i == j else p for i, p in enumerate(LINE)])
            deriv = (up["share"].to_numpy() - dn["share"].to_numpy()) / (2 * h)
        else:
            deriv = _competitor_derivative(project, sim, j - 2, h, individual, coef, ind)
        fd = deriv * float(products[j]["price"]) / base
        np.testing.assert_allclose(el[col].to_numpy(), fd, rtol=1e-5, atol=1e-9)
    assert np.all(np.diag(el.select(["V1", "V2"]).to_numpy()[:2]) < 0)
    arc = sim.price_elasticity(LINE, kind="arc", step=1e-4)
    np.testing.assert_allclose(arc.select(["V1", "V2"]).to_numpy(), el.select(["V1", "V2"]).to_numpy(),
                               rtol=1e-3)


def _competitor_derivative(project, sim, c, h, individual, coef, ind):  # type: ignore[no-untyped-def]
    out = []
    for sign in (1, -1):
        comps = [dict(x.model_dump()) for x in project.competitors]
        comps[c]["profile"] = {**comps[c]["profile"], "price": comps[c]["profile"]["price"] + sign * h}
        new = [Competitor(**x) for x in comps]
        changed = project.model_copy(update={"competitors": new})
        other = MarketSimulator(changed, coef, individual=ind)
        out.append(other.shares(LINE)["share"].to_numpy())
    return (out[0] - out[1]) / (2 * h)


def test_cannibalisation_never_increases_others(project, make_coef) -> None:
    for seed in range(5):
        sim = MarketSimulator(project, make_coef(project, seed))
        line = [*LINE, {"style": "a", "colour": "white", "price": 58000.0}]
        table = sim.cannibalisation(line)
        assert (table["taken"] >= -1e-15).all()
        sums = table.group_by("variant").agg(pl.col("fraction").sum())
        np.testing.assert_allclose(sums["fraction"].to_numpy(), 1.0, rtol=1e-9)
        # adding V3 to a two-variant line: what others lose is V3's share
        before = sim.shares(line[:2])["share"].to_numpy()
        after = sim.shares(line)["share"].to_numpy()
        others_after = np.delete(after, 2)
        assert np.all(others_after <= before + 1e-15)
        assert (before - others_after).sum() == pytest.approx(after[2])


def test_sensitivity_table(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 7))
    base = {"style": "a", "colour": "white", "price": 50000.0}
    table = sim.sensitivity(base)
    assert table.height == 3 + 2 + 3
    base_share = sim.shares([base])["share"][0]
    is_base = table.filter(pl.col("is_base"))
    np.testing.assert_allclose(is_base["share"].to_numpy(), base_share)
    assert table.filter(pl.col("attribute") == "price")["share"].to_list() == sorted(
        table.filter(pl.col("attribute") == "price")["share"].to_list(), reverse=True)
    # c + red is prohibited for a base that is red
    red = sim.sensitivity({**base, "colour": "red"})
    row = red.filter((pl.col("attribute") == "style") & (pl.col("level") == "c"))
    assert row["prohibited"][0] and row["share"][0] is None


def test_extrapolated_price_warns(project, make_coef) -> None:
    sim = MarketSimulator(project, make_coef(project, 8))
    with pytest.warns(ExtrapolationWarning, match="outside the measured range"):
        sim.shares([{"style": "a", "colour": "white", "price": 70000.0}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim.shares([{"style": "a", "colour": "white", "price": 59000.0}])


def test_user_errors(project, make_coef) -> None:
    coef = make_coef(project, 9)
    with pytest.raises(C2MError, match="coef has 3 values"):
        MarketSimulator(project, coef[:3])
    with pytest.raises(C2MError, match="vcov"):
        MarketSimulator(project, coef, vcov=np.eye(2))
    with pytest.raises(C2MError, match="rule"):
        MarketSimulator(project, coef, rule="probit")  # type: ignore[arg-type]
    sim = MarketSimulator(project, coef)
    with pytest.raises(C2MError, match=r"line\[0\].style: unknown level"):
        sim.shares([{"style": "zz", "colour": "white", "price": 50000}])
    with pytest.raises(C2MError, match="empty"):
        sim.shares([])
