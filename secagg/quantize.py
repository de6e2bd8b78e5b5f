"""Fixed-point quantization into Z_(2^k) with unbiased stochastic rounding, and back.

See ``docs/secagg.md#quantization``. With clipping range ``r``, ``n`` clients and ``k`` bits::

    M     = min(floor((2^(k-1) - 1) / n), 2^52)     # largest quantized magnitude per client
    scale = M / r                                    # quantization step: 1 / scale = r / M
    q     = SR(clip(x, -r, r) * scale)               # an integer in [-M, M]
    upload q mod 2^k

where ``SR(y) = floor(y) + [U < y - floor(y)]`` with ``U`` uniform on [0, 1), so ``E[q] = y``.
The sum of ``n`` values lies in ``[-n M, n M]`` within ``[-(2^(k-1) - 1), 2^(k-1) - 1]``, so
it never wraps: reading the modular sum as a signed k-bit integer gives it exactly. ``M <= 2^52``
keeps ``y`` and its rounding exact in float64. ``M < 1`` is rejected up front.

**Headroom for noise.** When the clients add integer noise whose sum has standard deviation
``sigma`` in the float domain (``noise_std``), the levels leave room for ``c * sigma`` more::

    M = min(floor((2^(k-1) - 1) / (n + c * sigma / r)), 2^52),   c = sqrt(2 ln(2^21)) ~ 5.40

so ``n M + c * sigma * scale <= 2^(k-1) - 1``. The noise on the sum is sub-Gaussian with
variance proxy ``(sigma * scale)^2`` (a discrete Gaussian is sub-Gaussian with its sigma, and
sums of independent ones add), so ``P(|noise| >= c sigma scale) <= 2 exp(-c^2 / 2) = 2^-20``:
a coordinate wraps with probability below 2^-20 whatever the clients' values.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .errors import ConfigError, NonFiniteInput
from .prg import ring_dtype

__all__ = ["QuantizationSpec", "WRAP_SIGMAS", "WRAP_PROBABILITY_BITS", "quantize", "quantize_counting_clipped", "dequantize_sum", "to_ring", "to_signed"]

_MAX_LEVELS = 1 << 52
#: a coordinate of a noisy sum wraps with probability below 2^-WRAP_PROBABILITY_BITS
WRAP_PROBABILITY_BITS = 20
#: standard deviations of noise the levels leave room for: 2 exp(-c^2 / 2) = 2^-20
WRAP_SIGMAS = float(np.sqrt(2.0 * (WRAP_PROBABILITY_BITS + 1) * np.log(2.0)))


@dataclasses.dataclass(frozen=True)
class QuantizationSpec:
    """A no-wrap fixed-point format for summing ``num_clients`` values.

    Attributes:
      bits: k, the ring Z_(2^k), ``2 <= k <= 64``.
      clip_range: r > 0; coordinates are clipped to [-r, r].
      num_clients: the most clients whose values may be summed.
      noise_std: standard deviation (float domain) of integer noise the sum will carry; the
        levels leave room for :data:`WRAP_SIGMAS` of it (0: no noise).

    Raises:
      ConfigError: a parameter out of range, or no room for even one level per client.
    """

    bits: int
    clip_range: float
    num_clients: int
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 64:
            raise ConfigError(f"bits: expected an int in 2..64, got {self.bits!r}")
        if not (np.isfinite(self.clip_range) and self.clip_range > 0):
            raise ConfigError(f"clip_range: expected a finite positive float, got {self.clip_range!r}")
        if isinstance(self.num_clients, bool) or not isinstance(self.num_clients, int) or self.num_clients < 1:
            raise ConfigError(f"num_clients: expected a positive int, got {self.num_clients!r}")
        if not (np.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ConfigError(f"noise_std: expected a finite float >= 0, got {self.noise_std!r}")
        if self.levels < 1:
            raise ConfigError(
                f"quantization: {self.num_clients} clients cannot be summed in {self.bits} bits without "
                f"wrapping (need 2^(k-1) - 1 >= n + {WRAP_SIGMAS:.2f} * noise_std / clip_range); raise bits or "
                "lower num_clients"
            )

    @property
    def levels(self) -> int:
        """M, the largest quantized magnitude of one client's coordinate (room left for the noise)."""
        room = (1 << (self.bits - 1)) - 1
        if self.noise_std == 0:
            return min(room // self.num_clients, _MAX_LEVELS)
        share = self.num_clients + WRAP_SIGMAS * float(self.noise_std) / float(self.clip_range)
        levels = min(int(room / share), _MAX_LEVELS)
        while levels > 0 and self.num_clients * levels + WRAP_SIGMAS * self.noise_std * levels / self.clip_range > room:
            levels -= 1  # float rounding at the boundary
        return levels

    @property
    def scale(self) -> float:
        return self.levels / float(self.clip_range)

    @property
    def step(self) -> float:
        """The quantization step r / M (the value of one integer unit)."""
        return float(self.clip_range) / self.levels


def quantize(x: np.ndarray, spec: QuantizationSpec, rng: np.random.Generator) -> np.ndarray:
    """Clip, scale and stochastically round ``x``; return it modulo 2^k (uint32 or uint64).

    Raises:
      NonFiniteInput: ``x`` holds NaN or an infinity (nothing is drawn from ``rng``).
    """
    return quantize_counting_clipped(x, spec, rng)[0]


def quantize_counting_clipped(
    x: np.ndarray, spec: QuantizationSpec, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """:func:`quantize`, also returning how many coordinates the clip to ``[-r, r]`` changed.

    The count reuses the float64 copy and the clipped array that quantizing makes anyway.

    Raises:
      NonFiniteInput: ``x`` holds NaN or an infinity. NaN has no value (cast to an integer it
        becomes -2^63 or, reduced below 64 bits, 0) and an infinity is a broken update, not a
        large one: both are refused rather than clipped or rounded.
    """
    xf = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(xf)
    if not finite.all():
        raise NonFiniteInput(int(finite.size - np.count_nonzero(finite)), "quantize")
    y = np.clip(xf, -spec.clip_range, spec.clip_range)
    clipped = int(np.count_nonzero(y != xf))
    np.multiply(y, spec.scale, out=y)
    lo = np.floor(y)
    q = lo.astype(np.int64) + (rng.random(y.shape) < (y - lo))
    return to_ring(q, spec.bits), clipped


def to_ring(signed: np.ndarray, bits: int) -> np.ndarray:
    """Signed integers taken modulo 2^k (two's complement), as :func:`~secagg.prg.ring_dtype` words."""
    w = np.asarray(signed).astype(np.int64, copy=False).view(np.uint64)
    if bits < 64:
        w = w & np.uint64((1 << bits) - 1)
    return w.astype(ring_dtype(bits), copy=False)


def to_signed(total: np.ndarray, bits: int) -> np.ndarray:
    """A sum modulo 2^k read as signed k-bit integers (int64)."""
    total = np.asarray(total)
    if bits == 64:
        return total.astype(np.uint64).view(np.int64)
    t = total.astype(np.int64)
    return np.where(t >= (1 << (bits - 1)), t - (1 << bits), t)


def dequantize_sum(total: np.ndarray, spec: QuantizationSpec) -> np.ndarray:
    """The float32 value of a modular sum: read it as a signed k-bit integer, divide by scale."""
    return (to_signed(total, spec.bits).astype(np.float64) / spec.scale).astype(np.float32)
