"""``sabre demo``: the whole story in a few minutes on built-in data.

1. **Clean training.** FedAvg of a small CNN on the synthetic writer-partitioned digits.
2. **The attack, no defense.** From the clean model, one attacker in every round trains on its
   own digits plus the backdoor set (the target writers' 7s labelled 1) and boosts its update
   (model replacement, Sun et al. 2019); plain FedAvg takes it.
3. **The same attack under secure aggregation with a proven norm bound.** Every client masks
   its update (real SecAgg) and proves in zero knowledge that it is within the L2 bound M; the
   server sees only masked uploads, commitments and proofs, and the sum. The attacker skips
   clipping - it controls its own software - so it cannot prove the bound: the server drops it
   before unmasking, and the binding check confirms the sum is the sum of the committed vectors.

Phases 2 and 3 replay the same rounds (same clients, same attacker, same seeds) from the same
clean model, so the difference in backdoor accuracy is the defense's doing. The run directory
gets ``story.csv`` (one row per round and phase), ``story.png`` and ``story.txt``.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import attacks  # noqa: E402
from fl.config import ExperimentConfig, parse_config  # noqa: E402
from fl.data import load_dataset  # noqa: E402
from fl.model import num_params  # noqa: E402
from fl.simulation import Simulation  # noqa: E402

__all__ = ["DemoSettings", "run_demo"]


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """Sizes of the story (the defaults finish in a few minutes on 2 CPU cores)."""

    data: str = "synthetic:60:0"
    model: str = "small_cnn"
    clients_per_round: int = 8
    epochs: int = 3
    clean_rounds: int = 10
    attack_rounds: int = 3
    num_tasks: int = 6
    bound_over_honest_p90: float = 1.5
    seed: int = 0


def _config(s: DemoSettings, rounds: int, aggregation: dict, attack: dict | None) -> ExperimentConfig:
    return parse_config({
        "run": {"name": "demo", "seed": s.seed, "rounds": rounds, "device": "cpu"},
        "data": {"path": s.data},
        "model": {"name": s.model},
        "fedavg": {"clients_per_round": s.clients_per_round, "epochs": s.epochs, "batch_size": 20,
                   "client_lr": 0.1, "server_lr": 1.0, "shuffle": True},
        "aggregation": {"weighting": "fixed", **aggregation},
        "attack": attack or {"kind": "none"},
    })


def run_demo(out: Path, settings: DemoSettings = DemoSettings(), echo: Callable[[str], None] = print) -> dict:
    """Runs the three phases, writes ``out``/story.{csv,png,txt}; returns the final accuracies.

    Returns:
      ``{"no_defense": {...}, "secure_bound": {...}}`` with ``main_acc`` and ``backdoor_acc``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def say(text: str = "") -> None:
        lines.append(text)
        echo(text)

    s = settings
    t_start = time.perf_counter()
    dataset = load_dataset(s.data)
    say(f"sabre demo: a backdoor attack on federated learning, and a defense the server enforces without seeing "
        f"any update")
    say(f"data: {dataset.name}, {len(dataset.train_clients())} writers (built-in synthetic digits); "
        f"model: {s.model} ({num_params(s.model):,} parameters); FedAvg with {s.clients_per_round} clients per "
        f"round, {s.epochs} local epochs")
    rows: list[dict] = []

    # 1. clean training ------------------------------------------------------------------------
    clean = Simulation(_config(s, s.clean_rounds, {}, None), dataset)
    honest_p90 = []
    for _ in range(s.clean_rounds):
        res = clean.run_round()
        honest_p90.append(res.measurements.get("norm_honest_p90", math.nan))
        m = clean.evaluate_global()
        rows.append({"phase": "clean", "round": res.round_index + 1, "main_acc": m["main_acc"],
                     "backdoor_acc": math.nan, "rejected": 0})
    say(f"\n1. clean training, {s.clean_rounds} round(s): main-task accuracy {rows[0]['main_acc']:.3f} -> "
        f"{rows[-1]['main_acc']:.3f}; honest update norms (90th percentile) about {np.nanmedian(honest_p90):.3f}")
    start = clean.params.clone()

    bound = round(float(np.nanmedian(honest_p90)) * s.bound_over_honest_p90, 3)
    attack = {"kind": "boosted", "frequency": 1, "num_tasks": s.num_tasks, "cheat": "skip_clip"}
    phases = [
        ("no_defense", "no defense: plain FedAvg, the server sums whatever arrives", {}),
        ("secure_bound", f"secure aggregation + L2 bound M = {bound} proven in zero knowledge",
         {"secure": True, "norm_bound": bound}),
    ]
    finals: dict[str, dict] = {}
    for key, title, aggregation in phases:
        cfg = _config(s, s.clean_rounds + s.attack_rounds, aggregation, attack)
        adversary = attacks.build_adversary(cfg.attack, dataset, cfg.run.seed, norm_bound=bound,
                                            weighting="fixed", clients_per_round=s.clients_per_round)
        sim = Simulation(cfg, dataset, adversary=adversary)
        sim.restore(start, s.clean_rounds)
        before = sim.evaluate_global()
        number = 2 if key == "no_defense" else 3
        say(f"\n{number}. the attack, {title}")
        if key == "no_defense":
            say(f"   backdoor task: the {adversary.task.size} images of digit 7 of {s.num_tasks} target writers, "
                f"labelled 1; one attacker in every round boosts its update by beta = {s.clients_per_round} "
                f"(model replacement)")
        say(f"   before: main {before['main_acc']:.3f}, backdoor {before['backdoor_acc']:.3f}")
        for _ in range(s.attack_rounds):
            res = sim.run_round()
            m = sim.evaluate_global()
            meas = res.measurements
            rows.append({"phase": key, "round": res.round_index + 1, "main_acc": m["main_acc"],
                         "backdoor_acc": m["backdoor_acc"], "rejected": len(res.rejected)})
            say(f"   round {res.round_index + 1}: attacker = writer {', '.join(dataset.client_ids[c] for c in res.malicious)}")
            if key == "no_defense":
                say(f"      the server saw every update: honest norms up to {meas.get('norm_honest_max', math.nan):.3f}, "
                    f"the attacker's {meas.get('norm_attacker_max', math.nan):.3f}; nothing rejected")
            else:
                uploads = meas.get("secagg_upload_bytes_mean")
                uploads = f"{uploads:,.0f} bytes" if uploads is not None else "their"
                say(f"      the server saw {len(res.sampled)} masked uploads of {uploads} (uniformly random to it), "
                    f"one commitment and L2 proof per client (verified in {meas.get('norm_proof_verify_s', math.nan):.1f} s), "
                    f"and the sum")
                dropped = [e for e in res.events if "excluded before the sum" in e]
                rejected = ", ".join(f"{dataset.client_ids[cid % dataset.num_clients]} ({why})"
                                     for cid, why in sorted(res.rejected.items()))
                say(f"      rejected before unmasking: {rejected or (f'{len(dropped)} client(s)' if dropped else 'nobody')}")
                if res.failure is None:
                    say("      binding check (sum of commitments = commitment to the unmasked sum): ok; model updated")
                else:
                    say(f"      round failed closed ({res.failure}): no model update")
            say(f"      main {m['main_acc']:.3f}, backdoor {m['backdoor_acc']:.3f}")
        finals[key] = {"main_acc": m["main_acc"], "backdoor_acc": m["backdoor_acc"]}

    say("\nafter the attack rounds:            main-task acc   backdoor acc")
    say(f"   no defense                          {finals['no_defense']['main_acc']:.3f}          "
        f"{finals['no_defense']['backdoor_acc']:.3f}")
    say(f"   secure aggregation + proven bound   {finals['secure_bound']['main_acc']:.3f}          "
        f"{finals['secure_bound']['backdoor_acc']:.3f}")
    say(f"\n({time.perf_counter() - t_start:.0f} s; files in {out})")

    _write_csv(out / "story.csv", rows)
    _plot(out / "story.png", rows, s.clean_rounds)
    (out / "story.txt").write_text("\n".join(lines) + "\n")
    return finals


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["phase", "round", "main_acc", "backdoor_acc", "rejected"])
        writer.writeheader()
        writer.writerows(rows)


def _plot(path: Path, rows: list[dict], clean_rounds: int) -> None:
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    styles = {"no_defense": ("tab:red", "no defense"), "secure_bound": ("tab:blue", "SecAgg + proven bound")}
    clean = [r for r in rows if r["phase"] == "clean"]
    ax.plot([r["round"] for r in clean], [r["main_acc"] for r in clean], ":", color="black", label="clean training: main")
    for key, (color, label) in styles.items():
        part = [r for r in rows if r["phase"] == key]
        xs = [clean_rounds] + [r["round"] for r in part]
        ax.plot(xs, [clean[-1]["main_acc"]] + [r["main_acc"] for r in part], ":", color=color, label=f"{label}: main")
        ax.plot([r["round"] for r in part], [r["backdoor_acc"] for r in part], "-o", color=color,
                label=f"{label}: backdoor")
    ax.axvline(clean_rounds + 0.5, color="grey", lw=0.8)
    ax.set_xlabel("round")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("sabre demo: boosted backdoor vs. a norm bound proven under SecAgg")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
