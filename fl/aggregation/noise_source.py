"""Where privacy noise gets its randomness: the OS CSPRNG, or the run seed for replayable simulation.

Noise derived from the run seed (``ctx.rng(label, client)``) can be regenerated, and so
subtracted, by anyone who knows the seed: it is right for a reproducible simulation and wrong for
any privacy claim. The default source, :class:`CsprngGenerator`, draws its bits from an
AES-256-CTR keystream under a fresh key from ``os.urandom`` (one key per generator), so no party
can predict or replay them. Stages say which one they used in every round they record
(``noise_seeded`` = 1 or 0).

:class:`CsprngGenerator` offers the few ``numpy.random.Generator`` methods the noise samplers
use: ``random``, 53-bit uniforms. There is no floating-point Gaussian here: both central and
distributed noise are integer draws from the exact sampler
:func:`fl.aggregation.discrete_gaussian.sample_discrete_gaussian` (a float Gaussian's outputs lie
on a pattern of rings that differs between neighbouring sums, so some outputs are possible for
one neighbour and impossible for the other: docs/privacy.md, assumption 2).
"""
from __future__ import annotations

import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .base import RoundContext

__all__ = ["CsprngGenerator", "noise_generator"]


class CsprngGenerator:
    """Uniform draws from an AES-256-CTR stream keyed by ``os.urandom(32)``."""

    def __init__(self) -> None:
        self._enc = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(bytes(16))).encryptor()

    def _words(self, n: int) -> np.ndarray:
        return np.frombuffer(self._enc.update(bytes(8 * n)), dtype=np.uint64)

    def random(self, size: int | tuple[int, ...]) -> np.ndarray:
        """Uniform float64 on [0, 1) with 53 random bits each."""
        n = int(np.prod(size))
        return ((self._words(n) >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(size)

    def poisson(self, lam, size):  # noqa: ARG002 - the Skellam sampler asks for it
        raise NotImplementedError("no CSPRNG Poisson sampler: the Skellam noise needs noise_seeded = true "
                                  "(use the discrete Gaussian)")

    def __repr__(self) -> str:
        return "CsprngGenerator()"


def noise_generator(ctx: RoundContext, label: str, client_id: int | None, *, seeded: bool):
    """The generator of one noise draw: ``ctx.rng(label, client_id)`` if ``seeded``, else a fresh CSPRNG."""
    return ctx.rng(label, client_id) if seeded else CsprngGenerator()

