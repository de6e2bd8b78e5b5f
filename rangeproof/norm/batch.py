"""Proving and verifying norm proofs through one entry point; batched verification.

Batched verification adds every client's equations to one :class:`.terms.Accumulator` (one
multi-exponentiation over the shared generators, the largest part being the ``d`` vector
generators, shared by all clients). If the batch fails, it is split in halves, recursively, so
that only the failing clients are rejected at a cost logarithmic in the batch per bad proof.
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
    return LinfProof.from_bytes(data, statement.dim)


def _canonical(statement: NormStatement, proof: object) -> NormProof:
    """The proof as the verifier must see it: parsed from bytes by this module.

    A proof handed over as an object is serialized and parsed again, so whatever its class or
    its parts claim to be, only what its bytes encode is verified (a crafted object whose
    sub-proofs answer "valid" is reduced to its encoding, and fails there).

    Raises:
      EncodingError: the bytes do not parse, or the object cannot be serialized.
    """
    if not isinstance(proof, (bytes, bytearray, memoryview)):
        to_bytes = getattr(proof, "to_bytes", None)
        try:
            proof = to_bytes() if callable(to_bytes) else None
        except Exception as exc:  # a crafted object may fail in any way: fail closed
            raise EncodingError(f"norm proof: cannot serialize the proof object ({type(exc).__name__})") from None
        if not isinstance(proof, (bytes, bytearray)):
            raise EncodingError("norm proof: expected bytes or a proof object")
    return proof_from_bytes(statement, proof)


def verify(statement: NormStatement, commitment: EcPt, proof: NormProof | bytes) -> None:
    """Verifies one proof (parsed, or as bytes).

    A proof object is verified through its encoding (serialized and parsed again), never
    through its own methods.

    Raises:
      VerificationError: it does not verify.
      EncodingError: ``proof`` is bytes that do not parse (or an object that does not encode).
    """
    _canonical(statement, proof).verify(statement, commitment)


def verify_batch(items: Sequence[tuple[NormStatement, EcPt, NormProof | bytes]], *,
                 rng: Rng | None = None) -> list[bool]:
    """Verifies many proofs; returns, per item, whether it verifies.

    Malformed bytes and structural failures mark their own item false without touching the
    others (proof objects are verified through their encoding, as in :func:`verify`); the rest are
    checked with one multi-exponentiation. If that fails, the batch is split in halves and each
    half checked the same way, down to single proofs: ``k`` bad proofs among ``N`` cost about
    ``2 k lg N`` multi-exponentiations, not ``N + 1`` (one bad proof must not multiply the
    round's verification work by the number of clients).

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
            parsed.append((i, st, C, _canonical(st, pf)))
        except (EncodingError, VerificationError):
            continue
    for i in _passing(parsed, rng):
        ok[i] = True
    return ok


def _passing(group: list[tuple[int, NormStatement, EcPt, NormProof]], rng: Rng | None) -> list[int]:
    """The indices of ``group`` whose proofs verify: one combined check, then halves on failure.
    (The replay is deterministic, so a half's equations are formed again rather than keeping every
    client's ``d`` scalars in memory.)"""
    acc = Accumulator(rng)
    good = []
    for i, st, C, pf in group:
        single = _equations(st, C, pf, rng)
        if single is None:
            continue
        good.append((i, st, C, pf))
        acc.merge(single)  # summed at once: the batch holds one d-vector, not one per client
        del single
    if not good:
        return []
    if acc.check():
        return [i for i, *_ in good]
    if len(good) == 1:
        return []
    del acc
    mid = len(good) // 2
    return _passing(good[:mid], rng) + _passing(good[mid:], rng)


def _equations(statement: NormStatement, commitment: EcPt, proof: NormProof,
               rng: Rng | None) -> Accumulator | None:
    """One proof's verification equations, or ``None`` when they cannot even be formed."""
    single = Accumulator(rng)
    try:
        proof.add_to(single, statement, commitment)
    except (ProofError, ValueError):
        return None
    return single
