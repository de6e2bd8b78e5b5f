"""The ``[attack]`` section of a run's TOML configuration.

Every field has a default; ``kind = "none"`` (the default) means a clean run with no adversary.
:meth:`AttackConfig.validate` checks the values and names the offending key in its message
(``attack.boost: ...``) so that a config error points at the line to fix.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

__all__ = ["AttackConfig", "ATTACK_KINDS", "SCHEDULES", "PIPELINE_CHEATS", "TRAININGS"]

#: attack kinds and what each sends (see docs/attacks.md)
ATTACK_KINDS = {
    "none": "no adversary",
    "boosted": "unconstrained model replacement: beta * (w* - w_t), w* trained on D_trn + D_mal",
    "pgd": "norm-bounded PGD: project onto the ball of radius M/beta around w_t after each block, then boost",
    "at_bound": "beyond the paper: PGD inside the full ball of radius M, rescaled to norm exactly M, no boost",
}

#: adversary schedules
SCHEDULES = {
    "fixed_frequency": "one attacker every f = 1/(eps*C*K) rounds, in round r when r mod f == f // 2",
    "random_sampling": "eps*K of the K clients compromised once; each round's count is hypergeometric",
}

#: how the attacker trains its malicious model (see attacks.pgd)
TRAININGS = {
    "blocks": "the authors' code: pgd_rounds blocks of (benign epochs, malicious_steps full-batch steps on D_mal, projection)",
    "joint": "D_trn + D_mal shuffled into ordinary mini-batches for the clients' epochs, projection after every epoch",
    "explicit": "the authors' ClientExplicitBoosting (kind boosted only): send Delta_b + beta * Delta_m, benign update unboosted",
}


#: cheats against the secure pipeline (see attacks.pipeline_cheats)
PIPELINE_CHEATS = {
    "none": "the attacker follows the pipeline",
    "skip_clip": "skips client clipping (and, against the norm proof, commits to its unclipped vector)",
    "boost_after_clip": "clips honestly, then multiplies the clipped update by cheat_factor",
    "commit_other": "commits to and proves the honest vector, masks cheat_factor times it",
    "prove_over_bound": "clips to cheat_factor times the bound and proves that with its prover's bound check bypassed",
    # denial of service: each is excluded and named, the round goes on (issue 11)
    "nan_update": "uploads an update of NaN: left out as non-finite, the round goes on",
    "out_of_range": "skips quantization and uploads integers outside the ring: left out, the round goes on",
    "wrong_shares": "secure sum only: returns wrong Shamir shares when unmasking: named and ignored, the sum stays exact",
    "bad_bundles": "secure sum only: sends share bundles that do not decrypt: left out before masking, the round goes on",
    "off_polynomial": "secure sum only: deals shares off its committed polynomial: left out before masking, the round goes on",
    "duplicate_messages": "secure sum only: sends its masked input twice: left out before unmasking, the round goes on",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass
class AttackConfig:
    """Settings of the backdoor adversary (TOML section ``[attack]``).

    Attributes:
      kind: one of :data:`ATTACK_KINDS`; ``"none"`` disables the attack.
      schedule: one of :data:`SCHEDULES`.
      eps: fraction of the client population that is malicious (0.033 or 0.0033 in the paper).
      frequency: explicit attack period f in rounds (fixed-frequency only); ``None`` derives
        f = round(1 / (eps * clients_per_round)) from ``eps``.
      num_tasks: number of target writers whose 7s form the backdoor set D_mal.
      source_label: the digit whose images are relabelled (7 in the paper).
      target_label: the label the attacker wants them to get (1 in the paper).
      boost: ``"auto"`` for beta = sum_k n_k / (eta * n_attacker) per attacker, split evenly
        among the round's attackers (the paper's model-replacement factor; under the fixed
        denominator it is clients_per_round / (eta * attackers in the round)), or a number.
      pgd_bound: radius of the PGD ball *before* boosting (M / beta); ``"auto"`` derives it from
        ``aggregation.norm_bound`` divided by the boost. For ``kind = "at_bound"`` it is the
        norm M sent (``"auto"``: ``aggregation.norm_bound``).
      training: one of :data:`TRAININGS`, how the malicious model is trained.
      pgd_rounds: PGD outer blocks (benign pass + malicious step + projection), 5 in the code.
      malicious_steps: SGD steps on the full D_mal batch per block (1 in the authors' code).
      block_epochs: epochs of each block's benign pass (``blocks`` only); ``None`` uses the
        clients' epochs, as the authors' code does (its benign dataset is the client's data
        repeated ``num_epochs`` times, so one pass is 5 epochs); 1 gives blocks of one benign
        epoch and one backdoor step.
      attacker_epochs: passes over D_trn + D_mal of the ``joint`` training; ``None`` uses the
        clients' epochs.
      attacker_lr: learning rate of the attacker's malicious steps; ``None`` uses the clients' lr.
      include_benign: whether the attacker also trains on its own benign data (D_trn), as in the
        authors' code.
      cheat: one of :data:`PIPELINE_CHEATS`, a cheat against the secure pipeline played
        by the attacker (``"none"``: none); see attacks.pipeline_cheats.
      cheat_factor: the multiplier used by ``"boost_after_clip"``, ``"commit_other"`` and
        ``"prove_over_bound"``.
      target_seed: seed choosing the target writers and the compromised population.
    """

    kind: str = "none"
    schedule: str = "fixed_frequency"
    eps: float = 0.033
    frequency: int | None = None
    num_tasks: int = 30
    source_label: int = 7
    target_label: int = 1
    boost: str | float = "auto"
    pgd_bound: str | float = "auto"
    training: str = "blocks"
    pgd_rounds: int = 5
    malicious_steps: int = 1
    block_epochs: int | None = None
    attacker_epochs: int | None = None
    attacker_lr: float | None = None
    include_benign: bool = True
    cheat: str = "none"
    cheat_factor: float = 10.0
    target_seed: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "AttackConfig":
        """Build from a TOML table, rejecting unknown keys; the result is validated.

        Raises:
          ValueError: an unknown key or an invalid value (the message names the key).
        """
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            hint = "; it is now attack.cheat" if unknown[0] == "pipeline_cheat" else ""
            raise ValueError(f"attack.{unknown[0]}: unknown key{hint} (known: {', '.join(sorted(known))})")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @property
    def enabled(self) -> bool:
        """Whether this config asks for an adversary."""
        return self.kind != "none"

    def validate(self) -> None:
        """Check every field.

        Raises:
          ValueError: naming the first invalid key, e.g. ``attack.boost: ...``.
        """
        if self.kind not in ATTACK_KINDS:
            raise ValueError(f"attack.kind: expected one of {sorted(ATTACK_KINDS)}, got {self.kind!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"attack.schedule: expected one of {sorted(SCHEDULES)}, got {self.schedule!r}")
        if not _is_number(self.eps) or not 0.0 < self.eps <= 1.0:
            raise ValueError(f"attack.eps: expected a fraction in (0, 1], got {self.eps!r}")
        if self.frequency is not None and (
            not isinstance(self.frequency, int) or isinstance(self.frequency, bool) or self.frequency < 1
        ):
            raise ValueError(f"attack.frequency: expected a positive integer or nothing, got {self.frequency!r}")
        if not isinstance(self.num_tasks, int) or isinstance(self.num_tasks, bool) or self.num_tasks < 1:
            raise ValueError(f"attack.num_tasks: expected a positive integer, got {self.num_tasks!r}")
        for key in ("source_label", "target_label"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 61:
                raise ValueError(f"attack.{key}: expected a class label in 0..61, got {value!r}")
        if self.source_label == self.target_label:
            raise ValueError("attack.target_label: must differ from attack.source_label")
        if self.boost != "auto" and (not _is_number(self.boost) or self.boost <= 0):
            raise ValueError(f"attack.boost: expected \"auto\" or a positive number, got {self.boost!r}")
        if self.pgd_bound != "auto" and (not _is_number(self.pgd_bound) or self.pgd_bound <= 0):
            raise ValueError(f"attack.pgd_bound: expected \"auto\" or a positive number, got {self.pgd_bound!r}")
        if self.training not in TRAININGS:
            raise ValueError(f"attack.training: expected one of {sorted(TRAININGS)}, got {self.training!r}")
        if self.training == "explicit" and self.kind not in ("boosted", "none"):
            raise ValueError(f"attack.training: \"explicit\" boosts only the malicious step; it needs kind \"boosted\", got {self.kind!r}")
        for key in ("pgd_rounds", "malicious_steps"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"attack.{key}: expected a positive integer, got {value!r}")
        if self.block_epochs is not None:
            if not isinstance(self.block_epochs, int) or isinstance(self.block_epochs, bool) or self.block_epochs < 1:
                raise ValueError(f"attack.block_epochs: expected a positive integer or nothing, got {self.block_epochs!r}")
            if self.training != "blocks":
                raise ValueError(f"attack.block_epochs: goes with training = \"blocks\", got {self.training!r}")
        if self.attacker_epochs is not None and (
            not isinstance(self.attacker_epochs, int) or isinstance(self.attacker_epochs, bool) or self.attacker_epochs < 1
        ):
            raise ValueError(f"attack.attacker_epochs: expected a positive integer or nothing, got {self.attacker_epochs!r}")
        if self.attacker_lr is not None and (not _is_number(self.attacker_lr) or self.attacker_lr <= 0):
            raise ValueError(f"attack.attacker_lr: expected a positive number or nothing, got {self.attacker_lr!r}")
        if not isinstance(self.include_benign, bool):
            raise ValueError(f"attack.include_benign: expected true or false, got {self.include_benign!r}")
        if self.cheat not in PIPELINE_CHEATS:
            raise ValueError(
                f"attack.cheat: expected one of {sorted(PIPELINE_CHEATS)}, got {self.cheat!r}"
            )
        if not _is_number(self.cheat_factor) or self.cheat_factor <= 0:
            raise ValueError(f"attack.cheat_factor: expected a positive number, got {self.cheat_factor!r}")
        if not isinstance(self.target_seed, int) or isinstance(self.target_seed, bool) or self.target_seed < 0:
            raise ValueError(f"attack.target_seed: expected a non-negative integer, got {self.target_seed!r}")
