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
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .errors import ConfigError
from .prg import ring_dtype

__all__ = ["QuantizationSpec", "quantize", "dequantize_sum"]

_MAX_LEVELS = 1 << 52


@dataclasses.dataclass(frozen=True)
class QuantizationSpec:
    """A no-wrap fixed-point format for summing ``num_clients`` values.

    Attributes:
      bits: k, the ring Z_(2^k), ``2 <= k <= 64``.
      clip_range: r > 0; coordinates are clipped to [-r, r].
      num_clients: the most clients whose values may be summed.

    Raises:
      ConfigError: a parameter out of range, or no room for even one level per client.
    """

    bits: int
    clip_range: float
    num_clients: int

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 64:
            raise ConfigError(f"bits: expected an int in 2..64, got {self.bits!r}")
        if not (np.isfinite(self.clip_range) and self.clip_range > 0):
            raise ConfigError(f"clip_range: expected a finite positive float, got {self.clip_range!r}")
        if isinstance(self.num_clients, bool) or not isinstance(self.num_clients, int) or self.num_clients < 1:
            raise ConfigError(f"num_clients: expected a positive int, got {self.num_clients!r}")
        if self.levels < 1:
            raise ConfigError(
                f"quantization: {self.num_clients} clients cannot be summed in {self.bits} bits without "
                f"wrapping (need 2^(k-1) - 1 >= n); raise bits or lower num_clients"
            )

    @property
    def levels(self) -> int:
        """M, the largest quantized magnitude of one client's coordinate."""
        return min(((1 << (self.bits - 1)) - 1) // self.num_clients, _MAX_LEVELS)

    @property
    def scale(self) -> float:
        return self.levels / float(self.clip_range)

    @property
    def step(self) -> float:
        """The quantization step r / M (the value of one integer unit)."""
        return float(self.clip_range) / self.levels


def quantize(x: np.ndarray, spec: QuantizationSpec, rng: np.random.Generator) -> np.ndarray:
    """Clip, scale and stochastically round ``x``; return it modulo 2^k (uint32 or uint64)."""
    y = np.clip(np.asarray(x, dtype=np.float64), -spec.clip_range, spec.clip_range) * spec.scale
    lo = np.floor(y)
    q = lo.astype(np.int64) + (rng.random(y.shape) < (y - lo))
    dtype = ring_dtype(spec.bits)
    out = q.astype(np.uint64) if dtype.itemsize == 8 else q
    mask = (1 << spec.bits) - 1
    if spec.bits < 64:
        out = out & (np.uint64(mask) if dtype.itemsize == 8 else np.int64(mask))
    return out.astype(dtype)


def dequantize_sum(total: np.ndarray, spec: QuantizationSpec) -> np.ndarray:
    """The float32 value of a modular sum: read it as a signed k-bit integer, divide by scale."""
    total = np.asarray(total)
    if spec.bits == 64:
        signed = total.astype(np.uint64).view(np.int64)
    else:
        signed = total.astype(np.int64)
        signed = np.where(signed >= (1 << (spec.bits - 1)), signed - (1 << spec.bits), signed)
    return (signed.astype(np.float64) / spec.scale).astype(np.float32)
