"""``sabre bench proof``: time commitment, proof, verification and batched verification.

Usage::

    sabre bench proof --dim D --norm l2|linf [--clients N]
                      [--distinct P] [--profile] [--json]

Prints a human summary and, with ``--json``, one JSON object as the last line:
``dim, norm, projections, clients, generators_s, tables_s, msm_backend, commit_s, prove_s,
verify_s, batch_verify_s, batch_distinct, proof_bytes, soundness_bits, bound_factor,
msm_us_per_term, commit_terms, prove_terms, verify_terms, batch_verify_terms, scaled_to_15us,
cpu_model, load_avg``. ``msm_backend`` says which multi-exponentiation verified
(``native-buckets``: the C bucket method of :mod:`rangeproof.native_msm`; ``openssl``: petlib's
``EC_POINTs_mul``); ``tables_s`` is the one-time conversion of the generators to the affine
tables the native code reads (once per process, like ``generators_s``, and timed apart).

Machines differ (about 2x in P-256 speed), so the run also measures, on the same machine and in
the same process, what one term of a full-width multi-exponentiation costs: ``msm_us_per_term``
is petlib's own ``EcGroup.wsum`` over :data:`CALIBRATION_TERMS` random 256-bit scalars (best of
two), the reference the norm-proof targets are stated in (the project's :func:`group.msm` is
about 10 % faster per term than this reference). A shared machine's speed drifts while a long
benchmark runs, so the calibration is taken before the proofs, before verification, before the
batch and after it; each phase is divided by the mean of the two calibrations around it
(``msm_us_per_term`` in the JSON is the mean of all four, ``msm_us_per_term_samples`` lists them).
Each ``X_terms`` is ``X_s`` in such terms (``X_s * 1e6 / us``), and ``scaled_to_15us`` gives each
time as it would be on a machine at 15 us per term. The same is measured in this process's CPU
time (``cpu_s``, ``msm_cpu_us_per_term_samples``, ``scaled_cpu_to_15us``): on a machine shared
with other jobs, wall time also counts the time the process waited for a core, which the
calibrations around a phase catch only in part; CPU time does not (memory contention remains). ``bound_factor`` is what the accepted
region's norm is, as a multiple of ``M``: 1.0, both proofs being exact. ``projections`` is the
number of range-checked projections of the L2 proof (128; 0 for L-infinity).

``batch_verify_s`` verifies ``N`` proofs with one call of :func:`rangeproof.norm.verify_batch`.
Making ``N`` distinct proofs at large ``d`` takes ``N`` times the proving time, so only
``--distinct`` of them (default ``min(N, 2)``) are distinct; the batch cycles through them. Every
item is verified in full (its own transcript, projection and equations), so the batch's cost is
the same as with ``N`` distinct proofs. Generator derivation (``generators_s``, once per
process, cacheable on disk) is timed apart from the commitment.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import secrets
import time
from typing import Sequence

import numpy as np
from petlib.bn import Bn

from .group import ORDER, curve
from .norm.fixed_point import clip_and_quantize, integer_bound
from .norm.norm_linear import padded_dim
from .norm.params import SMALLNESS_PROJECTIONS
from .native_msm import available as native_msm_available
from .norm.terms import prepare_verifier_tables
from .range_proof import range_generators
from .norm import (
    L2Proof,
    NormStatement,
    commit_vector,
    proof_from_bytes,
    prove,
    vector_generators,
    verify,
    verify_batch,
)

__all__ = ["main", "msm_us_per_term", "CALIBRATION_TERMS"]

CALIBRATION_TERMS = 65_536
"""Terms of one calibration multi-exponentiation."""


def msm_us_per_term(terms: int = CALIBRATION_TERMS, repeats: int = 2, *,
                    clock=time.perf_counter) -> float:
    """Microseconds per term of petlib's ``EcGroup.wsum`` with random full-width scalars on this
    machine (best of ``repeats``; points cycle through 4,096 generators, which costs the same per
    term as distinct ones; the scalars are converted to petlib ``Bn`` outside the timing).
    ``clock`` is wall time by default; :func:`time.process_time` gives this process's CPU time."""
    pts = vector_generators(4096)
    points = [pts[i % len(pts)] for i in range(terms)]
    scalars = [Bn.from_binary(secrets.randbelow(ORDER).to_bytes(32, "big")) for _ in range(terms)]
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        curve().wsum(scalars, points)
        best = min(best, clock() - start)
    return best * 1e6 / terms


