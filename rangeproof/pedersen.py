"""Pedersen commitments: ``Com(v; r) = v*B + r*B_blinding`` and its vector form.

Binding rests on nobody knowing a discrete-log relation among the bases, which
:mod:`rangeproof.generators` derives by hashing to the curve; hiding is perfect when the blinding
``r`` is uniform mod q.
"""
from __future__ import annotations

from typing import Sequence

from petlib.ec import EcPt

from .generators import pedersen_bases
from .group import msm

__all__ = ["commit", "vector_commit"]


def commit(value: int, blinding: int) -> EcPt:
    """Commits to one scalar.

    Args:
      value: the committed value (an int, reduced mod q).
      blinding: the blinding factor, uniform mod q for hiding.

    Returns:
      ``value*B + blinding*B_blinding`` with ``(B, B_blinding) = pedersen_bases()``.
    """
    B, B_blinding = pedersen_bases()
    return msm([value, blinding], [B, B_blinding])


def vector_commit(values: Sequence[int], blinding: int, gens: Sequence[EcPt],
                  h: EcPt | None = None) -> EcPt:
    """Commits to a vector of scalars.

    Args:
      values: the committed vector ``x`` (ints, reduced mod q).
      blinding: the blinding factor ``r``.
      gens: at least ``len(values)`` generators ``G_0, G_1, ...`` (the first ``len(values)``
        are used).
      h: the blinding base; defaults to ``B_blinding`` of :func:`pedersen_bases`.

    Returns:
      ``sum_j x_j*G_j + r*h``.

    Raises:
      ValueError: fewer generators than values.
    """
    if len(gens) < len(values):
        raise ValueError(f"vector_commit: {len(values)} values but only {len(gens)} generators")
    if h is None:
        h = pedersen_bases()[1]
    return msm(list(values) + [blinding], list(gens[:len(values)]) + [h])
