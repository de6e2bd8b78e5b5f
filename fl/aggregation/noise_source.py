"""Where privacy noise gets its randomness: the OS CSPRNG, or the run seed for replayable simulation.

Noise derived from the run seed (``ctx.rng(label, client)``) can be regenerated, and so
subtracted, by anyone who knows the seed: it is right for a reproducible simulation and wrong for
any privacy claim. The default source, :class:`CsprngGenerator`, draws its bits from an
AES-256-CTR keystream under a fresh key from ``os.urandom`` (one key per generator), so no party
can predict or replay them. Stages say which one they used in every round they record
(``noise_seeded`` = 1 or 0).

:class:`CsprngGenerator` offers the few ``numpy.random.Generator`` methods the noise samplers
use (``random``, ``normal``, ``geometric``), built from 53-bit uniforms. ``normal`` is
Box-Muller in float64: the floating-point Gaussian is the usual approximation (see
docs/privacy.md); the integer samplers of distributed noise do not depend on it.
"""
from __future__ import annotations

import math
import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .base import RoundContext

__all__ = ["CsprngGenerator", "noise_generator"]


class CsprngGenerator:
    """Uniform, normal and geometric draws from an AES-256-CTR stream keyed by ``os.urandom(32)``."""

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

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: int | tuple[int, ...] = 1) -> np.ndarray:
        """i.i.d. N(loc, scale^2) by Box-Muller."""
        n = int(np.prod(size))
        half = (n + 1) // 2
        r = np.sqrt(-2.0 * np.log(self._open_unit(half)))
        theta = 2.0 * math.pi * self.random(half)
        z = np.concatenate([r * np.cos(theta), r * np.sin(theta)])[:n]
        return (loc + scale * z).reshape(size)

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
