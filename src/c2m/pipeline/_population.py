"""The population a fitted choice model describes, as coefficient vectors for the market simulator."""

from __future__ import annotations

from typing import Any

import numpy as np

from c2m.choice import HierarchicalBayesLogit, LatentClassLogit, MixedLogit, MultinomialLogit, make_draws
from c2m.choice import _mixed_math as mm
from c2m.choice._draws import standardise
from c2m.errors import C2MError


def population_betas(model: Any, n_draws: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """Preference-space coefficient vectors standing for the population, with their weights.

    ``None`` for a multinomial logit (one coefficient vector). Latent class: the classes'
    coefficients weighted by the class shares. Hierarchical Bayes: the respondents'
    posterior mean part-worths, equally weighted (as CBC/HB market simulators use them).
    Mixed logit: ``n_draws`` quasi-random (scrambled Halton) draws from the estimated
    distribution of the coefficients, in preference space (WTP-space models are converted).
    Columns follow ``model.feature_names_``.
    """
    if isinstance(model, MultinomialLogit):
        return None
    if isinstance(model, LatentClassLogit):
        shares = np.asarray(model.class_shares_, dtype=float)
        return np.asarray(model.coef_, dtype=float), shares / shares.sum()
    if isinstance(model, HierarchicalBayesLogit):
        betas = np.asarray(model.individual_coef_, dtype=float)
        return betas, np.full(betas.shape[0], 1.0 / betas.shape[0])
    if isinstance(model, MixedLogit):
        spec = model._spec_
        if spec.n_random:
            u = make_draws(1, n_draws, spec.n_random, "halton", seed=seed)
            standard = standardise(u, list(model.distributions_))
        else:
            standard = np.zeros((1, 1, 0))
        coefficients, _ = mm.coefficients(model.params_, spec, standard)
        betas = mm.utility_coef(coefficients[0], spec)
        return np.asarray(betas, dtype=float), np.full(betas.shape[0], 1.0 / betas.shape[0])
    raise C2MError(f"the market simulator cannot use a {type(model).__name__}; fit one of c2m.choice's models")
