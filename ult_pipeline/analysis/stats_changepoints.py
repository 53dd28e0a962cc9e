"""Change points over a build series with ruptures (PELT, least-squares cost, penalty scaled by the noise)."""

from __future__ import annotations

import numpy as np

from ult_pipeline.analysis.stats_robust import shamos_scale


def difference_noise(y: np.ndarray) -> float:
    """Run-to-run sigma from successive differences: unaffected by level shifts between builds."""
    if len(y) < 3:
        return 0.0
    return shamos_scale(np.diff(y)) / np.sqrt(2.0)


def change_points(y: np.ndarray, sigma: float, penalty: float = 4.0, min_size: int = 2) -> tuple[int, ...]:
    """Indices where a new level starts (the first build after each change), from PELT.

    The penalty per change is `penalty * sigma^2 * log(n)`: a BIC-like penalty, in the units of the
    least-squares cost, with sigma the run-to-run noise.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < 2 * min_size or not np.isfinite(sigma) or sigma <= 0:
        return ()
    # Imported here: ruptures pulls in scipy.stats, signal and spatial (~0.5 s), which `ult analyze
    # --help` and a history too short for a change point do not need.
    import ruptures as rpt
    from ruptures.exceptions import BadSegmentationParameters

    try:
        ends = rpt.Pelt(model="l2", min_size=min_size, jump=1).fit(y).predict(pen=penalty * sigma**2 * np.log(n))
    except BadSegmentationParameters:
        return ()
    return tuple(int(e) for e in ends if e < n)
