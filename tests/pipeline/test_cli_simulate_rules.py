"""`c2m simulate --rule ... --scale ...` on a model fitted to simulated choices of the default project."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.conftest import run_c2m

from c2m.choice import MultinomialLogit, save_model
from c2m.data import default_project
from c2m.domain import FeatureCoder, enumerate_profiles
from c2m.market import MarketSimulator


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.json (an MNL fitted on simulated answers) and line.json with two variants."""
    folder = tmp_path_factory.mktemp("rules")
    project = default_project()
    coder = FeatureCoder.from_project(project)
    profiles = enumerate_profiles(project)
    rng = np.random.default_rng(0)
    truth = rng.normal(0.0, 0.5, coder.n_features)
    rows = []
    for person in range(150):
        for task in range(6):
            picks = [profiles[i] for i in rng.choice(len(profiles), 3, replace=False)]
            X = np.vstack([coder.encode_many(picks), coder.none_row()[None, :]])
            chosen = int(np.argmax(X @ truth + rng.gumbel(size=4)))
            for alt in range(4):
                rows.append({"id": person, "task": person * 10 + task, "alt": alt, "chosen": int(alt == chosen),
                             **dict(zip(coder.feature_names, X[alt].tolist(), strict=True))})
    model = MultinomialLogit().fit(pl.DataFrame(rows), features=coder.feature_names, id_col="id",
                                   task_col="task", alt_col="alt", chosen_col="chosen")
    save_model(model, folder / "model.json")
    line = {"variants": [{"name": "A", "profile": profiles[0]}, {"name": "B", "profile": profiles[-1]}]}
    (folder / "line.json").write_text(json.dumps(line), encoding="utf-8")
    return folder


@pytest.mark.parametrize("rule", ["logit", "first-choice", "rfc"])
def test_simulate_rules_write_shares_summing_to_one(files: Path, tmp_path: Path, rule: str) -> None:
    result = run_c2m("simulate", "--model", str(files / "model.json"), "--line", str(files / "line.json"),
                     "--rule", rule, "--scale", "1.5", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"rule: {rule}" in result.stdout
    shares = pl.read_csv(tmp_path / "shares.csv")
    assert shares["share"].sum() == pytest.approx(1.0, abs=1e-9)
    assert shares["product"].to_list()[:2] == ["A", "B"] and shares["product"][-1] == "none"
    assert (tmp_path / "volumes.csv").exists()
    if rule == "logit":  # the CLI applies the scale: same shares as the simulator at scale 1.5
        payload = json.loads((files / "model.json").read_text(encoding="utf-8"))
        project = default_project()
        order = [payload["features"].index(n) for n in FeatureCoder.from_project(project).feature_names]
        sim = MarketSimulator(project, np.asarray(payload["coef"])[order], scale=1.5)
        line = json.loads((files / "line.json").read_text(encoding="utf-8"))
        expected = sim.shares([v["profile"] for v in line["variants"]])["share"].to_numpy()
        np.testing.assert_allclose(shares["share"].to_numpy(), expected, rtol=1e-9)


def test_simulate_likelihood_and_bad_rule(files: Path, tmp_path: Path) -> None:
    result = run_c2m("simulate", "--model", str(files / "model.json"), "--line", str(files / "line.json"),
                     "--rule", "likelihood", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rule: likelihood" in result.stdout
    out = pl.read_csv(tmp_path / "purchase_likelihood.csv")
    assert "none" not in out["product"].to_list()
    assert ((out["likelihood"] > 0) & (out["likelihood"] < 1)).all()
    assert not (tmp_path / "volumes.csv").exists()
    bad = run_c2m("simulate", "--model", str(files / "model.json"), "--line", str(files / "line.json"),
                  "--rule", "borda", "--out", str(tmp_path))
    assert bad.returncode == 2 and "--rule" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_c2m("simulate", "--model", str(files / "model.json"), "--line", str(files / "line.json"),
                  "--scale", "-1", "--out", str(tmp_path))
    assert bad.returncode == 2 and "scale" in bad.stderr and "Traceback" not in bad.stderr
