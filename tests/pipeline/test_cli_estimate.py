"""`c2m estimate DATA ...`: any long choice table, MNL / mixed / WTP space / latent class / HB, JSON out."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tests.conftest import run_c2m

from c2m.choice import ChoiceData, MultinomialLogit
from c2m.choice._mnl_math import task_scores
from c2m.errors import C2MError
from c2m.pipeline._estimate_cli import EstimateRequest, run_estimate, split_extra_args

ELEC_FILE = Path(__file__).resolve().parents[1] / "choice" / "data" / "electricity.csv.gz"
ELEC = ["pf", "cl", "loc", "wk", "tod", "seas"]
ELEC_ARGS = ["--id", "id", "--task", "chid", "--alt", "alt", "--chosen", "choice", "--vars", ",".join(ELEC)]
KEYS = {"model", "loglik", "n_obs", "n_persons", "n_params", "seconds", "converged", "params"}


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def _wtp_table(n_persons: int = 300, n_tasks: int = 8, seed: int = 4) -> pl.DataFrame:
    """U = lambda (w1 x1 + w2 x2 - price) + Gumbel; log lambda ~ N(0, 0.4^2), w1 ~ N(1, 0.5^2), w2 = -0.5."""
    rng = np.random.default_rng(seed)
    J, n = 3, n_persons * n_tasks
    lam = np.exp(0.4 * rng.normal(size=n_persons))
    w1 = 1.0 + 0.5 * rng.normal(size=n_persons)
    price = rng.uniform(0.5, 3.0, size=(n, J))
    x1 = rng.integers(0, 2, size=(n, J)).astype(float)
    x2 = rng.uniform(0.0, 2.0, size=(n, J))
    person = np.repeat(np.arange(n_persons), n_tasks)
    V = lam[person, None] * (w1[person, None] * x1 - 0.5 * x2 - price)
    chosen = (V + rng.gumbel(size=V.shape)).argmax(axis=1)
    return pl.DataFrame(
        {
            "pid": np.repeat(person, J) + 100,
            "q": np.repeat(np.tile(np.arange(n_tasks), n_persons), J),
            "option": np.tile(["a", "b", "c"], n),
            "picked": np.where(np.arange(J)[None, :] == chosen[:, None], "TRUE", "FALSE").reshape(-1),
            "price": price.reshape(-1),
            "x1": x1.reshape(-1),
            "x2": x2.reshape(-1),
        }
    )


def test_mnl_on_electricity_matches_published() -> None:
    result = run_c2m("estimate", str(ELEC_FILE), *ELEC_ARGS, "--json")  # --json alone: standard output
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= KEYS
    assert out["model"] == "MultinomialLogit"
    assert out["loglik"] == pytest.approx(-4958.649, abs=1e-3)
    assert (out["n_obs"], out["n_persons"], out["n_params"]) == (4308, 361, 6)
    assert out["converged"] is True and out["seconds"] >= 0
    assert list(out["params"]) == ELEC
    ref = MultinomialLogit().fit(pl.read_csv(ELEC_FILE), ELEC, id_col="id", task_col="chid", chosen_col="choice")
    np.testing.assert_allclose([out["params"][f]["estimate"] for f in ELEC], ref.coef_, rtol=1e-6)
    np.testing.assert_allclose([out["params"][f]["se"] for f in ELEC], ref.se_, rtol=1e-6)


def test_wtp_space_mixed_logit_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "wtp.parquet"
    _wtp_table().write_parquet(data)
    target = tmp_path / "out.json"
    result = run_c2m(
        "estimate", str(data), "--id", "pid", "--task", "q", "--alt", "option", "--chosen", "picked",
        "--vars", "price,x1,x2", "--random", "x1:normal", "--wtp-space", "price", "--draws", "100",
        "--se", "robust", "--seed", "1", "--json", str(target), "--out", str(tmp_path / "model.json"),
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(target.read_text(encoding="utf-8"))
    assert set(out) >= KEYS
    assert out["model"] == "MixedLogit" and out["converged"] is True
    assert (out["n_obs"], out["n_persons"], out["n_params"]) == (2400, 300, 5)
    assert out["wtp_space"] == "price" and out["random"] == {"x1": "normal", "price": "lognormal"}
    p = out["params"]
    assert list(p) == ["price", "x1", "x2", "sd.price", "sd.x1"]
    truth = {"price": 0.0, "x1": 1.0, "x2": -0.5, "sd.price": 0.4, "sd.x1": 0.5}
    for name, value in truth.items():
        est = abs(p[name]["estimate"]) if name.startswith("sd.") else p[name]["estimate"]
        assert abs(est - value) <= 3.0 * p[name]["se"], (name, est, value, p[name]["se"])
    assert json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))["settings"]["wtp_space"] == "price"


def _request(path: Path, **kw: object) -> EstimateRequest:
    base: dict[str, object] = {"id_col": "pid", "task_col": "q", "alt_col": "option", "chosen_col": "picked",
                               "vars": "price,x1,x2"}
    base.update(kw)
    return EstimateRequest(data=path, **base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("est") / "small.csv.gz"
    frame = _wtp_table(n_persons=120, n_tasks=6)
    path.write_bytes(gzip.compress(frame.write_csv().encode()))
    return path


def test_standard_error_options_for_mnl(small_csv: Path) -> None:
    df = pl.read_csv(small_csv)
    data = ChoiceData.from_long(df, ["price", "x1", "x2"], id_col="pid", task_col="q", alt_col="option",
                                chosen_col="picked")
    ref = MultinomialLogit().fit(data)
    S = task_scores(ref.coef_, data.X, data.avail, data.chosen, data.weights)
    expected = {
        "hessian": np.sqrt(np.diag(np.linalg.inv(-_hessian(ref, data)))),
        "bhhh": np.sqrt(np.diag(np.linalg.inv(S.T @ S))),
        "robust": np.sqrt(np.diag(ref.vcov_robust_)),
        "clustered": np.sqrt(np.diag(MultinomialLogit(cluster="person").fit(data).vcov_cluster_)),
    }
    for se, want in expected.items():
        _, out = run_estimate(_request(small_csv, se=se))
        got = [out["params"][f]["se"] for f in ("price", "x1", "x2")]
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=se)
        assert out["se_type"] == se


def _hessian(model: MultinomialLogit, data: ChoiceData) -> np.ndarray:
    """Central differences of the summed task scores: the Hessian of the log-likelihood."""
    b = model.coef_
    H = np.zeros((b.size, b.size))
    for k in range(b.size):
        e = np.zeros(b.size)
        e[k] = 1e-6
        up = task_scores(b + e, data.X, data.avail, data.chosen, data.weights).sum(axis=0)
        dn = task_scores(b - e, data.X, data.avail, data.chosen, data.weights).sum(axis=0)
        H[:, k] = (up - dn) / 2e-6
    return 0.5 * (H + H.T)


def test_asc_correlated_and_latent_class_naming(small_csv: Path) -> None:
    _, mnl = run_estimate(_request(small_csv, asc=True))
    assert list(mnl["params"]) == ["price", "x1", "x2", "asc_b", "asc_c"]
    _, mixed = run_estimate(_request(small_csv, random="x1:normal,x2:normal", correlated=True, draws=30))
    assert list(mixed["params"])[3:] == ["chol.x1.x1", "chol.x2.x1", "chol.x2.x2"]
    assert mixed["n_params"] == 6 and mixed["loglik"] >= mnl["loglik"] - 5
    _, lc = run_estimate(_request(small_csv, classes=2))
    assert lc["model"] == "LatentClassLogit" and lc["n_params"] == 7
    assert "class2:price" in lc["params"] and "member2:const" in lc["params"]
    assert sum(lc["class_shares"]) == pytest.approx(1.0)


def test_hierarchical_bayes_path(small_csv: Path) -> None:
    import c2m.choice as choice

    if not hasattr(choice, "HierarchicalBayesLogit"):
        with pytest.raises(C2MError, match="not available in this version"):
            run_estimate(_request(small_csv, hb=True, iterations=200))
        return
    _, hb = run_estimate(_request(small_csv, hb=True, iterations=200))
    assert hb["model"] == "HierarchicalBayesLogit" and set(hb) >= KEYS
    assert list(hb["params"]) == ["price", "x1", "x2", "sd.price", "sd.x1", "sd.x2"]
    assert hb["params"]["price"]["estimate"] < 0  # the price effect has the right sign


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vars": "price,x1,nope"}, r"missing column\(s\) \['nope'\]"),
        ({"random": "x1"}, r"--random needs NAME:DISTRIBUTION"),
        ({"random": "x1:gamma"}, r"unknown distribution"),
        ({"random": "z:normal"}, r"'z', which is not in --vars"),
        ({"classes": 2, "random": "x1:normal"}, r"--classes cannot be combined"),
        ({"classes": 2, "se": "robust"}, r"not available for the latent class model"),
        ({"se": "sandwich"}, r"--se must be one of"),
        ({"iterations": 100}, r"--iterations is only used with --hb"),
        ({"wtp_space": "x9"}, r"--wtp-space 'x9' must be one of --vars"),
    ],
)
def test_option_errors(small_csv: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(C2MError, match=message):
        run_estimate(_request(small_csv, **change))


def test_extra_arguments() -> None:
    assert split_extra_args(["d.csv", "--json", "o.json"]) == (["d.csv"], "o.json", True)
    assert split_extra_args(["--json", "d.csv"]) == ([], "d.csv", True)
    assert split_extra_args(["d.csv", "--json"]) == (["d.csv"], None, True)
    assert split_extra_args(["--json=x.json", "d.csv"]) == (["d.csv"], "x.json", True)
    with pytest.raises(C2MError, match="no such option: --bogus"):
        split_extra_args(["d.csv", "--bogus"])


def _bad_table(tmp_path: Path, name: str, edit: object) -> Path:
    frame = pl.read_csv(ELEC_FILE).head(400)
    frame = edit(frame)  # type: ignore[operator]
    path = tmp_path / name
    frame.write_csv(path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.with_columns(choice=pl.when(pl.col("chid") == 3).then(True).otherwise(pl.col("choice"))),
         r"task id=1, chid=3 has 4 chosen alternatives"),
        (lambda f: f.with_columns(cl=pl.lit(5)), r"column 'cl' is constant"),
        (lambda f: f.with_columns(
            pf=pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("cheap")).otherwise(pl.col("pf").cast(pl.String))
        ),
         r"feature column 'pf' is not numeric: row 7 .*'cheap'"),
        (lambda f: f.with_columns(id=pl.when(pl.int_range(pl.len()) == 9).then(None).otherwise(pl.col("id"))),
         r"identifier column 'id' has a missing value at row 9"),
        (lambda f: f.drop("tod"), r"missing column\(s\) \['tod'\]"),
    ],
)
def test_bad_data_exits_2_with_one_line(tmp_path: Path, edit: object, message: str) -> None:
    path = _bad_table(tmp_path, "bad.csv", edit)
    result = run_c2m("estimate", str(path), *ELEC_ARGS)
    assert result.returncode == 2
    line = _one_line_error(result.stderr)
    assert str(path.name) in line
    assert re.search(message, line), line


def test_modes_are_exclusive(tmp_path: Path) -> None:
    both = run_c2m("estimate", str(ELEC_FILE), "--responses", "r.parquet", *ELEC_ARGS)
    assert both.returncode == 2 and "not both" in _one_line_error(both.stderr)
    neither = run_c2m("estimate", "--vars", "pf")
    assert neither.returncode == 2 and "give DATA" in _one_line_error(neither.stderr)
