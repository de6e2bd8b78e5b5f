"""Batched verification of range proofs: many proofs, one multi-exponentiation.

Every range proof's check is "a multi-exponentiation is the identity"
(:meth:`~rangeproof.range_proof.RangeProof.verification_terms`). For proofs ``k = 1..K`` with
terms ``T_k``, the batch draws independent uniform weights ``r_k`` (``r_1 = 1``) and checks ::

    sum_k r_k T_k == 0

Scalars on the shared generators (``G_i``, ``H_i``, ``B``, ``B_blinding``) are added up first, so
the multi-exponentiation has ``2 max(n m) + 2`` shared terms plus each proof's own points. If some
``T_k`` is not the identity, the sum is the identity with probability at most ``1/q`` over
``r_k``; the weights come from :mod:`secrets`, never from the transcripts, so a prover cannot
predict them. The weighted sum is kept by :class:`rangeproof.norm.terms.Accumulator`, the
same accumulator the norm proofs' batched verification uses.
"""
from __future__ import annotations

from typing import Callable, Sequence

from petlib.ec import EcPt

from .errors import VerificationError
from .norm.terms import Accumulator
from .range_proof import RangeProof
from .transcript import Transcript

__all__ = ["verify_range_proofs", "invalid_range_proofs"]

Item = tuple[Transcript, RangeProof, Sequence[EcPt], int]


def verify_range_proofs(items: Sequence[Item], *, rng: Callable[[int], int] | None = None
                        ) -> None:
    """Verifies many range proofs at once.

    Args:
      items: ``(transcript, proof, commitments, n_bits)`` per proof; each transcript in the state
        its prover started from. The transcripts are advanced, as by
        :meth:`RangeProof.verify`.
      rng: optional deterministic source for the random weights (tests); default
        :mod:`secrets`.

    Raises:
      VerificationError: at least one proof does not verify (which one is not said; see
        :func:`invalid_range_proofs`).
    """
    if not items:
        return
    acc = Accumulator(rng)  # weight 1 on the first equation, uniform random on the others
    for transcript, proof, commitments, n_bits in items:
        if not isinstance(proof, RangeProof):
            raise VerificationError()
        acc.add_range(proof.verification_terms(transcript, commitments, n_bits, rng=rng))
    if not acc.check():
        raise VerificationError()


def invalid_range_proofs(items: Sequence[Item], *, rng: Callable[[int], int] | None = None
                         ) -> list[int]:
    """Returns the indices of the proofs that do not verify (empty when all do).

    Tries the whole batch first (on forks of the transcripts) and, only if it fails, verifies
    each proof on its own. The callers' transcripts are not advanced.

    Args:
      items: as for :func:`verify_range_proofs`.
      rng: as for :func:`verify_range_proofs`.

    Returns:
      The indices into ``items`` of the failing proofs, in increasing order.
    """
    try:
        verify_range_proofs([(t.fork(), p, c, n) for t, p, c, n in items], rng=rng)
        return []
    except VerificationError:
        pass
    bad = []
    for k, (t, p, c, n) in enumerate(items):
        try:
            verify_range_proofs([(t.fork(), p, c, n)], rng=rng)
        except VerificationError:
            bad.append(k)
    return bad
