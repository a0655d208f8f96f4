"""Newton-type maximum likelihood for the MNL: scipy trust-exact with analytic derivatives."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from c2m.choice import _mnl_numba
from c2m.choice._mnl_math import BoolArray, FloatArray, IntArray, _loss_grad_hess
from c2m.errors import C2MError

ENGINES = ("auto", "numpy", "numba")
NUMBA_MIN_CELLS = 200_000  # below this many task x alternative cells NumPy is fast enough


@dataclass
class FitResult:
    """Optimum and derivatives of the negative weighted log-likelihood there."""

    beta: FloatArray
    loss: float
    grad: FloatArray
    hess: FloatArray
    n_iter: int
    success: bool
    engine: str


def pick_engine(engine: str, n_cells: int) -> str:
    """Resolve ``auto`` to ``numba`` for large data when numba is installed, else ``numpy``."""
    if engine not in ENGINES:
        raise C2MError(f"unknown engine {engine!r}; use one of {ENGINES}")
    if engine == "numba":
        if not _mnl_numba.available():
            raise C2MError("engine='numba' needs numba: pip install numba (or use engine='numpy')")
        return "numba"
    if engine == "auto" and n_cells >= NUMBA_MIN_CELLS and _mnl_numba.available():
        return "numba"
    return "numpy"


class _Objective:
    """Loss, gradient and Hessian at the last point asked, computed once per point."""

    def __init__(
        self, X: FloatArray, avail: BoolArray, chosen: IntArray, weights: FloatArray, engine: str
    ) -> None:
        self.args = (X, avail, chosen, weights)
        self.engine = engine
        self.scale = 1.0 / float(weights.sum())  # optimise the mean: tolerances independent of n
        self._beta: FloatArray | None = None
        self._last: tuple[float, FloatArray, FloatArray] | None = None

    def evaluate(self, beta: FloatArray) -> tuple[float, FloatArray, FloatArray]:
        """(loss, grad, Hessian) at ``beta``, reusing the last result at the same point."""
        if self._last is not None and self._beta is not None and np.array_equal(beta, self._beta):
            return self._last
        kernel = _mnl_numba.loss_grad_hess if self.engine == "numba" else _loss_grad_hess
        out = kernel(beta, *self.args)
        self._beta, self._last = np.array(beta, dtype=np.float64), out
        return out

    def fun(self, beta: FloatArray) -> tuple[float, FloatArray]:
        loss, grad, _ = self.evaluate(beta)
        return loss * self.scale, grad * self.scale

    def hess(self, beta: FloatArray) -> FloatArray:
        return self.evaluate(beta)[2] * self.scale


def newton_fit(
    X: FloatArray,
    avail: BoolArray,
    chosen: IntArray,
    weights: FloatArray,
    *,
    tol: float,
    maxiter: int,
    engine: str = "auto",
) -> FitResult:
    """Minimise the negative log-likelihood from zero with trust-exact (exact Newton steps)."""
    if float(weights.sum()) <= 0:
        raise C2MError("the task weights sum to zero; nothing to estimate")
    eng = pick_engine(engine, X.shape[0] * X.shape[1])
    obj = _Objective(X, avail, chosen, weights, eng)
    res = minimize(
        obj.fun,
        np.zeros(X.shape[2]),
        jac=True,
        hess=obj.hess,
        method="trust-exact",
        options={"gtol": tol, "maxiter": maxiter},
    )
    beta = np.asarray(res.x, dtype=np.float64)
    loss, grad, hess = obj.evaluate(beta)
    small_grad = bool(np.max(np.abs(grad * obj.scale)) <= 10 * tol)
    return FitResult(beta, loss, grad, hess, int(res.nit), bool(res.success) or small_grad, eng)
