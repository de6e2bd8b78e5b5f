"""Build the aggregation pipeline a config asks for, from the inside out.

The stack, innermost first (a stage's client half runs before those of the stages inside it;
its server half runs after theirs)::

    1. the sum          PlainSum; ModularPlainSum / ExactIntegerSum (fast twins);
                        SecureSum, the real protocol        (secure, quant_bits, secagg_*, secagg_active)
    2. integers         NormProofStage: clip to M, fixed point, commit + prove (secure) or the
                        same decision in plaintext (fast twin)       (norm_bound, norm_kind)
                        or [ClientClipStage,] QuantizeStage, [+ DistributedDiscreteGaussianStage]
                                                      (client_clip, quant_bits, quant_range, noise)
    3. central noise    discrete Gaussian noise on the unmasked sum, on a grid
                                                                     (noise = "central", noise_std)
    4. mean             MeanStage(weighting)                         (weighting, max_weight)
    5. server baseline  plaintext clip / threshold / norm probe per update
                                                                     (server_clip, server_threshold)

The norm-bound stage sits directly above the sum because its commitment must be to the exact
integer vector that is masked; it therefore quantizes by itself, and clips the raw update (so
the mean may not scale updates by their example counts: ``weighting`` must be "uniform" or
"fixed"). Central noise sits inside the mean so that it is added to the sum, as in the paper's
code. Server baselines sit outermost and see each client's raw update; they exist only in
plaintext. ``secure = false`` with ``quantize = true`` (or with a norm bound) runs the same
integer pipeline as ``secure = true`` without cryptography, so both give bit-identical models.

With noise, the stages' L2 sensitivity comes from
:func:`fl.aggregation.sensitivity.mechanism_sensitivity` (clip, weighting, rounding; doubled for the
replace-one relation; plus the central noise's grid)
and is handed to the accountant; a noised configuration that nothing bounds is refused. With
noise no round fails for a reason the clients' data decides: the mean divides by a public
number (``K``, or ``K * max_weight`` under "examples"), the server threshold replaces a rejected
update by zeros instead of leaving it out, and an honest client sends zeros for a non-finite
update (:mod:`fl.aggregation.prepare`; docs/privacy.md).
"""
from __future__ import annotations

import dataclasses

from fl.settings import ConfigError
from secagg.errors import ConfigError as SecAggConfigError
from secagg.quantize import QuantizationSpec

from .base import Aggregator
from .config import AggregationConfig
from .distributed_noise import DistributedDiscreteGaussianStage
from .mean import MeanStage, PlainSum
from .norm_proof import ExactIntegerSum, NormProofStage
from .privacy import CentralGaussianNoiseStage, DpAccounting
from .robust import ClientClipStage, NormProbeStage, ServerClipStage, ServerThresholdStage
from .secure_sum import ModularPlainSum, QuantizeStage, SecureSum
from .sensitivity import mechanism_sensitivity

__all__ = ["build_pipeline", "norm_scale", "NORM_INT_BOUND"]

#: the integer bound a norm-bounded update is quantized to (``s * M``), unless the modulus
#: needs less: 2^20 keeps the L2 proof's range proofs at 32 bits up to d ~ 2^21 coordinates
NORM_INT_BOUND = 1 << 20


def norm_scale(bound: float, *, bits: int, clients_per_round: int) -> float:
    """Fixed-point scale ``s`` of the norm-bound stage.

    Each coordinate of a clipped, quantized update lies within ``s * M``, so the sum of
    ``clients_per_round`` of them stays inside ``[-2^(bits-1), 2^(bits-1))`` (no wrap-around in
    Z_(2^bits)) when ``s * M <= (2^(bits-1) - 1) / clients_per_round``.

    Raises:
      ConfigError: the modulus leaves less than one integer step per client.
    """
    room = ((1 << (bits - 1)) - 1) // clients_per_round
    if room < 1:
        raise ConfigError(f"aggregation.quant_bits: 2^{bits} cannot hold the sum of {clients_per_round} "
                          "norm-bounded updates without wrapping around")
    return min(NORM_INT_BOUND, room) / bound


