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
smaller: the stage records the noise of the clients whose shares are actually in the sum
(``noise_std_sum_realised``, from the samplers' parameters; ``noise_std_sum_drawn``, measured on
the draws themselves), and the accountant composes each released round with its own realised
noise. ``std`` is a standard deviation on the sum, as for the central stage.

**Client sigma floor and the tau term.** A sum of ``n`` discrete Gaussians of parameter
``sigma`` is not a discrete Gaussian; Kairouz et al. (2021) bound the gap: with
``tau = 10 * sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k+1))`` the sum of ``d``-dimensional
vectors satisfies (eps^2 / 2)-concentrated DP with ``eps^2 = Delta^2 / (n sigma^2) + tau d / 2``
(Delta: the L2 sensitivity in integer units). The stage refuses ``sigma < 1`` (below it the
draws round toward 0: at 0.15 every draw is 0) and, with an accountant, any ``sigma`` whose tau
term is above 1 % of ``1 / z^2``; below that it folds the term in: the accountant gets
``z_eff = (1 / z^2 + tau d / 2)^(-1/2)`` instead of ``z = sqrt(n) sigma / Delta``.

**Client sigma ceiling.** The exact sampler (:mod:`fl.aggregation.discrete_gaussian`) takes
``sigma <= 2^31`` (``MAX_CLIENT_SIGMA``), which keeps its integers and its float estimates well
inside their exact ranges; every configuration up to 32 bits stays below it (the headroom rule
keeps ``sigma * sqrt(n) * 5.4 < 2^31``, so ``sigma < 2^29``); 64-bit rings with noise need fewer
``quant_bits`` or less noise.

**Headroom.** The pipeline builder passes the noise to ``secagg.quantize.QuantizationSpec``,
which lowers the quantization levels so that ``n`` clipped values plus the noise stay inside the
modulus except with probability below 2^-20 per coordinate (the rule is in docs/privacy.md).

**Samplers** (numpy, vectorised; their uniform bits come from the OS CSPRNG, or with
``seeded=True`` from ``ctx.rng("distributed_noise", client)`` for a reproducible simulation,
recorded as ``noise_seeded = 1``):

* ``"discrete_gaussian"`` - the rejection sampler of Canonne, Kamath and Steinke (2020,
  algorithm 3) with every Bernoulli decision exact (:mod:`fl.aggregation.discrete_gaussian`):
  a discrete Laplace proposal of scale ``t = floor(sigma) + 1``, accepted with probability
  ``exp(-(|y| - sigma^2/t)^2 / (2 sigma^2))``. Its variance is at most sigma^2
  and within 1e-9 relative of it for sigma >= 2. The sum of the clients' discrete Gaussians is
  close to, not exactly, a discrete Gaussian (Kairouz et al. bound the gap).
* ``"skellam"`` - ``Poisson(mu) - Poisson(mu)`` with ``mu = sigma^2 / 2``; sums of Skellams are
  exactly Skellam, variance 2 mu.

Accounting composes the (tau-corrected) multiplier's RDP curve ``a / (2 z_eff^2)`` (all that
Kairouz et al.'s concentrated-DP bound gives) through Wang-Balle-Kasiviswanathan's general bound
for sampling without replacement (:func:`fl.aggregation.privacy.fixed_size_rdp_epsilon`), not the
continuous Gaussian's; the sensitivity comes from :mod:`fl.aggregation.sensitivity` (clip bound plus
the rounding's inflation). The Skellam sampler has no accountant here (its RDP bound differs):
with an accountant it is refused.
"""
from __future__ import annotations

import math

import numpy as np

from .base import AggregateResult, Aggregator, ClientMessage, RoundContext, Stage
from .discrete_gaussian import MAX_SAMPLER_SIGMA, sample_discrete_gaussian
from .noise_source import noise_generator
from .privacy import DpAccounting

__all__ = ["DistributedDiscreteGaussianStage", "sample_discrete_gaussian", "sample_skellam", "SAMPLERS", "ddg_tau",
           "MIN_CLIENT_SIGMA", "MAX_CLIENT_SIGMA", "MAX_TAU_SHARE"]

SAMPLERS = ("discrete_gaussian", "skellam")


def sample_skellam(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    """``size`` i.i.d. Skellam draws with variance ``sigma^2`` (``Poisson(mu) - Poisson(mu)``), int64."""
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"Skellam sigma must be positive, got {sigma!r}")
    mu = sigma * sigma / 2.0
    return rng.poisson(mu, size).astype(np.int64) - rng.poisson(mu, size).astype(np.int64)


def ddg_tau(sigma: float, n: int) -> float:
    """Kairouz et al.'s ``tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 sigma^2 k / (k+1))`` for ``n`` summands."""
    k = np.arange(1, max(int(n), 1), dtype=np.float64)
    return float(10.0 * np.sum(np.exp(-2.0 * math.pi**2 * sigma * sigma * k / (k + 1.0))))


