"""The ``[aggregation]`` section: which stages stand between the clients' updates and the model.

:func:`fl.aggregation.build.build_pipeline` turns an :class:`AggregationConfig` into the stage
stack. This module only holds the settings and checks that they make sense together.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from fl.settings import (
    BOOL,
    FRACTION,
    NON_NEGATIVE_NUMBER,
    POSITIVE_NUMBER,
    Check,
    ConfigError,
    parse_section,
    setting,
)

from .mean import WEIGHTINGS

__all__ = ["AggregationConfig", "NORM_KINDS", "NOISE_KINDS", "SECAGG_GRAPHS"]

#: norms a client's update can be bounded in
NORM_KINDS = {"l2": "Euclidean norm of the flat update", "linf": "largest absolute coordinate"}
#: where Gaussian noise is added to the sum
NOISE_KINDS = {
    "none": "no noise",
    "central": "the server adds N(0, noise_std^2) per coordinate to the sum (the paper's weak DP)",
    "distributed": "each client adds a share of the noise before masking, so the sum carries noise_std",
}
#: shapes of the SecAgg communication graph
SECAGG_GRAPHS = {"complete": "every pair of clients shares a mask (Bonawitz et al. 2017)",
                 "sparse": "a random sparse graph (SecAgg+, Bell et al. 2020)"}


@dataclasses.dataclass
class AggregationConfig:
    """Settings of the aggregation pipeline (TOML section ``[aggregation]``).

    Attributes:
      weighting: how the mean weights clients, one of :data:`fl.aggregation.WEIGHTINGS`.
      secure: aggregate with real secure aggregation (and real norm proofs when ``norm_bound``).
      norm_bound: L2 (or L-infinity) bound M that honest clients clip to; 0 turns it off. Under
        ``secure`` each client proves the bound in zero knowledge.
      norm_kind: the norm of ``norm_bound``, one of :data:`NORM_KINDS`.
      server_clip: plaintext baseline: the server clips each update to L2 <= value (0: off).
      server_threshold: plaintext baseline: the server drops updates with L2 > value (0: off).
      noise: where Gaussian noise is added, one of :data:`NOISE_KINDS`.
      noise_std: standard deviation per coordinate of the noise on the *sum* of updates.
      noise_seeded: draw the noise from the run seed (a reproducible simulation: anyone who
        knows the seed can remove it); the default draws it from the OS CSPRNG. Every round
        records ``noise_seeded`` (1 or 0).
      client_clip: each client clips its (weighted) update to L2 <= value before it is
        quantized and noised (not proven, unlike ``norm_bound``); 0: off. It gives distributed
        noise a sensitivity (docs/privacy.md).
      quant_bits: the SecAgg modulus is ``2**quant_bits``.
      quant_range: coordinates are clipped to ``[-quant_range, quant_range]`` before quantizing.
        With ``weighting = "examples"`` the quantized value is the client's example count times
        its update, so the range must cover that (the ``quantize_clipped`` column counts clipped
        coordinates); "uniform" and "fixed" quantize the update itself.
      max_weight: under ``weighting = "examples"``, a public cap W on each client's weight: the
        server uses ``min(claimed examples, W)`` (and refuses a negative or non-finite claim).
        With noise it is required: the sensitivity is ``server_clip * W`` (never the data's
        largest example count) and the mean divides by the public ``K * W`` (docs/privacy.md);
        0: no cap.
      secagg_graph: one of :data:`SECAGG_GRAPHS`.
      secagg_dropout: tolerated client dropout rate; sizes the thresholds and SecAgg+ graphs.
      secagg_active: run SecAgg's variant against an active server (signed messages, a
        consistency check, a threshold sized against a malicious server); complete graph only.
      quantize: run the fixed-point integer pipeline of ``secure`` without cryptography (its fast
        twin: same integers, same decisions, bit-identical models); implied by ``secure``.
    """

    weighting: str = setting("examples", Check.one_of(WEIGHTINGS))
    secure: bool = setting(False, BOOL)
    norm_bound: float = setting(0.0, NON_NEGATIVE_NUMBER)
    norm_kind: str = setting("l2", Check.one_of(NORM_KINDS))
    server_clip: float = setting(0.0, NON_NEGATIVE_NUMBER)
    server_threshold: float = setting(0.0, NON_NEGATIVE_NUMBER)
    noise: str = setting("none", Check.one_of(NOISE_KINDS))
    noise_std: float = setting(0.0, NON_NEGATIVE_NUMBER)
    noise_seeded: bool = setting(False, BOOL)
    client_clip: float = setting(0.0, NON_NEGATIVE_NUMBER)
    quant_bits: int = setting(32, Check.int_in(2, 64))
    quant_range: float = setting(1.0, POSITIVE_NUMBER)
    max_weight: float = setting(0.0, NON_NEGATIVE_NUMBER)
    secagg_graph: str = setting("complete", Check.one_of(SECAGG_GRAPHS))
    secagg_dropout: float = setting(0.0, FRACTION)
    secagg_active: bool = setting(False, BOOL)
    quantize: bool = setting(False, BOOL)

    @classmethod
    def from_table(cls, table: Any) -> "AggregationConfig":
        """Build from the ``[aggregation]`` TOML table and validate.

        Raises:
          ConfigError: an unknown key, a bad value or an inconsistent combination, naming the key.
        """
        cfg = parse_section(cls, table, "aggregation")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Check the settings against each other (each value alone was checked when parsed).

        Raises:
          ConfigError: naming the key that conflicts.
        """
        if self.secagg_active and not self.secure:
            raise ConfigError("aggregation.secagg_active: needs aggregation.secure = true")
        if self.secagg_active and self.secagg_graph != "complete":
            raise ConfigError("aggregation.secagg_active: the active variant runs on the complete graph only "
                              "(a malicious server can cut a sparse graph by uneven share delivery; docs/secagg.md)")
        if self.noise == "none" and self.noise_std > 0:
            raise ConfigError(f"aggregation.noise_std: is {self.noise_std} but aggregation.noise is \"none\"")
        if self.noise == "none" and self.noise_seeded:
            raise ConfigError("aggregation.noise_seeded: seeds the noise, but aggregation.noise is \"none\" "
                              "(no noise is drawn); set aggregation.noise, or drop noise_seeded")
        if self.noise != "none" and self.noise_std <= 0:
            raise ConfigError(f"aggregation.noise_std: expected a positive number with aggregation.noise = "
                              f"{self.noise!r}, got {self.noise_std}")
        if self.noise == "distributed" and not (self.secure or self.quantize):
            raise ConfigError("aggregation.noise: \"distributed\" noise needs aggregation.secure = true "
                              "(or its fast twin aggregation.quantize = true; in plaintext use \"central\")")
        if self.noise == "distributed" and self.norm_bound > 0:
            raise ConfigError("aggregation.noise: \"distributed\" noise cannot be combined with aggregation.norm_bound "
                              "yet (the commitment would not cover the clients' noise); use \"central\", or "
                              "aggregation.client_clip for an unproven clip")
        if self.client_clip > 0 and self.norm_bound > 0:
            raise ConfigError("aggregation.client_clip: aggregation.norm_bound already clips (and proves) each "
                              "update; set one of them")
        if self.norm_bound > 0 and self.weighting == "examples":
            raise ConfigError("aggregation.weighting: aggregation.norm_bound needs \"uniform\" or \"fixed\" "
                              "(clients clip and prove their raw update; \"examples\" would scale it first)")
        if self.max_weight > 0 and self.weighting != "examples":
            raise ConfigError(f"aggregation.max_weight: caps the example-count weights of weighting = \"examples\"; "
                              f"with {self.weighting!r} every weight is 1 (set it to 0)")
        if self.noise != "none" and self.weighting == "uniform":
            raise ConfigError("aggregation.weighting: \"uniform\" divides the noised sum by the number of clients "
                              "received, which anyone holding two consecutive models can read off the step's spread "
                              "(the noise std is public), un-noised; with aggregation.noise use \"fixed\" (divides by "
                              "the public clients_per_round) or \"examples\" with aggregation.max_weight")
        if self.noise != "none" and self.weighting == "examples" and self.max_weight <= 0:
            raise ConfigError("aggregation.max_weight: weighting = \"examples\" with aggregation.noise needs a public "
                              "cap on each client's weight: without it the sensitivity would have to come from the "
                              "data's largest example count (which dp_sensitivity would then publish) and the mean's "
                              "denominator would be the clients' total example count, readable from the model; set "
                              "aggregation.max_weight = W (weights become min(examples, W), the mean divides by "
                              "clients_per_round * W), or use weighting = \"fixed\"")
        if self.secure:
            for key in ("server_clip", "server_threshold"):
                if getattr(self, key) > 0:
                    raise ConfigError(f"aggregation.{key}: a plaintext baseline; under aggregation.secure = true "
                                      "the server never sees single updates (use aggregation.norm_bound)")

    @property
    def plain(self) -> bool:
        """Whether this is the plain weighted mean with no defense, noise or cryptography."""
        return not self.secure and not self.quantize and self.norm_bound == 0 and self.server_clip == 0 \
            and self.server_threshold == 0 and self.noise == "none" and self.client_clip == 0
