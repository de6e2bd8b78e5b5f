"""The one place that derives the L2 sensitivity of the noised sum from the stages actually built.

The accountant's noise multiplier is ``noise std on the sum / sensitivity``; a sensitivity that
is too small makes every reported epsilon false. One client's contribution to the sum is bounded
by walking the stack from the client's raw update to the noised sum (docs/privacy.md):

1. **the clip** - the smallest L2 bound that some stage enforces on an honest client's slot:
   ``norm_bound`` (L2: M; L-infinity: M sqrt(d)), ``server_clip`` / ``server_threshold`` (times
   the weight, see 2), ``client_clip`` (applied after weighting), the quantizer's coordinate
   clip to ``[-r, r]`` (r sqrt(d), after weighting);
2. **the weighting** - ``"examples"`` multiplies the update by its weight *after* the server
   baselines, so their bound is multiplied by the largest weight: the public cap
   ``aggregation.max_weight`` that the server enforces on every claim (``min(claim, W)``),
   never the data's largest example count (which ``dp_sensitivity`` would then publish, and
   which a replace-one neighbour could exceed);
3. **the rounding** - the quantizer's stochastic rounding moves each coordinate by less than one
   integer unit, so it adds up to ``sqrt(d) / scale`` to the L2 norm (the norm-bound stage
   truncates toward 0 and adds nothing);
4. **float32 slack** - the clipped, weighted float32 vector may exceed its bound by a few ulps:
   a factor ``1 + 2^-20`` covers it; and the **sum** is rounded to float32 before the noise is
   added (the plaintext sum accumulates in float64, the secure sum is dequantized to float32), which
   moves it by at most ``2^-24 ||S||`` with ``||S|| <= K C'``. Between neighbours that adds up to
   ``2^-24 (||S|| + ||S'||) <= 2^-23 K C'``, covered with the float64 accumulation by the factor
   ``1 + 2^-23 K`` on one client's bound (``SUM_SLACK_PER_CLIENT``; at K = 31 that is
   ``1 + 3.7e-6``, where ``1 + 2^-20`` alone was exceeded: ``|fl(S + x) - fl(S)| = 1.0000019 ||x||``
   was measured);
5. **the central noise's grid** - central noise is a discrete Gaussian on the public grid
   ``gamma Z^d``: the float32 sum ``s`` is rounded to ``round(s / gamma)`` before the integer
   noise is added (docs/privacy.md, assumption 2). Rounding to the nearest grid point moves each
   coordinate by at most ``gamma / 2``, so two neighbouring sums ``s``, ``s'`` land at most
   ``||s - s'|| + 2 (gamma / 2) sqrt(d) = ||s - s'|| + gamma sqrt(d)`` apart: the term
   ``gamma sqrt(d)`` is added once to the sensitivity *between the two sums* (it is not one
   client's, so it is not doubled by the replace-one relation): :attr:`Sensitivity.replace_one`.
   :func:`central_grid` picks ``gamma`` as a power of two (so ``s / gamma`` and the release
   ``(round(s / gamma) + noise) * gamma`` are exact in float64) with ``gamma sqrt(d)`` at most
   :data:`GRID_INFLATION` of the rest of the sensitivity, coarser only where the sampler's ceiling
   (``std / gamma <= MAX_SAMPLER_SIGMA``) needs it, and refuses a grid whose term would exceed
   :data:`MAX_GRID_INFLATION` of it;
6. **sampling** - the bound C above is one client's contribution. The accountant's relation is
   replace-one under fixed-size sampling without replacement, whose sensitivity is ``2C``
   (:func:`fl.aggregation.build` doubles it; docs/privacy.md). Sampling **with** replacement
   puts one client into ``j`` slots, moving the sum by up to ``2jC`` with a data-independent but
   unbounded-in-K ``j``; no accountant here covers it, so noise with it is refused.

The float32 rounding of 4 is relative only between float32's underflow and overflow: the bound
must keep ``K C'`` at most :data:`FLOAT32_SUM_MAX` (``2^100``; near ``2^128`` the sum overflows to
``inf`` and neighbouring outputs fall on different edges of the grid), and ``C'`` at least
``sqrt(d)`` :data:`FLOAT32_TINY` (``2^-100``; subnormal coordinates round by ``2^-150``
absolutely, up to ``sqrt(d) 2^-150`` on the norm, which is then at most ``2^-50 C'``). A bound
outside is refused.

A noised configuration that no stage bounds is refused with a :class:`~fl.config.ConfigError`
naming the reason; it never gets a number.
"""
from __future__ import annotations

import dataclasses
import math

from fl.settings import ConfigError

from .config import AggregationConfig
from .discrete_gaussian import MAX_SAMPLER_SIGMA, MIN_SAMPLER_SIGMA

__all__ = ["Sensitivity", "mechanism_sensitivity", "central_grid", "FLOAT32_SLACK", "SUM_SLACK_PER_CLIENT",
           "GRID_INFLATION", "MAX_GRID_INFLATION", "FLOAT32_SUM_MAX", "FLOAT32_TINY"]