def _both_clocks(fn):
    """Runs ``fn``; returns its value, and the CPU seconds it took (this process)."""
    start = time.process_time()
    value = fn()
    return value, time.process_time() - start


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sabre bench proof", description="Benchmark the norm-bound proofs.")
    p.add_argument("--dim", type=int, required=True, help="vector dimension d")
    p.add_argument("--norm", choices=["l2", "linf"], default="l2")
    p.add_argument("--clients", type=int, default=1, help="N, proofs in the batched verification")
    p.add_argument("--distinct", type=int, default=None, help="distinct proofs in the batch (default min(N, 2))")
    p.add_argument("--bound", type=float, default=1.0, help="float bound M on the update")
    p.add_argument("--scale", type=float, default=float(1 << 16), help="fixed-point scale")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic updates")
    p.add_argument("--profile", action="store_true", help="print where proving and verifying spend time")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--no-calibration", action="store_true",
                   help="skip the msm_us_per_term measurement (the *_terms fields are then null)")
    return p


def _profiled(enabled: bool, label: str, fn, out: list[str]):
    if not enabled:
        start = time.perf_counter()
        value = fn()
        return value, time.perf_counter() - start
    prof = cProfile.Profile()
    start = time.perf_counter()
    value = prof.runcall(fn)
    elapsed = time.perf_counter() - start
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(r"rangeproof|numpy", 14)
    stats.sort_stats("tottime").print_stats(5)
    out.append(f"--- profile: {label} ({elapsed:.2f} s): cumulative time by function, then own time ---")
    out.extend(line for line in buf.getvalue().splitlines() if line.strip())
    return value, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns the process exit status."""
    args = _parser().parse_args(argv)
    if args.dim < 1 or args.clients < 1:
        raise SystemExit("sabre bench proof: --dim and --clients must be positive")
    norm = args.norm
    distinct = max(1, min(args.clients, args.distinct if args.distinct is not None else 2))
    bound_int = integer_bound(args.bound, args.scale, norm)
    rng = np.random.default_rng(args.seed)
    notes: list[str] = []
    phases: dict[str, float] = {}

    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    vector_generators(padded_dim(args.dim) if norm == "l2" else args.dim)
    if norm == "l2":  # the range proofs' generators too: derived once per process, like G
        range_generators(SMALLNESS_PROJECTIONS * 64)
    generators_s = time.perf_counter() - start
    start = time.perf_counter()
    # the affine tables of the native code (once per process): the verifier's
    # multi-exponentiation, and the prover's small-value sums on the same generators
    prepare_verifier_tables(padded_dim(args.dim) if norm == "l2" else args.dim,
                            SMALLNESS_PROJECTIONS * 64 if norm == "l2" else 0)
    tables_s = time.perf_counter() - start
    calibrations: list[float] = []
    cpu_calibrations: list[float] = []
    cpu: dict[str, float] = {}

    def calibrate() -> None:
        if not args.no_calibration:
            calibrations.append(msm_us_per_term())
            cpu_calibrations.append(msm_us_per_term(clock=time.process_time))

    calibrate()

    proofs = []
    commit_s = prove_s = 0.0
    for c in range(distinct):
        st = NormStatement(round_id=0, client_id=c, dim=args.dim, norm=norm, bound=bound_int,
                           scale=args.scale)
        update = rng.normal(size=args.dim) * (2.0 * args.bound / np.sqrt(args.dim))
        x = clip_and_quantize(update, args.bound, args.scale, norm)
        ((C, r), t_commit), c_commit = _both_clocks(lambda: _profiled(
            args.profile and c == 0, "commit", lambda: commit_vector(x), notes))
        kw = {"timings": phases} if norm == "l2" and c == 0 else {}
        (proof, t_prove), c_prove = _both_clocks(lambda: _profiled(
            args.profile and c == 0, "prove", lambda: prove(st, x, C, r, **kw), notes))
        if c == 0:
            commit_s, prove_s = t_commit, t_prove
            cpu["commit"], cpu["prove"] = c_commit, c_prove
        proofs.append((st, C, proof.to_bytes()))
    st0, C0, data0 = proofs[0]
    def _verify():
        pf = proof_from_bytes(st0, data0)
        if isinstance(pf, L2Proof):
            pf.verify_timed(st0, C0, phases)
        else:
            verify(st0, C0, pf)

    calibrate()
    (_, verify_s), cpu["verify"] = _both_clocks(
        lambda: _profiled(args.profile, "verify", _verify, notes))
    items = [proofs[i % distinct] for i in range(args.clients)]
    calibrate()
    start = time.perf_counter()
    ok, cpu["batch_verify"] = _both_clocks(lambda: verify_batch(items))
    batch_s = time.perf_counter() - start
    calibrate()
    us_per_term = sum(calibrations) / len(calibrations) if calibrations else None
    # each phase against the calibrations taken just before and just after it
    around = ({"commit": (0, 1), "prove": (0, 1), "verify": (1, 2), "batch_verify": (2, 3)}
              if calibrations else {})
    phase_us = {name: (calibrations[a] + calibrations[b]) / 2 for name, (a, b) in around.items()}
    phase_cpu_us = {name: (cpu_calibrations[a] + cpu_calibrations[b]) / 2
                    for name, (a, b) in around.items()}
    if not all(ok):
        raise SystemExit("sabre bench proof: an honest proof failed to verify")
    prm = st0.l2_params() if norm == "l2" else st0.linf_params()
    result = {
        "dim": args.dim,
        "norm": norm,
        "projections": prm.projections if norm == "l2" else 0,
        "clients": args.clients,
        "generators_s": round(generators_s, 3),
        "tables_s": round(tables_s, 3),
        "msm_backend": "native-buckets" if native_msm_available() else "openssl",
        "commit_s": round(commit_s, 3),
        "prove_s": round(prove_s, 3),
        "verify_s": round(verify_s, 3),
        "batch_verify_s": round(batch_s, 3),
        "batch_distinct": distinct,
        "proof_bytes": len(data0),
        "soundness_bits": round(prm.soundness_bits, 2),
        "bound_factor": round(prm.bound_factor, 4) if norm == "l2" else 1.0,
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
        "msm_us_per_term": None if us_per_term is None else round(us_per_term, 3),
        "msm_us_per_term_samples": [round(c, 3) for c in calibrations],
        "cpu_s": {f"{name}_s": round(sec, 3) for name, sec in cpu.items()},
        "msm_cpu_us_per_term_samples": [round(c, 3) for c in cpu_calibrations],
        "cpu_model": _cpu_model(),
        "load_avg": None if load_avg is None else round(load_avg, 2),
    }
    times = {"commit": commit_s, "prove": prove_s, "verify": verify_s, "batch_verify": batch_s}
    for name, sec in times.items():
        result[f"{name}_terms"] = None if us_per_term is None else round(sec * 1e6 / phase_us[name])
    result["scaled_to_15us"] = None if us_per_term is None else {
        f"{name}_s": round(sec * 15.0 / phase_us[name], 3) for name, sec in times.items()}
    result["scaled_cpu_to_15us"] = None if us_per_term is None else {
        f"{name}_s": round(sec * 15.0 / phase_cpu_us[name], 3) for name, sec in cpu.items()}
    print(f"norm-bound proof, {norm} (exact), d = {args.dim}")
    print(f"  generators (once per process): {generators_s:.2f} s; verifier tables: {tables_s:.2f} s")
    print(f"  commit {commit_s:.2f} s, prove {prove_s:.2f} s, verify {verify_s:.2f} s")
    print(f"  batched verification of {args.clients} proofs ({distinct} distinct): {batch_s:.2f} s")
    print(f"  proof {len(data0)} bytes, soundness 2^-{result['soundness_bits']}, "
          f"proven bound {result['bound_factor']} x M")
    if us_per_term is not None:
        scaled = result["scaled_to_15us"]
        print(f"  this machine: {us_per_term:.2f} us per multi-exponentiation term ({result['cpu_model']}, "
              f"load {result['load_avg']}); at 15 us per term: prove {scaled['prove_s']:.2f} s, "
              f"verify {scaled['verify_s']:.2f} s, batch {scaled['batch_verify_s']:.2f} s")
        sc = result["scaled_cpu_to_15us"]
        print(f"  in CPU time (this process; robust to other jobs on a shared machine), at 15 us "
              f"per term: prove {sc['prove_s']:.2f} s, verify {sc['verify_s']:.2f} s, "
              f"batch {sc['batch_verify_s']:.2f} s")
    if phases:
        print("  where the time goes (seconds):")
        for name, sec in phases.items():
            print(f"    {name:36s} {sec:8.2f}")
    for line in notes:
        print(line)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
