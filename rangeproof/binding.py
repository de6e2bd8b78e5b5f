"""Binding the secure aggregate to the clients' commitments: accept only ``sum_c x_c``.

Each client ``c`` commits ``C_c = <x_c, G> + r_c B~`` to the exact integer vector it masks, and
the secure sum delivers, for the same surviving clients, ``X = sum_c x_c`` and (as a second,
field-valued secure sum over the group order) ``R = sum_c r_c mod q``. Commitments are additively
homomorphic, so the server checks one equation with one multi-exponentiation of ``d + N + 1``
terms::

    sum_c C_c  ==  <X, G> + R B~          (docs/proofs.md, "Binding to the secure sum")

If a client masked some ``x'_c != x_c`` the left side still commits to ``sum x_c`` while ``X``
contains ``x'_c``: the check fails unless the cheater found a discrete-log relation among the
generators. The round then fails closed (:class:`BindingError`; the pipeline stage turns it into
``RoundFailed("binding_failed")``).

Who cheated cannot be told from this equation alone: the server only ever sees the masked inputs
and their sum, and any split of the discrepancy among clients is consistent with it. Naming the
cheater needs a commitment to each client's *masked* input that the server can open against the
masks, which needs verifiable masks (ACORN-robust, Armadillo); see ``docs/proofs.md``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from petlib.ec import EcPt

from .errors import VerificationError
from .generators import pedersen_bases
from .group import ORDER, msm
from .native_msm import label_small_sum
from .norm.commitment import VECTOR_LABEL, to_ints

__all__ = ["BindingError", "check_binding", "aggregate_commitments"]


class BindingError(VerificationError):
    """The secure aggregate is not the sum of the committed vectors."""

    def __init__(self, message: str = "the aggregate does not match the sum of the commitments"):
        super().__init__(message)


def aggregate_commitments(commitments: Sequence[EcPt]) -> EcPt:
    """``sum_c C_c`` (point additions)."""
    if not commitments:
        raise ValueError("aggregate_commitments: no commitments")
    total = commitments[0]
    for C in commitments[1:]:
        total = total + C
    return total


def check_binding(commitments: Sequence[EcPt], aggregate: np.ndarray | Sequence[int],
                  blinding_sum: int, *, dim: int) -> None:
    """Checks that ``aggregate`` is the sum of the vectors behind ``commitments``.

    Args:
      commitments: the surviving clients' commitments ``C_c``.
      aggregate: the secure sum ``X`` as signed integers (already lifted from the secure sum's
        modulus), one-dimensional, of length ``dim``.
      blinding_sum: ``R = sum_c r_c mod q`` from the field-valued secure sum.
      dim: the length of the committed vectors (the statement's ``d``).

    The equation holds only modulo the group order ``q``, so each entry must be the canonical
    signed representative, ``|X_j| <= (q - 1) / 2``: otherwise ``X + q e_j`` would pass for
    ``X``. A lifted secure sum is always canonical (its modulus is far below ``q``).

    Raises:
      BindingError: the equation does not hold, there is nothing to check against, the aggregate
        is not a vector of ``dim`` canonical integers, or the blinding sum is not an int.
    """
    if not commitments:
        raise BindingError("no commitments to check the aggregate against")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise BindingError(f"dim must be a positive int, got {dim!r}")
    if isinstance(aggregate, np.ndarray):
        if aggregate.ndim != 1:
            raise BindingError(f"the aggregate must be one-dimensional, got shape {aggregate.shape}")
    elif isinstance(aggregate, (str, bytes)) or not isinstance(aggregate, Sequence):
        raise BindingError(f"the aggregate must be a vector of integers, got {type(aggregate).__name__}")
    if len(aggregate) != dim:
        raise BindingError(f"the aggregate has {len(aggregate)} entries, the commitments are to {dim}")
    if isinstance(aggregate, np.ndarray) and aggregate.dtype.kind in "iu":
        xs = to_ints(aggregate)  # numpy integers have at most 64 bits: always canonical
    else:  # a list or an object array: every entry must be an int (a float must not be truncated)
        vals = aggregate.tolist() if isinstance(aggregate, np.ndarray) else list(aggregate)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            raise BindingError("the aggregate must be a vector of integers")
        xs = to_ints(vals)
        half = (ORDER - 1) // 2
        if any(v > half or v < -half for v in xs):
            raise BindingError("an entry of the aggregate is not a canonical signed residue "
                               "(|X_j| > (q - 1) / 2)")
    if isinstance(blinding_sum, bool) or not isinstance(blinding_sum, int):
        raise BindingError("the blinding sum must be an int")
    Bt = pedersen_bases()[1]
    q = ORDER
    # <X, G> by point additions (the aggregate is small and signed: on the generators' affine
    # table, or msm_small), the rest as one multi-exponentiation
    total = label_small_sum(VECTOR_LABEL, 0, xs) + msm(
        [blinding_sum % q] + [q - 1] * len(commitments), [Bt] + list(commitments))
    if not total.is_infinite():
        raise BindingError()