#: the largest K C' accepted with noise: float32's rounding of the sum stays relative below it
FLOAT32_SUM_MAX = 2.0**100
#: C' must be at least sqrt(d) times this with noise: subnormal rounding stays below 2^-50 C'
FLOAT32_TINY = 2.0**-100
#: relative excess of a float32 vector clipped (and weighted) in float32 over its bound
FLOAT32_SLACK = 2.0**-20
#: relative error, per client in the sum, of rounding the sum to float32 before the noise
SUM_SLACK_PER_CLIENT = 2.0**-23
#: the share of the replace-one sensitivity that the central noise's grid term ``gamma sqrt(d)``
#: is chosen to stay within (``gamma`` the largest power of two that does)
GRID_INFLATION = 2.0**-20
#: the largest share the grid term may reach where the sampler's ceiling needs a coarser grid;
#: beyond it the configuration is refused
MAX_GRID_INFLATION = 2.0**-10


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """The L2 bound on one client's contribution to the noised sum, and where it comes from.

    Attributes:
      clip: the L2 bound of one slot's vector before rounding (weights included).
      source: the setting that gives ``clip``.
      rounding: L2 added by stochastic rounding, in float units.
      clients: K, the summands (the float32 rounding of the sum grows with it).
      grid: ``gamma``, the spacing of the central noise's grid (0: no grid, e.g. distributed noise,
        whose sum is already integer).
      dim: d, the coordinates rounded onto the grid.
    """

    clip: float
    source: str
    rounding: float = 0.0
    clients: int = 1
    grid: float = 0.0
    dim: int = 1

    @property
    def value(self) -> float:
        """``(clip * (1 + FLOAT32_SLACK) + rounding) * (1 + SUM_SLACK_PER_CLIENT * clients)``: one
        client's contribution to the float32 sum the noise is added to."""
        return (self.clip * (1.0 + FLOAT32_SLACK) + self.rounding) * (1.0 + SUM_SLACK_PER_CLIENT * self.clients)

    @property
    def grid_term(self) -> float:
        """``gamma sqrt(d)``: how much farther apart rounding onto the grid can put two sums."""
        return self.grid * math.sqrt(self.dim)

    @property
    def replace_one(self) -> float:
        """The L2 sensitivity of what is noised under replace-one: ``2 C' + gamma sqrt(d)`` (one
        client's ``x`` becomes ``x'``, both within ``C'``; then both sums are rounded onto the grid)."""
        return 2.0 * self.value + self.grid_term


def central_grid(sensitivity: float, std: float, dim: int) -> float:
    """The spacing ``gamma`` of the central noise's grid, a power of two.

    ``gamma`` is the largest power of two with ``gamma sqrt(d) <= GRID_INFLATION * sensitivity``,
    unless the discrete Gaussian of parameter ``std / gamma`` would then exceed the sampler's
    ceiling ``MAX_SAMPLER_SIGMA``; then it is the smallest power of two that keeps ``std / gamma``
    within the ceiling, provided its term stays within ``MAX_GRID_INFLATION * sensitivity``.

    Args:
      sensitivity: the replace-one sensitivity of the float sum, ``2 C'`` (without the grid).
      std: the noise std on the sum (> 0).
      dim: d.

    Returns:
      ``gamma``.

    Raises:
      ConfigError: (``aggregation.noise_std``) no power of two meets both the ceiling and
        :data:`MAX_GRID_INFLATION`: the noise multiplier is above about
        ``MAX_GRID_INFLATION * MAX_SAMPLER_SIGMA / sqrt(d)``.
    """
    root_d = math.sqrt(dim)
    if not (sensitivity > 0 and math.isfinite(sensitivity) and std > 0 and math.isfinite(std)):
        raise ValueError(f"central_grid: sensitivity and std must be positive and finite, got {sensitivity!r}, {std!r}")
    gamma = 2.0 ** math.floor(math.log2(GRID_INFLATION * sensitivity / root_d))
    if std / gamma > MAX_SAMPLER_SIGMA:
        gamma = 2.0 ** math.ceil(math.log2(std / MAX_SAMPLER_SIGMA))
        while std / gamma > MAX_SAMPLER_SIGMA:  # log2 rounding
            gamma *= 2.0
        if gamma * root_d > MAX_GRID_INFLATION * sensitivity:
            raise ConfigError(
                f"aggregation.noise_std: central noise of std {std:g} on a sum of sensitivity {sensitivity:.4g} over "
                f"{dim} coordinates (noise multiplier {std / sensitivity:.4g}) needs a grid of at least {gamma:.3g} "
                f"(the discrete Gaussian sampler's ceiling is {MAX_SAMPLER_SIGMA:.3g} grid units), and rounding onto "
                f"it would add {gamma * root_d / sensitivity:.3g} of the sensitivity, more than "
                f"{MAX_GRID_INFLATION:.3g}: "
                "lower aggregation.noise_std (a noise multiplier above about "
                f"{MAX_GRID_INFLATION * MAX_SAMPLER_SIGMA / root_d:.4g} at this size), or raise the clip bound "
                "(aggregation.client_clip, server_clip or norm_bound)")
    if std / gamma < MIN_SAMPLER_SIGMA:
        raise ConfigError(
            f"aggregation.noise_std: central noise of std {std:g} is {std / gamma:.3g} units of its grid {gamma:.3g}, "
            f"below the discrete Gaussian sampler's floor {MIN_SAMPLER_SIGMA:.3g} (noise multiplier "
            f"{std / sensitivity:.3g}: it would add nothing and protect nothing); raise aggregation.noise_std or set "
            "aggregation.noise = \"none\"")
    return gamma


