"""Where the CPU time of a federated round goes: a per-phase breakdown of a few rounds of a config.

Run from the repository root (a bundled config name or a TOML path; ``--set`` as with ``sabre run``):

    python bench/profile_round.py fig4a_bound3 --rounds 2 --threads 1
    python bench/profile_round.py fig4a_bound3 --rounds 2 --threads 1 --set data.path=PATH

It builds the run exactly as ``sabre run`` does (same data, adversary, pipeline; nothing is
written) and times each phase with the process's CPU time (user + system, all threads) and wall
time: the honest clients' local training, the attacker's training (everything inside the
adversary's ``malicious_messages``), the aggregation pipeline, the evaluation after the round
(main task and backdoor sets) and what is left of the round (sampling, message building, the
model step). CPU time is the figure to plan with on a shared machine; wall time there measures
a share of it. With ``--threads 2`` on a machine whose other core is busy, the torch kernels'
two threads wait for each other at every parallel region, spinning by default, which inflates
both about fourfold (``OMP_WAIT_POLICY=PASSIVE`` in the environment makes the waiting thread sleep;
docs/sweeps.md, "Cost of a paper-CNN round").

The analytic training cost (``fl.training.flops``) of the round's SGD examples is printed beside
the measured time, so the achieved GFLOP/s can be compared with what the CPU can do.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Phases:
    """CPU and wall seconds accumulated per phase name (nested phases are charged to the inner one)."""

    def __init__(self):
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._stack: list[list] = []

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            if self._stack:  # pause the enclosing phase
                outer = self._stack[-1]
                self._charge(outer)
            frame = [name, _cpu(), time.perf_counter()]
            self._stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self._charge(self._stack.pop())
                if self._stack:
                    self._stack[-1][1:] = [_cpu(), time.perf_counter()]

        return timed

    def _charge(self, frame):
        name, c0, w0 = frame
        c1, w1 = _cpu(), time.perf_counter()
        self.cpu[name] = self.cpu.get(name, 0.0) + c1 - c0
        self.wall[name] = self.wall.get(name, 0.0) + w1 - w0
        frame[1:] = [c1, w1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a sweep run uses 1 by default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)

    c0, w0 = _cpu(), time.perf_counter()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(limits=args.threads)

    from fl.cli import find_config
    from fl.config import load_config
    from fl.experiment import _prepare
    from fl.training.flops import training_flops_per_example
    import fl.simulation as simulation

    cfg = load_config(find_config(args.config), [*args.set, "run.device=\"cpu\""])
    phases = _Phases()
    sim = _prepare(cfg)
    startup_cpu, startup_wall = _cpu() - c0, time.perf_counter() - w0

    # count the SGD examples each training call processes (for the analytic FLOP figure)
    examples = {"n": 0}
    train = sim.train

    timed_train = phases.wrap("honest training", train)

    def counting_train(start, datasets, seeds, local=None):
        lc = local or sim.local
        examples["n"] += sum(len(d) for d in datasets) * lc.epochs
        in_attack = bool(phases._stack) and phases._stack[-1][0] == "attacker"
        return (train if in_attack else timed_train)(start, datasets, seeds, local)

    sim.train = counting_train
    if sim.adversary is not None:
        sim.adversary.malicious_messages = phases.wrap("attacker", sim.adversary.malicious_messages)
    sim.pipeline.aggregate = phases.wrap("aggregation", sim.pipeline.aggregate)
    evaluate = phases.wrap("evaluation", sim.evaluate_global)
    run_round = phases.wrap("rest of round", sim.run_round)

    rounds = []
    for _ in range(args.rounds):
        before = dict(phases.cpu)
        n_before = examples["n"]
        c, w = _cpu(), time.perf_counter()
        result = run_round()
        metrics = evaluate()
        rounds.append({"cpu_s": _cpu() - c, "wall_s": time.perf_counter() - w,
                       "metrics": {**result.row(), **metrics},
                       "sgd_examples": examples["n"] - n_before,
                       "phases_cpu_s": {k: phases.cpu[k] - before.get(k, 0.0) for k in phases.cpu}})
    flops = training_flops_per_example(cfg.model.name)
    train_cpu = phases.cpu.get("honest training", 0.0)  # the attacker's training is inside "attacker"
    report = {
        "config": args.config, "overrides": args.set, "threads": args.threads, "rounds": rounds,
        "startup_cpu_s": startup_cpu, "startup_wall_s": startup_wall,
        "phases_cpu_s": phases.cpu, "phases_wall_s": phases.wall,
        "training_flops_per_example": flops,
        "sgd_examples": examples["n"],
        "training_gflops_per_cpu_s": examples["n"] * flops / 1e9 / max(train_cpu + phases.cpu.get("attacker", 0.0), 1e-9),
        "loadavg": os.getloadavg(),
        "torch": torch.__version__,
    }
    print(f"{args.config}: {args.rounds} round(s), {args.threads} thread(s), load average {report['loadavg'][0]:.2f}")
    print(f"  start-up (imports, data, model): {startup_cpu:.1f} CPU-s")
    for i, r in enumerate(rounds):
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["phases_cpu_s"].items(), key=lambda kv: -kv[1]))
        print(f"  round {i}: {r['cpu_s']:.1f} CPU-s ({r['wall_s']:.1f} s wall): {parts}")
    print(f"  SGD examples {examples['n']} x {flops / 1e6:.1f} MFLOP = {examples['n'] * flops / 1e12:.2f} TFLOP; "
          f"achieved {report['training_gflops_per_cpu_s']:.1f} GFLOP per CPU-s in training")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
