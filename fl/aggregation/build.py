"""Build the aggregation pipeline a config asks for, from the inside out.

The stack, innermost first (a stage's client half runs before those of the stages inside it;
its server half runs after theirs)::

    1. the sum          PlainSum, or secure aggregation            (aggregation.secure)
    2. quantization     fixed point mod 2^k around the secure sum   (quant_bits, quant_range)
    3. noise            Gaussian noise on the sum                   (noise, noise_std)
    4. mean             MeanStage(weighting)                        (weighting)
    5. norm bound       honest clients clip, proven in ZK if secure (norm_bound, norm_kind)
    6. server baseline  plaintext clip or threshold per update      (server_clip, server_threshold)

Clipping (5, 6) sits outside the mean so that it sees each client's raw update before the mean
stage scales it by the client's weight; noise (3) sits inside it so that it is added to the sum,
as in the paper's code. Steps 1-3 and 5-6 are switched off in the plain configuration, which is
``MeanStage(PlainSum(), weighting)``.
"""
from __future__ import annotations

from fl.config import ConfigError

from .base import Aggregator
from .config import AggregationConfig
from .mean import MeanStage, PlainSum

__all__ = ["build_pipeline"]


def build_pipeline(cfg: AggregationConfig, *, clients_per_round: int, dim: int) -> Aggregator:
    """The aggregator for ``cfg``.

    Args:
      cfg: the validated ``[aggregation]`` section.
      clients_per_round: clients sampled per round (sizes SecAgg thresholds and graphs).
      dim: length of the flat model update.

    Returns:
      The outermost :class:`~fl.aggregation.Aggregator` of the stack.

    Raises:
      ConfigError: a setting asks for a stage this build does not provide (naming the key).
    """
    if clients_per_round < 1 or dim < 1:
        raise ValueError(f"build_pipeline: clients_per_round and dim must be positive, got {clients_per_round}, {dim}")
    cfg.validate()
    pipeline = _sum(cfg, clients_per_round=clients_per_round, dim=dim)  # 1
    pipeline = _quantization(cfg, pipeline)  # 2
    pipeline = _noise(cfg, pipeline)  # 3
    pipeline = MeanStage(pipeline, cfg.weighting)  # 4
    pipeline = _norm_bound(cfg, pipeline)  # 5
    pipeline = _server_baseline(cfg, pipeline)  # 6
    return pipeline


def _not_available(key: str, what: str) -> ConfigError:
    return ConfigError(f"aggregation.{key}: {what} is not available in this build yet")


def _sum(cfg: AggregationConfig, *, clients_per_round: int, dim: int) -> Aggregator:
    """1. The innermost sum: plaintext, or secure aggregation over ``clients_per_round`` clients."""
    if cfg.secure:
        raise _not_available("secure", "secure aggregation")
    return PlainSum()


def _quantization(cfg: AggregationConfig, inner: Aggregator) -> Aggregator:
    """2. Fixed-point quantization mod ``2**quant_bits``; only the secure sum needs it."""
    if cfg.secure:
        raise _not_available("secure", "quantization for the secure sum")
    return inner


def _noise(cfg: AggregationConfig, inner: Aggregator) -> Aggregator:
    """3. Gaussian noise of std ``noise_std`` per coordinate on the sum."""
    if cfg.noise != "none":
        raise _not_available("noise", f"{cfg.noise} noise")
    return inner


def _norm_bound(cfg: AggregationConfig, inner: Aggregator) -> Aggregator:
    """5. Honest clients clip to ``norm_bound`` (and prove it under secure aggregation)."""
    if cfg.norm_bound > 0:
        raise _not_available("norm_bound", "client-side norm bounding")
    return inner


def _server_baseline(cfg: AggregationConfig, inner: Aggregator) -> Aggregator:
    """6. Plaintext defenses that inspect each update: clip to, or drop above, a norm."""
    if cfg.server_clip > 0:
        raise _not_available("server_clip", "server-side clipping")
    if cfg.server_threshold > 0:
        raise _not_available("server_threshold", "the server-side norm threshold")
    return inner
