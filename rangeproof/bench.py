"""``sabre bench proof``: time commitment, proof, verification and batched verification.

Usage::

    sabre bench proof --dim D --norm l2|linf [--clients N] [--projections K]
                      [--distinct P] [--profile] [--json]

Prints a human summary and, with ``--json``, one JSON object as the last line:
``dim, norm, projections, clients, generators_s, commit_s, prove_s, verify_s, batch_verify_s,
batch_distinct, proof_bytes, soundness_bits, slack``.

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
import pstats
import time
from typing import Sequence

import numpy as np

from .norm import (
    DEFAULT_PROJECTIONS,
    L2Proof,
    NormStatement,
    commit_vector,
    proof_from_bytes,
    prove,
    vector_generators,
    verify,
    verify_batch,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sabre bench proof", description="Benchmark the norm-bound proofs.")
    p.add_argument("--dim", type=int, required=True, help="vector dimension d")
    p.add_argument("--norm", choices=["l2", "linf"], default="l2")
    p.add_argument("--clients", type=int, default=1, help="N, proofs in the batched verification")
    p.add_argument("--projections", type=int, default=DEFAULT_PROJECTIONS, help="K for L2")
    p.add_argument("--distinct", type=int, default=None, help="distinct proofs in the batch (default min(N, 2))")
    p.add_argument("--bound", type=float, default=1.0, help="float bound M on the update")
    p.add_argument("--scale", type=float, default=float(1 << 16), help="fixed-point scale")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic updates")
    p.add_argument("--profile", action="store_true", help="print where proving and verifying spend time")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
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
    from .stage import clip_and_quantize, integer_bound

    args = _parser().parse_args(argv)
    if args.dim < 1 or args.clients < 1:
        raise SystemExit("sabre bench proof: --dim and --clients must be positive")
    norm = args.norm
    projections = args.projections if norm == "l2" else 0
    distinct = max(1, min(args.clients, args.distinct if args.distinct is not None else 2))
    bound_int = integer_bound(args.bound, args.scale, norm)
    rng = np.random.default_rng(args.seed)
    notes: list[str] = []
    phases: dict[str, float] = {}

    start = time.perf_counter()
    vector_generators(args.dim)
    generators_s = time.perf_counter() - start

    proofs = []
    commit_s = prove_s = 0.0
    for c in range(distinct):
        st = NormStatement(round_id=0, client_id=c, dim=args.dim, norm=norm, bound=bound_int,
                           scale=args.scale, projections=projections)
        update = rng.normal(size=args.dim) * (2.0 * args.bound / np.sqrt(args.dim))
        x = clip_and_quantize(update, args.bound, args.scale, norm)
        (C, r), t_commit = _profiled(args.profile and c == 0, "commit", lambda: commit_vector(x), notes)
        kw = {"timings": phases} if norm == "l2" and c == 0 else {}
        proof, t_prove = _profiled(args.profile and c == 0, "prove", lambda: prove(st, x, C, r, **kw), notes)
        if c == 0:
            commit_s, prove_s = t_commit, t_prove
        proofs.append((st, C, proof.to_bytes()))
    st0, C0, data0 = proofs[0]
    def _verify():
        pf = proof_from_bytes(st0, data0)
        if isinstance(pf, L2Proof):
            pf.verify_timed(st0, C0, phases)
        else:
            verify(st0, C0, pf)

    _, verify_s = _profiled(args.profile, "verify", _verify, notes)
    items = [proofs[i % distinct] for i in range(args.clients)]
    start = time.perf_counter()
    ok = verify_batch(items)
    batch_s = time.perf_counter() - start
    if not all(ok):
        raise SystemExit("sabre bench proof: an honest proof failed to verify")
    prm = st0.l2_params() if norm == "l2" else st0.linf_params()
    result = {
        "dim": args.dim,
        "norm": norm,
        "projections": projections,
        "clients": args.clients,
        "generators_s": round(generators_s, 3),
        "commit_s": round(commit_s, 3),
        "prove_s": round(prove_s, 3),
        "verify_s": round(verify_s, 3),
        "batch_verify_s": round(batch_s, 3),
        "batch_distinct": distinct,
        "proof_bytes": len(data0),
        "soundness_bits": round(prm.soundness_bits, 2),
        "slack": round(prm.slack, 4) if norm == "l2" else 1.0,
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
    }
    print(f"norm-bound proof, {norm}, d = {args.dim}" + (f", K = {projections}" if norm == "l2" else ""))
    print(f"  generators (once per process): {generators_s:.2f} s")
    print(f"  commit {commit_s:.2f} s, prove {prove_s:.2f} s, verify {verify_s:.2f} s")
    print(f"  batched verification of {args.clients} proofs ({distinct} distinct): {batch_s:.2f} s")
    print(f"  proof {len(data0)} bytes, soundness 2^-{result['soundness_bits']}, "
          f"proven bound {result['slack']} x M")
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
