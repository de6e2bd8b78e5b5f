"""The prover's folding step of the inner-product argument, with lazy generator folding.

Each round of the argument halves the vectors and the generators::

    a' = u a_L + u^-1 a_R          G' = u^-1 G_L + u G_R
    b' = u^-1 b_L + u b_R          H' = u H_L + u^-1 H_R

Folding the *scalars* is cheap (Python ints). Folding the *points* is not: every new point is a
2-term multi-exponentiation (about 20 us per term on P-256 here, against about 10 us per term in
a large one). :class:`LazyGenerators` therefore keeps the generators of some earlier round
("materialized") together with one scalar coefficient per materialized point, and only
materializes again every :data:`FOLD_EVERY` rounds, as ``2^FOLD_EVERY``-term
multi-exponentiations, which are cheaper per term. In between, the current round's ``L`` and
``R`` are multi-exponentiations over the materialized points with the coefficients multiplied in.

Write ``N0`` for the number of materialized points in each of G and H and ``N`` for the current
vector length (``N0 / N = 2^t`` after ``t`` lazy rounds). The current generator ``G_cur[k]`` is
``sum_{i = k mod N} cG[i] * Gm[i]`` over materialized indices ``i`` (and likewise for H), so::

    L = sum_{i mod N >= N/2} a[i mod N - N/2] cG[i] Gm[i]
      + sum_{i mod N <  N/2} b[i mod N + N/2] cH[i] Hm[i] + c_L Q
    R = sum_{i mod N <  N/2} a[i mod N + N/2] cG[i] Gm[i]
      + sum_{i mod N >= N/2} b[i mod N - N/2] cH[i] Hm[i] + c_R Q

For a generator vector of length n the total group work is about
``2 n (FOLD_EVERY + c(2^FOLD_EVERY)/c_msm) / (1 - 2^-FOLD_EVERY)`` large-msm terms, which is
smallest at ``FOLD_EVERY`` = 2 or 3 with P-256's costs (measured at n = 4096: about a quarter
less prover time than folding every round; see ``docs/bulletproofs.md``).
"""
from __future__ import annotations

from typing import Sequence

from petlib.ec import EcPt

from .group import ORDER, msm

__all__ = ["FOLD_EVERY", "LazyGenerators"]

FOLD_EVERY = 2
"""Rounds between two materializations of the folded generators."""


class LazyGenerators:
    """The G and H generator vectors of an inner-product prover, folded lazily.

    Args:
      G: the generators ``G_i`` (length ``n``, a power of two).
      H: the generators ``H_i`` (length ``n``).
      G_factors: the statement's scalar factors on ``G`` (``G'_i = G_factors[i] * G_i``).
      H_factors: the statement's scalar factors on ``H``.
    """

    def __init__(self, G: Sequence[EcPt], H: Sequence[EcPt], G_factors: Sequence[int],
                 H_factors: Sequence[int]):
        q = ORDER
        self._G = list(G)
        self._H = list(H)
        self._cG = [f % q for f in G_factors]
        self._cH = [f % q for f in H_factors]
        self._n = len(self._G)  # the current (folded) length N
        self._lazy_rounds = 0

    @property
    def size(self) -> int:
        """The current folded length ``N``."""
        return self._n

    def cross_terms(self, a: Sequence[int], b: Sequence[int], c_L: int, c_R: int,
                    Q: EcPt) -> tuple[EcPt, EcPt]:
        """Computes this round's ``L`` and ``R``.

        Args:
          a: the current vector ``a`` (length ``N``).
          b: the current vector ``b`` (length ``N``).
          c_L: ``<a_L, b_R>``.
          c_R: ``<a_R, b_L>``.
          Q: the inner-product base.

        Returns:
          ``(L, R)`` as in the module docstring.
        """
        q = ORDER
        N = self._n
        half = N // 2
        cG, cH = self._cG, self._cH
        L_s: list[int] = []
        L_p: list[EcPt] = []
        R_s: list[int] = []
        R_p: list[EcPt] = []
        for i in range(len(self._G)):
            k = i % N
            if k >= half:
                L_s.append(a[k - half] * cG[i] % q)
                L_p.append(self._G[i])
                R_s.append(b[k - half] * cH[i] % q)
                R_p.append(self._H[i])
            else:
                L_s.append(b[k + half] * cH[i] % q)
                L_p.append(self._H[i])
                R_s.append(a[k + half] * cG[i] % q)
                R_p.append(self._G[i])
        L_s.append(c_L)
        L_p.append(Q)
        R_s.append(c_R)
        R_p.append(Q)
        return msm(L_s, L_p), msm(R_s, R_p)

    def fold(self, u: int, u_inv: int) -> None:
        """Folds the generators with this round's challenge (lazily).

        Args:
          u: the round's challenge.
          u_inv: its inverse mod q.
        """
        q = ORDER
        N = self._n
        half = N // 2
        cG, cH = self._cG, self._cH
        for i in range(len(cG)):
            if i % N < half:
                cG[i] = cG[i] * u_inv % q
                cH[i] = cH[i] * u % q
            else:
                cG[i] = cG[i] * u % q
                cH[i] = cH[i] * u_inv % q
        self._n = half
        self._lazy_rounds += 1
        if self._lazy_rounds >= FOLD_EVERY and half > 1:
            self._materialize()

    def _materialize(self) -> None:
        N = self._n
        stride = len(self._G) // N
        newG = []
        newH = []
        for k in range(N):
            idx = [k + j * N for j in range(stride)]
            newG.append(msm([self._cG[i] for i in idx], [self._G[i] for i in idx]))
            newH.append(msm([self._cH[i] for i in idx], [self._H[i] for i in idx]))
        self._G, self._H = newG, newH
        self._cG = [1] * N
        self._cH = [1] * N
        self._lazy_rounds = 0