def build_pipeline(cfg: AggregationConfig, *, clients_per_round: int, dim: int,
                   population: int | None = None, with_replacement: bool = False,
                   delta: float = 1e-5) -> Aggregator:
    """The aggregator for ``cfg``.

    Args:
      cfg: the validated ``[aggregation]`` section.
      clients_per_round: clients sampled per round (sizes SecAgg thresholds and the no-wrap rule).
      dim: length of the flat model update.
      population: clients that can be sampled (for the DP accountant's sampling rate); the
        accountant is left out when it is unknown.
      with_replacement: clients are sampled with replacement (one may fill several slots).
      delta: the DP accountant's delta.

    Returns:
      The outermost :class:`~fl.aggregation.Aggregator` of the stack.

    Raises:
      ConfigError: settings that cannot be built together, or noise whose sensitivity nothing
        bounds (naming the key).
    """
    if clients_per_round < 1 or dim < 1:
        raise ValueError(f"build_pipeline: clients_per_round and dim must be positive, got {clients_per_round}, {dim}")
    cfg.validate()
    dp = _DpFacts(clients_per_round=clients_per_round, dim=dim, population=population,
                  with_replacement=with_replacement, delta=delta)
    pipeline = _sum(cfg)  # 1
    pipeline = _integers(cfg, pipeline, dp)  # 2
    pipeline = _central_noise(cfg, pipeline, dp)  # 3
    pipeline = MeanStage(pipeline, cfg.weighting, max_weight=cfg.max_weight or None,
                         public_denominator=cfg.noise != "none")  # 4
    pipeline = _server_baseline(cfg, pipeline)  # 5
    return pipeline


@dataclasses.dataclass(frozen=True)
class _DpFacts:
    """What the sensitivity and the accountant need besides the config."""

    clients_per_round: int
    dim: int
    population: int | None
    with_replacement: bool
    delta: float


def _quant_spec(cfg: AggregationConfig, clients_per_round: int):
    """The quantizer's spec (with room for distributed noise), or ``None`` off the quantized path."""
    if cfg.norm_bound > 0 or not (cfg.secure or cfg.quantize or cfg.noise == "distributed"):
        return None
    noise = cfg.noise_std if cfg.noise == "distributed" else 0.0
    try:
        return QuantizationSpec(cfg.quant_bits, cfg.quant_range, clients_per_round, noise_std=noise)
    except SecAggConfigError as e:
        raise ConfigError(f"aggregation.quant_bits: {e}") from None


def _sensitivity(cfg: AggregationConfig, dp: _DpFacts):
    """The sensitivity of the noised sum (and, with central noise, its grid)."""
    spec = _quant_spec(cfg, dp.clients_per_round)
    return mechanism_sensitivity(
        cfg, dim=dp.dim, clients_per_round=dp.clients_per_round, quant_scale=None if spec is None else spec.scale,
        with_replacement=dp.with_replacement, population=dp.population, delta=dp.delta)


def _accounting(cfg: AggregationConfig, dp: _DpFacts, sens=None):
    """The sensitivity of the noised sum (always checked) and, with a population, its accountant."""
    sens = _sensitivity(cfg, dp) if sens is None else sens
    if not dp.population:
        return None
    if not dp.delta < 1.0 / dp.population:
        raise ConfigError(f"aggregation.noise: the accountant's delta {dp.delta:g} is not below 1 / population "
                          f"(1/{dp.population}); a delta that large allows a mechanism that publishes one client's "
                          "data outright, so no epsilon at it means anything")
    if dp.clients_per_round > dp.population:
        raise ConfigError(f"fedavg.clients_per_round: {dp.clients_per_round} clients cannot be drawn without "
                          f"replacement from {dp.population}")
    # fixed-size sampling without replacement, accounted under replace-one: swapping one client's
    # update x for x' moves the sum by ||x - x'|| <= 2C, plus the central noise's grid term
    # (docs/privacy.md)
    return DpAccounting(sensitivity=sens.replace_one, sampling_rate=dp.clients_per_round / dp.population,
                        delta=dp.delta, sampling="fixed_size",
                        population=dp.population, sample_size=dp.clients_per_round)


