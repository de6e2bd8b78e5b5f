"""Distributed noise: each client adds its share of the noise to its *quantized* vector.

Under secure aggregation the server only ever sees the masked vectors and their sum; if the
clients add the noise themselves, no party - not the server, not any client - sees an
un-noised aggregate (Kairouz, Liu, Steinke, ICML 2021, "The Distributed Discrete Gaussian
Mechanism for Federated Learning with Secure Aggregation"; Agarwal, Kairouz, Liu, NeurIPS 2021,
for Skellam).

**Where it sits.** Between quantization and the secure sum: the client half of this stage gets
the client's vector already in the integer domain Z_m (m = 2^quant_bits), adds integer noise
modulo m, and passes it on to be masked.

**Scale conversion.** The quantizer maps a float coordinate x to about ``x * scale`` integer
units (``scale`` = integer units per float unit, e.g. ``(2^(b-1) - 1) / quant_range`` for a
symmetric b-bit quantizer; the pipeline builder passes the quantizer's own value,
``secagg.quantize.QuantizationSpec(...).scale``). To give the
*sum* of the ``n`` expected clients a noise of standard deviation ``std`` per coordinate in the
float domain, i.e. ``std * scale`` integer units, each client adds noise of standard deviation

    sigma_client = std * scale / sqrt(n)

in integer units (variances add). When fewer than ``n`` clients are in the sum the noise is
smaller, ``sqrt(received / n) * std``; the stage records the realised value, and the accountant
composes each released round with its own realised noise. ``std`` is a
standard deviation on the sum, as for the central stage.

**Headroom.** The quantizer of ``secagg.quantize`` leaves exactly enough room for the sum of
``n`` clipped values not to wrap; the noise uses part of that room. A wrap needs the clients'
coordinates to sit near the clipping range *and* a noise draw many standard deviations out, so
choose ``quant_range`` well above the typical coordinate (``secagg.quantize`` then has slack).

**Samplers** (numpy, vectorised; randomness from ``ctx.rng("distributed_noise", client)`` so
runs are reproducible - a deployment needs an exact sampler on a cryptographic source):

* ``"discrete_gaussian"`` - the rejection sampler of Canonne, Kamath and Steinke (2020,
  algorithm 3): a discrete Laplace proposal of scale ``t = floor(sigma) + 1``, accepted with
  probability ``exp(-(|y| - sigma^2/t)^2 / (2 sigma^2))``. Its variance is at most sigma^2
  and within 1e-9 relative of it for sigma >= 2. The sum of the clients' discrete Gaussians is
  close to, not exactly, a discrete Gaussian (Kairouz et al. bound the gap).
* ``"skellam"`` - ``Poisson(mu) - Poisson(mu)`` with ``mu = sigma^2 / 2``; sums of Skellams are
  exactly Skellam, variance 2 mu.

Accounting uses the Gaussian mechanism with the same total standard deviation (the
approximation of both papers for large sigma); the sensitivity passed should be the clip
bound inflated for rounding if the quantizer rounds stochastically.
"""
from __future__ import annotations

import math

import numpy as np

from .base import AggregateResult, Aggregator, ClientMessage, RoundContext, Stage
from .privacy import DpAccounting

__all__ = ["DistributedDiscreteGaussianStage", "sample_discrete_gaussian", "sample_skellam", "SAMPLERS"]

SAMPLERS = ("discrete_gaussian", "skellam")


