"""Where privacy noise gets its randomness: the OS CSPRNG, or the run seed for replayable simulation.

Noise derived from the run seed (``ctx.rng(label, client)``) can be regenerated, and so
subtracted, by anyone who knows the seed: it is right for a reproducible simulation and wrong for
any privacy claim. The default source, :class:`CsprngGenerator`, draws its bits from an
AES-256-CTR keystream under a fresh key from ``os.urandom`` (one key per generator), so no party
can predict or replay them. Stages say which one they used in every round they record
(``noise_seeded`` = 1 or 0).

:class:`CsprngGenerator` offers the few ``numpy.random.Generator`` methods the noise samplers
use (``random``, ``geometric``), built from 53-bit uniforms. There is no
floating-point Gaussian here: both central and distributed noise are integer draws from
:func:`sample_discrete_gaussian` (a float Gaussian's outputs lie on a pattern of rings that
differs between neighbouring sums, so some outputs are possible for one neighbour and impossible
for the other: docs/privacy.md, assumption 2).
"""
from __future__ import annotations

import math
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .base import RoundContext

__all__ = ["CsprngGenerator", "noise_generator", "sample_discrete_gaussian", "MAX_SAMPLER_SIGMA"]

#: above this sigma (integer units) the float inversion sampler's geometrics are off by more than
#: 2^-10 relative on integers up to 8 t (``t = floor(sigma) + 1``; see
#: :mod:`fl.aggregation.distributed_noise`): 2^floor(53 - 8 / ln 2 - 10) = 2^31
MAX_SAMPLER_SIGMA = 2.0 ** math.floor(53 - 8 / math.log(2) - 10)


class CsprngGenerator:
    """Uniform and geometric draws from an AES-256-CTR stream keyed by ``os.urandom(32)``."""

    def __init__(self) -> None:
        self._enc = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(bytes(16))).encryptor()

    def _words(self, n: int) -> np.ndarray:
        return np.frombuffer(self._enc.update(bytes(8 * n)), dtype=np.uint64)

    def random(self, size: int | tuple[int, ...]) -> np.ndarray:
        """Uniform float64 on [0, 1) with 53 random bits each."""
        n = int(np.prod(size))
        return ((self._words(n) >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(size)

    def _open_unit(self, n: int) -> np.ndarray:
        """Uniform on (0, 1]: safe to take the logarithm of."""
        return 1.0 - self.random(n)

    def geometric(self, p: float, size: int) -> np.ndarray:
        """Trials up to the first success (support 1, 2, ...), by inversion."""
        if not 0 < p <= 1:
            raise ValueError(f"geometric: p must lie in (0, 1], got {p!r}")
        if p == 1:
            return np.ones(size, dtype=np.int64)
        g = np.floor(np.log(self._open_unit(size)) / math.log1p(-p)) + 1
        return g.astype(np.int64)

    def poisson(self, lam, size):  # noqa: ARG002 - the Skellam sampler asks for it
        raise NotImplementedError("no CSPRNG Poisson sampler: the Skellam noise needs noise_seeded = true "
                                  "(use the discrete Gaussian)")

    def __repr__(self) -> str:
        return "CsprngGenerator()"


def noise_generator(ctx: RoundContext, label: str, client_id: int | None, *, seeded: bool):
    """The generator of one noise draw: ``ctx.rng(label, client_id)`` if ``seeded``, else a fresh CSPRNG."""
    return ctx.rng(label, client_id) if seeded else CsprngGenerator()


def sample_discrete_gaussian(rng, sigma: float, size: int) -> np.ndarray:
    """``size`` i.i.d. draws of the discrete Gaussian N_Z(0, sigma^2), as int64.

    The rejection sampler of Canonne, Kamath and Steinke (2020, algorithm 3): a discrete Laplace
    proposal of scale ``t = floor(sigma) + 1`` (a difference of two geometrics drawn by inversion
    from 53-bit uniforms), accepted with probability ``exp(-(|y| - sigma^2/t)^2 / (2 sigma^2))``.
    Every integer up to ``t (53 ln 2 - ln t - 1)`` can be drawn; its float approximation error
    and its bounded support are stated in docs/privacy.md (Path 2, and assumption 2).

    Args:
      rng: the generator (:class:`CsprngGenerator`, or a seeded ``numpy.random.Generator``).
      sigma: the scale parameter (> 0).
      size: number of draws.

    Returns:
      ``int64 [size]``.
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"discrete Gaussian sigma must be positive, got {sigma!r}")
    t = math.floor(sigma) + 1
    p = -math.expm1(-1.0 / t)  # success probability of the geometric halves of the Laplace
    out = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        y = rng.geometric(p, todo.size).astype(np.int64) - rng.geometric(p, todo.size).astype(np.int64)
        accept = rng.random(todo.size) < np.exp(-((np.abs(y) - sigma * sigma / t) ** 2) / (2 * sigma * sigma))
        out[todo[accept]] = y[accept]
        todo = todo[~accept]
    return out
