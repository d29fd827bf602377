"""Electronic noise without drawing a number for every one of ~1.8e5 cells per event.

Topo-clustering only needs to know which cells are above the growing
threshold g (in units of sigma), which of those are above the seed threshold
s, and the values of the few cells that end up in a cluster. Noise-only cells
are therefore drawn in exact steps: which of them fluctuate above g (a
Bernoulli process with p = P(|x| > g), sampled by geometric gaps); of those,
the seeds (|x| > s) get their value now, while band cells (g < |x| <= s) get
theirs from the Gaussian restricted to that band only if they are clustered;
quiet cells that become boundary cells get theirs from the Gaussian truncated
to |x| <= g on demand. The joint distribution is the same as drawing every
cell.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr


def tail_cells(n_total: int, grow: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices in [0, n_total) of noise cells with |x| > grow, each chosen with P(|x| > grow)."""
    return bernoulli_cells(n_total, 2.0 * ndtr(-grow), rng)


def bernoulli_cells(n_total: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices in [0, n_total), each included independently with probability p (geometric gaps)."""
    if n_total == 0 or p <= 0:
        return np.empty(0, dtype=np.int64)
    out = []
    pos = -1
    expected = int(n_total * p + 6 * np.sqrt(n_total * p) + 16)
    while True:  # one or two rounds: draw gaps until past the end
        gaps = rng.geometric(p, size=expected)
        idx = pos + np.cumsum(gaps)
        out.append(idx[idx < n_total])
        if idx[-1] >= n_total:
            break
        pos = int(idx[-1])
    return np.concatenate(out).astype(np.int64)


def tail_values(n: int, grow: float, rng: np.random.Generator, upper: float = np.inf) -> np.ndarray:
    """Standard-normal values conditioned on grow < |x| <= upper.

    Marsaglia's tail method, exact: x = sqrt(grow^2 + 2E) with E ~ Exp(1), kept
    with probability grow / x (and x <= upper); the exponential comes from numpy's
    fast ziggurat.
    """
    out = np.empty(0, dtype=np.float32)
    g2 = np.float32(grow * grow)
    while len(out) < n:
        m = int(1.2 * (n - len(out))) + 16
        x = np.sqrt(g2 + 2.0 * rng.standard_exponential(m, dtype=np.float32))
        out = np.concatenate([out, x[(rng.random(m, dtype=np.float32) * x < grow) & (x <= upper)]])
    out = out[:n]
    out[rng.random(n, dtype=np.float32) < 0.5] *= -1
    return out


def quiet_values(n: int, grow: float, rng: np.random.Generator) -> np.ndarray:
    """Standard-normal values conditioned on |x| <= grow (rejection from the full Gaussian, exact)."""
    out = np.empty(0, dtype=np.float32)
    while len(out) < n:
        x = rng.standard_normal(int(1.1 * (n - len(out))) + 16, dtype=np.float32)
        out = np.concatenate([out, x[np.abs(x) <= grow]])
    return out[:n]