#: below this client sigma (integer units) the discrete Gaussian draws round toward 0
MIN_CLIENT_SIGMA = 1.0
#: above this client sigma (integer units) the exact sampler refuses (its ceiling)
MAX_CLIENT_SIGMA = MAX_SAMPLER_SIGMA
#: the tau term may add at most this fraction to 1 / z^2 (larger: refused)
MAX_TAU_SHARE = 0.01


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
      accounting: if given, ``dp_epsilon`` is recorded each round; its sensitivity is in the
        float domain (it is multiplied by ``scale`` for the tau term).
      dim: the vector length (the tau term grows with it); needed with ``accounting``.
      seeded: draw the noise from the run seed (reproducible simulation only).

    Raises:
      ValueError: an argument out of range, or a client sigma too small to be accounted for
        (below :data:`MIN_CLIENT_SIGMA`, or with a tau term above :data:`MAX_TAU_SHARE`), or too
        large for the sampler (above :data:`MAX_CLIENT_SIGMA`).
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
        dim: int | None = None,
        seeded: bool = False,
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
        if accounting is not None and sampler != "discrete_gaussian":
            raise ValueError(f"distributed noise: no accountant for the {sampler!r} sampler here; "
                             "use \"discrete_gaussian\" to report an epsilon")
        if accounting is not None and not (dim and int(dim) > 0):
            raise ValueError("distributed noise: the accountant's tau term needs the vector length (dim)")
        self.std = float(std)
        self.scale = float(scale)
        self.num_clients = int(num_clients)
        self.modulus = int(modulus)
        self.sampler = sampler
        self.accounting = accounting
        self.dim = None if dim is None else int(dim)
        self.seeded = bool(seeded)
        #: standard deviation each client adds, in integer units
        self.client_sigma = self.std * self.scale / math.sqrt(self.num_clients)
        if self.client_sigma < MIN_CLIENT_SIGMA:
            raise ValueError(
                f"aggregation.noise_std: each client's share of the noise would be {self.client_sigma:.3g} integer "
                f"units (std * scale / sqrt(n) = {self.std} * {self.scale:.4g} / sqrt({self.num_clients})); below "
                f"{MIN_CLIENT_SIGMA} the discrete Gaussian draws round toward 0 and the sum is not the noise asked "
                "for: raise aggregation.noise_std or aggregation.quant_bits, or lower aggregation.quant_range")
        if self.client_sigma > MAX_CLIENT_SIGMA:
            raise ValueError(
                f"aggregation.noise_std: each client's share of the noise would be {self.client_sigma:.3g} integer "
                f"units (std * scale / sqrt(n) = {self.std} * {self.scale:.4g} / sqrt({self.num_clients})); above "
                f"2^{int(math.log2(MAX_CLIENT_SIGMA))} (the discrete Gaussian sampler's ceiling): lower aggregation.quant_bits "
                "(or raise aggregation.quant_range), or lower aggregation.noise_std")
        if accounting is not None:
            share = self._tau_share(self.num_clients)
            if share > MAX_TAU_SHARE:
                raise ValueError(
                    f"aggregation.noise_std: the sum of {self.num_clients} discrete Gaussians of sigma "
                    f"{self.client_sigma:.3g} is too far from a discrete Gaussian for the accountant (Kairouz et al.'s "
                    f"tau term is {share:.3g} of 1/z^2, more than {MAX_TAU_SHARE}): raise aggregation.noise_std "
                    "or aggregation.quant_bits")
        #: the realised noise multiplier of each released round, by round index (for accounting)
        self.realised: dict[int, float] = {}
        # round -> client id -> (sigma drawn with, sum of squares of the draw, length)
        self._drawn: dict[int, dict[int, tuple[float, float, int]]] = {}

    def _tau_share(self, n: int) -> float:
        """Kairouz et al.'s tau term as a fraction of 1/z^2 for ``n`` summands."""
        z = self._plain_multiplier(n)
        return ddg_tau(self.client_sigma, n) * self.dim / 2.0 * z * z

    def _plain_multiplier(self, n: int) -> float:
        return math.sqrt(n) * self.client_sigma / (self.accounting.sensitivity * self.scale)

    def effective_multiplier(self, n: int) -> float:
        """The multiplier handed to the accountant for ``n`` noised summands: tau-corrected."""
        if n < 1:
            return 0.0
        z = self._plain_multiplier(n)
        return 1.0 / math.sqrt(1.0 / (z * z) + ddg_tau(self.client_sigma, n) * self.dim / 2.0)

    def restore_history(self, rows) -> None:
        """Take back the multipliers of rounds run before a resume (rows with ``round`` and
        ``dp_noise_multiplier``, as the uninterrupted run recorded them)."""
        self.realised = {}
        for row in rows:
            z = row.get("dp_noise_multiplier")
            if z is not None and z == z:  # z == z: not NaN
                self.realised[int(row["round"])] = float(z)

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        v = message.vector
        if v.ndim != 1 or not np.issubdtype(v.dtype, np.unsignedinteger):
            raise ValueError(
                f"{self.name}: client {message.client_id} holds a {v.dtype} vector; distributed noise "
                "is added to the quantized (unsigned integer) vector - place it inside quantization"
            )
        if self.modulus > 2 ** (8 * v.dtype.itemsize):
            raise ValueError(f"{self.name}: modulus {self.modulus} does not fit the {v.dtype} vector")
        rng = noise_generator(ctx, self.name, message.client_id, seeded=self.seeded)
        draw = sample_discrete_gaussian if self.sampler == "discrete_gaussian" else sample_skellam
        noise = draw(rng, self.client_sigma, v.shape[0])
        # a simulation measurement: what this client actually drew (the server of a deployment
        # cannot know it)
        for old in [r for r in self._drawn if r < ctx.round_index]:
            del self._drawn[old]
        self._drawn.setdefault(ctx.round_index, {})[message.client_id] = (
            self.client_sigma, float(np.dot(nf := noise.astype(np.float64), nf)), int(noise.size))
        # two's complement in uint64 is addition mod 2^64; m divides 2^64, so masking gives mod m
        noised = (v.astype(np.uint64) + noise.view(np.uint64)) & np.uint64(self.modulus - 1)
        return message.replace(vector=noised.astype(v.dtype))

    def server(self, result: AggregateResult, ctx: RoundContext) -> AggregateResult:
        drawn = self._drawn.pop(ctx.round_index, {})
        noised = [drawn[c] for c in result.included if c in drawn]  # a client that skipped its noise adds none
        realised = math.sqrt(sum(sigma * sigma for sigma, _, _ in noised)) / self.scale
        measured = math.sqrt(sum(ss / max(size, 1) for _, ss, size in noised)) / self.scale
        ctx.record("noise_std_sum", self.std)
        ctx.record("noise_std_sum_realised", realised)
        ctx.record("noise_std_sum_drawn", measured)
        ctx.record("noise_clients", len(noised))
        ctx.record("noise_seeded", float(self.seeded))
        if self.accounting is not None:
            self.realised[ctx.round_index] = self.effective_multiplier(len(noised))
            # rounds with dropouts carried less noise: compose each round with its own
            self.accounting.record_multiplier(ctx, self.realised[ctx.round_index], self.realised)
        return result

    def __repr__(self) -> str:
        return (
            f"DistributedDiscreteGaussianStage(std={self.std}, scale={self.scale}, num_clients={self.num_clients}, "
            f"modulus=2^{self.modulus.bit_length() - 1}, sampler={self.sampler!r}, seeded={self.seeded})"
        )