def mechanism_sensitivity(
    cfg: AggregationConfig,
    *,
    dim: int,
    clients_per_round: int,
    quant_scale: float | None,
    with_replacement: bool = False,
    population: int | None = None,
    delta: float = 1e-5,
) -> Sensitivity:
    """The sensitivity of the sum that ``cfg``'s noise is added to (with central noise, of its
    rounding onto the noise's grid, whose spacing it chooses: :func:`central_grid`).

    Args:
      cfg: the validated ``[aggregation]`` section.
      dim: length of the flat update.
      clients_per_round: K.
      quant_scale: integer units per float unit of the stochastic quantizer in the stack, or
        ``None`` where no stage rounds stochastically (plaintext, or the norm-bound stage).
      with_replacement: whether clients are sampled with replacement (refused: see 5 above).
      population: N, the clients that can be sampled.
      delta: the accountant's delta.

    Returns:
      The :class:`Sensitivity`.

    Raises:
      ConfigError: nothing bounds one client's contribution, naming the reason; or central noise
        too large for its grid (:func:`central_grid`).
    """
    examples = cfg.weighting == "examples"
    weight = (float(cfg.max_weight) if cfg.max_weight > 0 else None) if examples else 1.0
    root_d = math.sqrt(dim)
    bounds: list[tuple[float, str]] = []
    if cfg.norm_bound > 0:  # clips the raw update; "examples" is refused with it
        bounds.append((cfg.norm_bound if cfg.norm_kind == "l2" else cfg.norm_bound * root_d,
                       f"aggregation.norm_bound ({cfg.norm_kind})"))
    if weight is not None:
        for key in ("server_clip", "server_threshold"):
            if getattr(cfg, key) > 0:
                bounds.append((getattr(cfg, key) * weight, f"aggregation.{key}"
                               + (f" x aggregation.max_weight {weight:g}" if examples else "")))
    if cfg.client_clip > 0:
        bounds.append((cfg.client_clip, "aggregation.client_clip"))
    if quant_scale is not None:
        bounds.append((cfg.quant_range * root_d, "aggregation.quant_range x sqrt(dim)"))
    if not bounds:
        why = ("aggregation.max_weight: \"examples\" multiplies each clipped update by its weight after "
               "the server's clip, and no public cap bounds the weights; set aggregation.max_weight, use "
               "\"fixed\", or aggregation.client_clip" if examples and (cfg.server_clip > 0 or cfg.server_threshold > 0)
               else "aggregation.noise: nothing bounds one client's contribution to the noised sum, so no epsilon "
                    "holds; set aggregation.client_clip (or server_clip / norm_bound)")
        raise ConfigError(why)
    clip, source = min(bounds)
    rounding = root_d / quant_scale if quant_scale is not None else 0.0
    if with_replacement and clients_per_round > 1:
        raise ConfigError(
            "fedavg.sampling: \"with_replacement\" puts one client into several slots of a round, and no "
            "accountant here covers that sampling (the Poisson and fixed-size-without-replacement analyses do not), "
            "so no epsilon would hold; use fedavg.sampling = \"without_replacement\" with aggregation.noise, or "
            "aggregation.noise = \"none\"")
    sens = Sensitivity(clip=clip, source=source, rounding=rounding, clients=max(1, int(clients_per_round)),
                       dim=max(1, int(dim)))
    if cfg.noise != "none":
        if sens.value * sens.clients > FLOAT32_SUM_MAX:
            raise ConfigError(
                f"{source}: a bound of {clip:.4g} lets the float32 sum of {sens.clients} clients reach "
                f"{sens.value * sens.clients:.3g}, beyond {FLOAT32_SUM_MAX:.3g}: near float32's overflow its rounding is no "
                "longer relative (an inf sum lands on the grid's edge) and no epsilon holds; lower the bound")
        if sens.value < root_d * FLOAT32_TINY:
            raise ConfigError(
                f"{source}: a bound of {clip:.4g} over {dim} coordinates puts the clipped values among float32's "
                f"subnormals, whose rounding is absolute, not relative (a clipped update can round up to twice its "
                f"bound), so no epsilon holds; raise the bound above {root_d * FLOAT32_TINY:.3g}")
    if cfg.noise == "central" and cfg.noise_std > 0:
        sens = dataclasses.replace(sens, grid=central_grid(sens.replace_one, cfg.noise_std, dim))
    return sens
