"""Share rules beyond the logit: randomized first choice (RFC) noise and purchase likelihood.

Randomized first choice (Sawtooth Software's RFC) adds, for each person and each of
``D`` draws, two kinds of error to the utilities and counts first choices:

* *product variability*: an independent Gumbel error on each product's utility
  (the None alternative included);
* *attribute variability*: a Gumbel error on each level's part-worth, the same for
  every product that has the level in that draw (so products sharing levels stay
  correlated, which corrects the logit's IIA). A numeric attribute (price, range)
  gets an error at each measured level, interpolated linearly in the value and
  held constant outside the measured range. Attribute errors are centred (the
  Gumbel mean, Euler's gamma times the scale, is subtracted) so that they do not
  shift products against the None alternative, which has no levels.

The errors are a deterministic function of ``(seed, person, draw, product)``: a
product is identified by its levels (price excluded, so a demand curve keeps the
same error at every price), a competitor by its position and None by itself. A
product therefore gets the same errors in every line it is simulated in (common
random numbers), which keeps comparisons between lines, the optimiser's search and
the simulator's evaluation consistent. Counter-based hashing (splitmix64) makes the
errors independent of how persons are chunked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from c2m.domain import Project

EULER_GAMMA = 0.5772156649015329
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
TAG_OURS, TAG_COMPETITOR, TAG_NONE, TAG_LEVEL = 1, 2, 3, 4


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _C1
        z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def _key(*parts: int) -> np.uint64:
    h = np.uint64(0x5DEECE66D)
    for part in parts:
        with np.errstate(over="ignore"):
            h = _mix(np.array([h ^ (np.uint64(part & 0xFFFFFFFFFFFFFFFF) * _GOLDEN)], dtype=np.uint64))[0]
    return np.uint64(h)


def _gumbel(bits: np.ndarray) -> np.ndarray:
    """Standard Gumbel draws from uniform 64-bit hashes."""
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return -np.log(-np.log(u))


class LevelMap:
    """Every attribute level of a project as one column: products' level weights and identity keys."""

    def __init__(self, project: Project) -> None:
        self.attributes = list(project.attributes)
        price = project.attribute_by_role("price")
        self.price_name = price.name if price is not None else None
        self.offsets: dict[str, int] = {}
        self.numeric_values: dict[str, np.ndarray] = {}
        start = 0
        for attribute in self.attributes:
            self.offsets[attribute.name] = start
            if attribute.kind == "numeric":
                values = np.array(sorted(float(lv.value) for lv in attribute.levels if lv.value is not None))
                self.numeric_values[attribute.name] = values
                start += values.size
            else:
                start += len(attribute.levels)
        self.n_levels = start

    def matrix(self, profiles: Sequence[Mapping[str, str | float]]) -> np.ndarray:
        """``(n, L)`` weights of each product on each level (one-hot; interpolated for numeric)."""
        A = np.zeros((len(profiles), self.n_levels))
        rows = np.arange(len(profiles))
        for attribute in self.attributes:
            start = self.offsets[attribute.name]
            if attribute.kind == "numeric":
                values = self.numeric_values[attribute.name]
                if values.size == 0:
                    continue
                x = np.array([float(p[attribute.name]) for p in profiles])
                if values.size == 1:
                    A[rows, start] = 1.0
                    continue
                x = np.clip(x, values[0], values[-1])
                hi = np.clip(np.searchsorted(values, x, side="right"), 1, values.size - 1)
                lo = hi - 1
                t = (x - values[lo]) / (values[hi] - values[lo])
                A[rows, start + lo] += 1.0 - t
                A[rows, start + hi] += t
            else:
                index = {name: k for k, name in enumerate(attribute.level_names)}
                cols = [start + index[str(p[attribute.name])] for p in profiles]
                A[rows, cols] = 1.0
        return A

    def product_key(self, profile: Mapping[str, str | float], occurrence: int = 0) -> np.uint64:
        """Identity of one of our products: its levels, price excluded."""
        parts: list[int] = [TAG_OURS, occurrence]
        for attribute in self.attributes:
            if attribute.name == self.price_name:
                continue
            if attribute.kind == "numeric":
                parts.append(int(np.float64(float(profile[attribute.name])).view(np.uint64)))
            else:
                parts.append(attribute.level_names.index(str(profile[attribute.name])) + 1)
        return _key(*parts)

    def line_keys(self, profiles: Sequence[Mapping[str, str | float]]) -> np.ndarray:
        """Keys of a line's products; a repeated configuration gets a new key per repeat."""
        seen: dict[int, int] = {}
        keys = []
        for p in profiles:
            base = int(self.product_key(p))
            occurrence = seen.get(base, 0)
            seen[base] = occurrence + 1
            keys.append(self.product_key(p, occurrence) if occurrence else np.uint64(base))
        return np.array(keys, dtype=np.uint64)

    @staticmethod
    def other_keys(n_competitors: int, with_none: bool) -> np.ndarray:
        keys = [_key(TAG_COMPETITOR, i) for i in range(n_competitors)]
        if with_none:
            keys.append(_key(TAG_NONE))
        return np.array(keys, dtype=np.uint64)


def rfc_noise(
    persons: np.ndarray,
    n_draws: int,
    keys: np.ndarray,
    A: np.ndarray,
    product_variability: float,
    attribute_variability: float,
    seed: int,
) -> np.ndarray:
    """Errors ``(P, D, J)`` for persons ``persons`` (global indices), draws and products ``keys``."""
    counters: np.ndarray = np.asarray(
        persons.astype(np.uint64)[:, None] * np.uint64(n_draws) + np.arange(n_draws, dtype=np.uint64),
        dtype=np.uint64,
    )
    with np.errstate(over="ignore"):
        base = _mix(counters ^ (np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _GOLDEN))  # (P, D)
    noise = np.zeros((persons.size, n_draws, keys.size))
    if product_variability > 0:
        with np.errstate(over="ignore"):
            bits = _mix(base[:, :, None] ^ keys[None, None, :])
        noise += product_variability * _gumbel(bits)
    if attribute_variability > 0 and A.shape[1] > 0:
        level_keys = np.array([_key(TAG_LEVEL, lv) for lv in range(A.shape[1])], dtype=np.uint64)
        with np.errstate(over="ignore"):
            bits = _mix(base[:, :, None] ^ level_keys[None, None, :])
        E = _gumbel(bits) - EULER_GAMMA  # (P, D, L)
        noise += attribute_variability * (E @ A.T)
    return noise


def first_choice(u: np.ndarray) -> np.ndarray:
    """Choice indicators along the last axis, ties split equally."""
    best = u >= u.max(axis=-1, keepdims=True) - 1e-12
    return best / best.sum(axis=-1, keepdims=True)
