"""The client's commitment to its integer vector: ``C = <x, G> + r B~`` over ``d`` generators.

One commitment per client and round; it is what the norm proof talks about and what the server
sums to check the secure aggregate (:mod:`rangeproof.binding`). The generators are independent
hash-to-curve points (:func:`rangeproof.generators.generators` with the label below), so the
commitment is binding to every coordinate, and commitments add up: ``sum_c C_c`` commits to
``sum_c x_c`` with blinding ``sum_c r_c``.
"""
from __future__ import annotations

import operator
from typing import Callable, Sequence

import numpy as np
from petlib.ec import EcPt

from ..generators import generators, pedersen_bases
from ..group import ORDER, msm, random_scalar
from ..labels import NORM_VECTOR_G
from ..native_msm import label_small_sum

__all__ = ["VECTOR_LABEL", "vector_generators", "commit_vector", "to_ints", "to_residues"]

VECTOR_LABEL = NORM_VECTOR_G


def vector_generators(dim: int) -> list[EcPt]:
    """The ``dim`` generators ``G_0..G_{d-1}`` (cached; about 40 us each to derive once)."""
    return generators(VECTOR_LABEL, dim)


def to_ints(x: np.ndarray | Sequence[int]) -> list[int]:
    """The vector's entries as signed Python ints.

    Raises:
      TypeError: a float array or a non-integer entry (never truncated).
    """
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "iu" and x.dtype != object:
            raise TypeError(f"expected an integer vector, got dtype {x.dtype}")
        x = x.tolist()
    return [operator.index(v) for v in x]


def to_residues(x: np.ndarray | Sequence[int]) -> list[int]:
    """The vector's entries as Python ints in ``[0, q)`` (:func:`to_ints`, reduced)."""
    return [v % ORDER for v in to_ints(x)]


def commit_vector(x: np.ndarray | Sequence[int], blinding: int | None = None, *,
                  rng: Callable[[int], int] | None = None) -> tuple[EcPt, int]:
    """Commits to an integer vector.

    Args:
      x: the vector (signed ints; entries are taken mod q).
      blinding: the blinding ``r``; drawn uniformly when omitted.
      rng: optional deterministic source for the blinding (tests).

    Returns:
      ``(C, r)``.
    """
    vals = to_ints(x)
    r = random_scalar(rng) if blinding is None else blinding % ORDER
    # <x, G> by point additions when the entries are small (on the generators' affine table
    # where the native module is built, else msm_small), plus r B~
    return label_small_sum(VECTOR_LABEL, 0, vals) + msm([r], [pedersen_bases()[1]]), r