def sample_discrete_gaussian(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    """``size`` i.i.d. draws of the discrete Gaussian N_Z(0, sigma^2), as int64.

    Args:
      rng: the generator.
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


def sample_skellam(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    """``size`` i.i.d. Skellam draws with variance ``sigma^2`` (``Poisson(mu) - Poisson(mu)``), int64."""
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"Skellam sigma must be positive, got {sigma!r}")
    mu = sigma * sigma / 2.0
    return rng.poisson(mu, size).astype(np.int64) - rng.poisson(mu, size).astype(np.int64)


def _is_power_of_two(m: int) -> bool:
    return m >= 2 and m & (m - 1) == 0


class DistributedDiscreteGaussianStage(Stage):
    """Each client adds integer noise to its quantized vector; the sum carries std ``std``.

    Args:
      inner: the (secure) sum of integer vectors mod ``modulus``.
      std: standard deviation per coordinate of the total noise on the sum, in the float domain.
      scale: integer units per float unit of the quantizer around this stage.
      num_clients: n, the clients expected in the sum (the noise is split among them).
      modulus: m, a power of two at most 2^64, the modulus of the integer domain.
      sampler: one of :data:`SAMPLERS`.
      accounting: if given, ``dp_epsilon`` is recorded each round.

    Raises:
      ValueError: an argument out of range.
    """

    name = "distributed_noise"

    def __init__(
        self,
        inner: Aggregator,
        std: float,
        *,
        scale: float,
        num_clients: int,
        modulus: int,
        sampler: str = "discrete_gaussian",
        accounting: DpAccounting | None = None,
    ):
        super().__init__(inner)
        if not (std > 0 and math.isfinite(std)):
            raise ValueError(f"aggregation.noise_std: expected a positive number, got {std!r}")
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"distributed noise: quantizer scale must be positive, got {scale!r}")
        if int(num_clients) < 1:
            raise ValueError(f"distributed noise: num_clients must be positive, got {num_clients!r}")
        if not (_is_power_of_two(int(modulus)) and int(modulus) <= 2**64):
            raise ValueError(f"aggregation.quant_bits: the modulus must be a power of two <= 2^64, got {modulus!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"distributed noise: sampler must be one of {SAMPLERS}, got {sampler!r}")
        self.std = float(std)
        self.scale = float(scale)
        self.num_clients = int(num_clients)
        self.modulus = int(modulus)
        self.sampler = sampler
        self.accounting = accounting
        #: standard deviation each client adds, in integer units
        self.client_sigma = self.std * self.scale / math.sqrt(self.num_clients)
        #: realised noise std on the sum of each released round, by round index (for accounting)
        self.realised: dict[int, float] = {}

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        v = message.vector
        if v.ndim != 1 or not np.issubdtype(v.dtype, np.unsignedinteger):
            raise ValueError(
                f"{self.name}: client {message.client_id} holds a {v.dtype} vector; distributed noise "
                "is added to the quantized (unsigned integer) vector - place it inside quantization"
            )
        if self.modulus > 2 ** (8 * v.dtype.itemsize):
            raise ValueError(f"{self.name}: modulus {self.modulus} does not fit the {v.dtype} vector")
        rng = ctx.rng(self.name, message.client_id)
        draw = sample_discrete_gaussian if self.sampler == "discrete_gaussian" else sample_skellam
        noise = draw(rng, self.client_sigma, v.shape[0])
        # two's complement in uint64 is addition mod 2^64; m divides 2^64, so masking gives mod m
        noised = (v.astype(np.uint64) + noise.view(np.uint64)) & np.uint64(self.modulus - 1)
        return message.replace(vector=noised.astype(v.dtype))

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        received = len(result.included)
        realised = self.std * math.sqrt(received / self.num_clients)
        ctx.record("noise_std_sum", self.std)
        ctx.record("noise_std_sum_realised", realised)
        self.realised[ctx.round_index] = realised
        if self.accounting is not None:
            # rounds with dropouts carried less noise: compose each round with its own
            self.accounting.record(ctx, realised, self.realised)
        return result

    def __repr__(self) -> str:
        return (
            f"DistributedDiscreteGaussianStage(std={self.std}, scale={self.scale}, num_clients={self.num_clients}, "
            f"modulus=2^{self.modulus.bit_length() - 1}, sampler={self.sampler!r})"
        )
