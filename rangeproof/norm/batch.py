"""Proving and verifying norm proofs through one entry point; batched verification.

Batched verification adds every client's equations to one :class:`.terms.Accumulator` (one
multi-exponentiation over the shared generators, the largest part being the ``d`` vector
generators, shared by all clients). If the batch fails, the clients are checked one by one so
that only the failing ones are rejected.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np
from petlib.ec import EcPt

from ..errors import EncodingError, ProofError, VerificationError
from .commitment import commit_vector
from .l2 import L2Proof
from .linf import LinfProof
from .statement import NormStatement
from .terms import Accumulator

__all__ = ["NormProof", "prove", "commit_and_prove", "verify", "verify_batch", "proof_from_bytes"]

NormProof = Union[L2Proof, LinfProof]

Rng = Callable[[int], int]


def prove(statement: NormStatement, x: np.ndarray, commitment: EcPt, blinding: int, *,
          rng: Rng | None = None, timings: dict | None = None) -> NormProof:
    """Proves ``statement`` (L2 or L-infinity) for ``x`` behind ``commitment``.

    ``timings`` (L2 only) receives seconds per phase, for benchmarks.

    Raises:
      ProvingError: the input is out of bounds or malformed.
    """
    if statement.norm == "l2":
        return L2Proof.prove(statement, x, commitment, blinding, rng=rng, timings=timings)
    return LinfProof.prove(statement, x, commitment, blinding, rng=rng)


def commit_and_prove(statement: NormStatement, x: np.ndarray, *, rng: Rng | None = None
                     ) -> tuple[EcPt, int, NormProof]:
    """Commits to ``x`` and proves ``statement``; the usual client entry point.

    Both proofs are exact, so an in-bound vector always gets a proof at the first try.

    Returns:
      ``(commitment, blinding, proof)``.

    Raises:
      ProvingError: the input is out of bounds or malformed.
    """
    C, r = commit_vector(x, rng=rng)
    return C, r, prove(statement, x, C, r, rng=rng)


def proof_from_bytes(statement: NormStatement, data: bytes) -> NormProof:
    """Parses a proof of the kind ``statement`` asks for.

    Raises:
      EncodingError: malformed input.
    """
    if statement.norm == "l2":
        return L2Proof.from_bytes(data)
    return LinfProof.from_bytes(data)


def _kind_ok(statement: NormStatement, proof: object) -> bool:
    return isinstance(proof, L2Proof if statement.norm == "l2" else LinfProof)


def verify(statement: NormStatement, commitment: EcPt, proof: NormProof | bytes) -> None:
    """Verifies one proof (parsed, or as bytes).

    Raises:
      VerificationError: it does not verify.
      EncodingError: ``proof`` is bytes that do not parse.
    """
    if isinstance(proof, (bytes, bytearray, memoryview)):
        proof = proof_from_bytes(statement, proof)
    if not _kind_ok(statement, proof):
        raise VerificationError()
    proof.verify(statement, commitment)


def verify_batch(items: Sequence[tuple[NormStatement, EcPt, NormProof | bytes]], *,
                 rng: Rng | None = None) -> list[bool]:
    """Verifies many proofs; returns, per item, whether it verifies.

    Malformed bytes and structural failures mark their own item false without touching the
    others; the rest are checked with one multi-exponentiation, and one by one only if that
    fails.

    Args:
      items: ``(statement, commitment, proof)`` per client.
      rng: optional deterministic source of the verifier's weights (tests).

    Returns:
      One bool per item.
    """
    ok = [False] * len(items)
    parsed: list[tuple[int, NormStatement, EcPt, NormProof]] = []
    for i, (st, C, pf) in enumerate(items):
        try:
            if isinstance(pf, (bytes, bytearray, memoryview)):
                pf = proof_from_bytes(st, pf)
            if not _kind_ok(st, pf):
                continue
            parsed.append((i, st, C, pf))
        except (EncodingError, VerificationError):
            continue
    acc = Accumulator(rng)
    good = []
    for i, st, C, pf in parsed:
        single = _equations(st, C, pf, rng)
        if single is None:
            continue
        good.append((i, st, C, pf))
        acc.merge(single)  # summed at once: the batch holds one d-vector, not one per client
        del single
    if not good:
        return ok
    if acc.check():
        for i, *_ in good:
            ok[i] = True
        return ok
    # Some proof fails: check them one by one (the replay is deterministic, so it is repeated
    # rather than keeping every client's d scalars in memory for a case that should not happen).
    for i, st, C, pf in good:
        single = _equations(st, C, pf, rng)
        ok[i] = single is not None and single.check()
    return ok


def _equations(statement: NormStatement, commitment: EcPt, proof: NormProof,
               rng: Rng | None) -> Accumulator | None:
    """One proof's verification equations, or ``None`` when they cannot even be formed."""
    single = Accumulator(rng)
    try:
        proof.add_to(single, statement, commitment)
    except (ProofError, ValueError):
        return None
    return single
