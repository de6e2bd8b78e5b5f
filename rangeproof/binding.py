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

import itertools
from typing import Sequence

import numpy as np
from petlib.ec import EcPt

from .errors import VerificationError
from .generators import pedersen_bases
from .group import ORDER, msm
from .native_msm import label_small_sum
from .norm.commitment import VECTOR_LABEL

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
    if not isinstance(commitments, (list, tuple)) or not commitments:
        raise BindingError("no commitments (a non-empty list of points) to check the aggregate against")
    if type(dim) is not int or dim < 1:
        raise BindingError(f"dim must be a positive int, got {dim!r}")
    xs = _canonical_vector(aggregate, dim)
    if type(blinding_sum) is not int:
        raise BindingError("the blinding sum must be an int")
    Bt = pedersen_bases()[1]
    if not all(isinstance(C, EcPt) and C.group == Bt.group for C in commitments):
        raise BindingError("a commitment is not a point of the commitments' group")
    q = ORDER
    # <X, G> by point additions (the aggregate is small and signed: on the generators' affine
    # table, or msm_small), the rest as one multi-exponentiation
    total = label_small_sum(VECTOR_LABEL, 0, xs) + msm(
        [blinding_sum % q] + [q - 1] * len(commitments), [Bt] + list(commitments))
    if not total.is_infinite():
        raise BindingError()


def _canonical_vector(aggregate, dim: int) -> list[int]:
    """The aggregate's entries as plain ints, read once: exactly ``dim`` of them, each an ``int``
    (or a numpy integer) of at most ``(q - 1) / 2`` in absolute value.

    Lengths and values are checked on what was read, never on what the object says of itself
    (an ndarray subclass is read as a plain array; a list or tuple up to ``dim + 1`` items).
    """
    try:
        if isinstance(aggregate, np.ndarray):
            arr = np.asarray(aggregate)  # a subclass's own len() and tolist() are not used
            if arr.ndim != 1:
                raise BindingError(f"the aggregate must be one-dimensional, got shape {arr.shape}")
            if arr.dtype.kind not in "iuO":
                raise BindingError(f"the aggregate must be a vector of integers, got dtype {arr.dtype}")
            vals = arr.tolist()
        elif isinstance(aggregate, (list, tuple)):
            vals = list(itertools.islice(aggregate, dim + 1))
        else:
            raise BindingError(f"the aggregate must be a vector of integers, got {type(aggregate).__name__}")
    except BindingError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever reading it raised, the aggregate is malformed
        raise BindingError(f"the aggregate could not be read: {type(exc).__name__}") from exc
    if len(vals) != dim:
        raise BindingError(f"the aggregate has {'more than ' + str(dim) if len(vals) > dim else len(vals)} "
                           f"entries, the commitments are to {dim}")
    if not all(type(v) is int or (isinstance(v, np.integer) and not isinstance(v, np.timedelta64))
               for v in vals):
        raise BindingError("the aggregate must be a vector of integers")
    xs = [int(v) for v in vals]
    half = (ORDER - 1) // 2
    if any(v > half or v < -half for v in xs):
        raise BindingError("an entry of the aggregate is not a canonical signed residue (|X_j| > (q - 1) / 2)")
    return xs

