"""`c2m estimate DATA ...`: any long choice table -> MNL, mixed, latent class or HB logit -> JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from c2m.errors import C2MError

DRAW_TYPES = ("halton", "sobol", "mlhs", "random")
SE_TYPES = ("robust", "clustered", "bhhh", "hessian")
DISTRIBUTIONS = ("normal", "lognormal", "neg_lognormal", "triangular", "uniform", "fixed")


@dataclass
class EstimateRequest:
    """The options of the general `c2m estimate DATA` path."""

    data: Path
    id_col: str = "id"
    task_col: str = "task"
    alt_col: str = "alt"
    chosen_col: str = "chosen"
    vars: str = ""
    asc: bool = False
    random: str | None = None
    correlated: bool = False
    draws: int = 100
    draw_type: str = "halton"
    panel: bool = True
    classes: int | None = None
    hb: bool = False
    iterations: int | None = None
    wtp_space: str | None = None
    se: str | None = None
    seed: int = 0


def split_extra_args(args: list[str]) -> tuple[list[str], str | None, bool]:
    """Positional arguments and ``--json [OUT]`` from the tokens typer did not parse.

    Returns (positionals, json target or None, whether --json was given). ``--json`` alone
    means standard output; ``--json OUT`` or ``--json=OUT`` a file.
    """
    positional: list[str] = []
    target: str | None = None
    given = False
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--json":
            given = True
            if i + 1 < len(args) and not args[i + 1].startswith("-"):
                target = args[i + 1]
                i += 1
        elif tok.startswith("--json="):
            given, target = True, tok.split("=", 1)[1] or None
        elif tok.startswith("-") and tok != "-":
            raise C2MError(f"no such option: {tok} (see `c2m estimate --help`)")
        else:
            positional.append(tok)
        i += 1
    return positional, target, given


def read_choice_table(path: Path) -> pl.DataFrame:
    """A long choice table from .csv, .csv.gz or .parquet."""
    if not path.exists():
        raise C2MError(f"{path}: file not found")
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return pl.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise C2MError(f"{path}: cannot read: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    raise C2MError(f"{path}: expected a .csv, .csv.gz or .parquet file")


def parse_vars(text: str) -> list[str]:
    """``a,b,c`` -> ["a", "b", "c"] (no empty or repeated names)."""
    names = [v.strip() for v in text.split(",")]
    if not text.strip() or any(not v for v in names):
        raise C2MError(f"--vars needs comma-separated column names like price,range; got {text!r}")
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise C2MError(f"--vars lists {dup} more than once")
    return names


def parse_random(text: str | None, features: list[str]) -> dict[str, str]:
    """``a:normal,b:lognormal`` -> {"a": "normal", "b": "lognormal"}, checked against the features."""
    if text is None or not text.strip():
        return {}
    out: dict[str, str] = {}
    for item in text.split(","):
        name, sep, dist = (s.strip() for s in item.partition(":"))
        if not sep or not name or not dist:
            raise C2MError(f"--random needs NAME:DISTRIBUTION items like price:lognormal; got {item.strip()!r}")
        if name not in features:
            raise C2MError(f"--random names {name!r}, which is not in --vars {features}")
        if dist not in DISTRIBUTIONS:
            raise C2MError(f"--random {name}:{dist}: unknown distribution; use one of {DISTRIBUTIONS}")
        if name in out:
            raise C2MError(f"--random lists {name!r} more than once")
        out[name] = dist
    return out


def _add_asc(df: pl.DataFrame, alt_col: str, features: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """Alternative-specific constants asc_<alt> for every alternative but the first (sorted)."""
    labels = df.get_column(alt_col).drop_nulls().unique().sort().to_list()
    names = [f"asc_{a}" for a in labels[1:]]
    clash = [n for n in names if n in features or n in df.columns]
    if clash:
        raise C2MError(f"--asc would create column(s) {clash}, which already exist; rename them")
    cols = [(pl.col(alt_col) == a).cast(pl.Float64).alias(n) for a, n in zip(labels[1:], names, strict=True)]
    return df.with_columns(cols), names


def _check_constant(df: pl.DataFrame, features: list[str], path: Path) -> None:
    for f in features:
        s = df.get_column(f)
        if s.dtype.is_numeric() or s.dtype == pl.Boolean:
            vals = s.drop_nulls()
            if vals.len() and vals.n_unique() == 1:
                raise C2MError(
                    f"{path}: column {f!r} is constant (every row is {vals[0]!r}); its coefficient cannot be "
                    "estimated, drop it from --vars"
                )


def _model(req: EstimateRequest, features: list[str], random: dict[str, str], se: str) -> Any:
    """The estimator the options ask for."""
    from c2m.choice import LatentClassLogit, MixedLogit, MultinomialLogit

    mixed_opts = bool(random) or req.correlated or req.wtp_space is not None
    if req.hb:
        if req.classes is not None or mixed_opts:
            raise C2MError("--hb cannot be combined with --classes, --random, --correlated or --wtp-space")
        if req.se is not None:
            raise C2MError("--hb reports posterior standard deviations; drop --se")
        import c2m.choice as choice

        hb_cls = getattr(choice, "HierarchicalBayesLogit", None)
        if hb_cls is None:
            raise C2MError("--hb: hierarchical Bayes estimation is not available in this version of c2m")
        n_iter = int(req.iterations) if req.iterations is not None else 20_000
        if n_iter < 8:
            raise C2MError(f"--iterations must be >= 8, got {n_iter}")
        burn = n_iter // 2
        return hb_cls(n_iter=n_iter, burn_in=burn, thin=max(1, min(10, (n_iter - burn) // 100)), seed=req.seed)
    if req.iterations is not None:
        raise C2MError("--iterations is only used with --hb")
    if req.classes is not None:
        if mixed_opts:
            raise C2MError("--classes cannot be combined with --random, --correlated or --wtp-space")
        if req.classes < 1:
            raise C2MError(f"--classes must be >= 1, got {req.classes}")
        if se != "hessian":
            raise C2MError(f"--se {se} is not available for the latent class model; use --se hessian")
        return LatentClassLogit(n_classes=req.classes, seed=req.seed)
    if mixed_opts:
        if req.draw_type not in DRAW_TYPES:
            raise C2MError(f"--draw-type must be one of {DRAW_TYPES}, got {req.draw_type!r}")
        if req.draws < 1:
            raise C2MError(f"--draws must be >= 1, got {req.draws}")
        if req.wtp_space is not None and req.wtp_space not in features:
            raise C2MError(f"--wtp-space {req.wtp_space!r} must be one of --vars {features}")
        if se == "clustered" and not req.panel:
            raise C2MError("--se clustered needs the panel mixed logit (drop --no-panel), or use --se robust")
        return MixedLogit(
            random=random,
            correlated=req.correlated,
            n_draws=req.draws,
            draws=req.draw_type,
            panel=req.panel,
            seed=req.seed,
            robust=se in ("robust", "clustered"),
            wtp_space=req.wtp_space,
        )
    return MultinomialLogit(robust=se == "robust", cluster="person" if se == "clustered" else None)


def _vcov(model: Any, se: str) -> np.ndarray:
    """Covariance behind the reported standard errors."""
    V = np.asarray(model.vcov_, dtype=np.float64)
    if se == "hessian":
        return V
    if se == "clustered" and getattr(model, "vcov_cluster_", None) is not None:
        return np.asarray(model.vcov_cluster_)
    if se == "clustered" and hasattr(model, "vcov_cluster_"):
        raise C2MError("--se clustered needs at least 2 persons in the --id column")
    R = np.asarray(model.vcov_robust_, dtype=np.float64)  # mixed logit: person-level scores (clustered)
    if se in ("robust", "clustered"):
        return R
    # BHHH: inverse outer product of the scores; the sandwich is V (S'S) V, so (S'S)^-1 = V R^-1 V
    try:
        return np.asarray(V @ np.linalg.solve(R, V))
    except np.linalg.LinAlgError:
        raise C2MError("--se bhhh: the outer product of the scores is singular; use --se hessian") from None


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _params(model: Any, se: str) -> tuple[dict[str, dict[str, float | None]], int]:
    name = type(model).__name__
    if name == "HierarchicalBayesLogit":
        feats = list(model.feature_names_)
        sd_draws = np.sqrt(np.diagonal(model.cov_draws_, axis1=2, axis2=3))  # (C, S, K)
        K = len(feats)
        est = np.concatenate([model.coef_, model.sd_])
        err = np.concatenate([model.coef_sd_, sd_draws.reshape(-1, K).std(axis=0, ddof=1)])
        names = [*feats, *(f"sd.{f}" for f in feats)]
        return {n: {"estimate": _num(e), "se": _num(s)} for n, e, s in zip(names, est, err, strict=True)}, K + K * (
            K + 1
        ) // 2
    if name == "LatentClassLogit":
        names = model._param_names(model.n_classes_)
        est = np.concatenate([model.coef_.reshape(-1), model.membership_coef_.reshape(-1)])
    elif name == "MixedLogit":
        names, est = list(model.param_names_), model.params_
    else:
        names, est = list(model.feature_names_), model.coef_
    V = _vcov(model, se)
    with np.errstate(invalid="ignore"):
        err = np.sqrt(np.diag(V))
    return {n: {"estimate": _num(e), "se": _num(s)} for n, e, s in zip(names, est, err, strict=True)}, len(names)


def run_estimate(req: EstimateRequest) -> tuple[Any, dict[str, Any]]:
    """Read, validate, fit; returns the fitted model and the JSON result."""
    from c2m.choice import ChoiceData

    se = req.se or "hessian"
    if se not in SE_TYPES:
        raise C2MError(f"--se must be one of {SE_TYPES}, got {se!r}")
    features = parse_vars(req.vars)
    df = read_choice_table(req.data)
    cols = [req.id_col, req.task_col, req.alt_col, req.chosen_col, *features]
    missing = [c for c in dict.fromkeys(cols) if c not in df.columns]
    if missing:
        raise C2MError(f"{req.data}: missing column(s) {missing}; found {df.columns}")
    _check_constant(df, features, req.data)
    if req.asc:
        df, asc = _add_asc(df, req.alt_col, features)
        features = [*features, *asc]
    random = parse_random(req.random, features)
    model = _model(req, features, random, se)
    try:
        data = ChoiceData.from_long(
            df, features, id_col=req.id_col, task_col=req.task_col, alt_col=req.alt_col, chosen_col=req.chosen_col
        )
    except C2MError as exc:
        raise C2MError(f"{req.data}: {exc}") from None
    t0 = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - t0
    params, n_params = _params(model, se)
    converged = getattr(model, "converged_", None)
    if converged is None and hasattr(model, "rhat_"):  # HB: all chains agree on the means
        converged = bool(np.nanmax(model.rhat_) < 1.1)
    result: dict[str, Any] = {
        "model": type(model).__name__,
        "loglik": float(model.loglik_),
        "n_obs": int(data.n_tasks),
        "n_persons": int(data.n_persons),
        "n_params": int(n_params),
        "seconds": round(seconds, 3),
        "converged": bool(converged),
        "se_type": "posterior_sd" if req.hb else se,
        "features": features,
        "params": params,
    }
    for key in ("aic", "bic"):
        if hasattr(model, f"{key}_"):
            result[key] = float(getattr(model, f"{key}_"))
    if type(model).__name__ == "MixedLogit":
        result.update(
            random=model._effective_random(),
            correlated=bool(req.correlated),
            draws=int(req.draws),
            draw_type=req.draw_type,
            panel=bool(req.panel),
            wtp_space=req.wtp_space,
        )
    if type(model).__name__ == "LatentClassLogit":
        result["class_shares"] = [float(s) for s in model.class_shares_]
    return model, result