def _sum(cfg: AggregationConfig) -> Aggregator:
    """1. The innermost sum."""
    if cfg.secure:
        return SecureSum(bits=cfg.quant_bits, graph=cfg.secagg_graph, tolerated_dropout=cfg.secagg_dropout,
                         active=cfg.secagg_active)
    if cfg.norm_bound > 0:
        return ExactIntegerSum()
    if cfg.quantize or cfg.noise == "distributed":
        return ModularPlainSum(cfg.quant_bits)
    return PlainSum()


def _integers(cfg: AggregationConfig, inner: Aggregator, dp: _DpFacts) -> Aggregator:
    """2. Turn float updates into the integers that are summed (and masked, under SecAgg)."""
    if cfg.norm_bound > 0:
        scale = norm_scale(cfg.norm_bound, bits=cfg.quant_bits, clients_per_round=dp.clients_per_round)
        stage = NormProofStage(inner, bound=cfg.norm_bound, norm=cfg.norm_kind, scale=scale, secure=cfg.secure)
        try:
            stage.check_dimension(dp.dim)
        except ValueError as e:
            raise ConfigError(f"aggregation.norm_kind: {e}") from None
        return stage
    spec = _quant_spec(cfg, dp.clients_per_round)
    if spec is not None:
        if cfg.noise == "distributed":
            accounting = _accounting(cfg, dp)  # its ConfigError names its own key
            try:
                inner = DistributedDiscreteGaussianStage(
                    inner, cfg.noise_std, scale=spec.scale, num_clients=dp.clients_per_round,
                    modulus=1 << cfg.quant_bits, accounting=accounting, dim=dp.dim, seeded=cfg.noise_seeded)
            except ValueError as e:
                raise ConfigError(str(e) if str(e).startswith("aggregation.") else f"aggregation.noise_std: {e}") \
                    from None
        try:
            inner = QuantizeStage(inner, bits=spec.bits, clip_range=spec.clip_range, num_clients=spec.num_clients,
                                  noise_std=spec.noise_std)
        except SecAggConfigError as e:
            raise ConfigError(f"aggregation.quant_bits: {e}") from None
    if cfg.client_clip > 0:  # inside the mean: it clips the weighted vector
        inner = ClientClipStage(inner, cfg.client_clip)
    return inner


def _central_noise(cfg: AggregationConfig, inner: Aggregator, dp: _DpFacts) -> Aggregator:
    """3. Discrete Gaussian noise of std ``noise_std`` per coordinate on the (unmasked) sum, on the
    grid the sensitivity chose."""
    if cfg.noise != "central":
        return inner
    sens = _sensitivity(cfg, dp)  # its ConfigError names its own key
    try:
        return CentralGaussianNoiseStage(inner, cfg.noise_std, accounting=_accounting(cfg, dp, sens),
                                         seeded=cfg.noise_seeded, grid=sens.grid or None, dim=dp.dim)
    except ValueError as e:
        raise ConfigError(str(e) if str(e).startswith("aggregation.") else f"aggregation.noise_std: {e}") from None


def _server_baseline(cfg: AggregationConfig, inner: Aggregator) -> Aggregator:
    """5. Plaintext defenses that inspect each update; in plaintext runs a norm probe otherwise.

    The probe only records update norms (honest percentiles, attacker) for the metrics; under
    secure aggregation nobody can see them, so it is left out.
    """
    if cfg.server_clip > 0:
        inner = ServerClipStage(inner, cfg.server_clip)
    if cfg.server_threshold > 0:
        inner = ServerThresholdStage(inner, cfg.server_threshold, zero_rejected=cfg.noise != "none")
    if not cfg.secure and cfg.server_clip == 0 and cfg.server_threshold == 0:
        inner = NormProbeStage(inner)
    return inner
