"""Accumulates verification equations into one multi-exponentiation.

Every check in the norm proofs has the form "a multi-exponentiation is the identity". Equations
from several sub-proofs and several clients are combined with independent random weights (drawn
by the verifier from :mod:`secrets`, never from a transcript); scalars on shared generators are
added first. If any equation fails, the combination is the identity with probability at most
``1/q`` over the weights.
"""
from __future__ import annotations

import operator
from typing import Callable

from petlib.ec import EcPt

from ..generators import pedersen_bases
from ..group import ORDER, msm, random_scalar
from ..range_proof import VerificationTerms, range_generators
from .commitment import vector_generators
from .challenge_products import add_challenge_products, challenge_products_unreduced
from .linear_form import LinearFormTerms

__all__ = ["Accumulator"]


class Accumulator:
    """Collects weighted equations; :meth:`check` evaluates them as one multi-exponentiation."""

    def __init__(self, rng: Callable[[int], int] | None = None):
        self._rng = rng
        self._range_g: list[int] = []
        self._range_h: list[int] = []
        # linear forms on the vector generators, not yet summed: (scale, challenges, d, lo_one,
        # offset) stands for scale * s on G_offset.., s the d challenge products (formed only
        # when summed)
        self._vec_g: list[tuple[int, list[int], int, bool, int]] = []
        self._vec_total: list[int] = []  # what has been summed (unreduced)
        self._b = 0
        self._bt = 0
        self._scalars: list[int] = []
        self._points: list[EcPt] = []
        self._first = True

    def _weight(self) -> int:
        if self._first:
            self._first = False
            return 1
        return random_scalar(self._rng) or 1

    @staticmethod
    def _add_into(acc: list[int], values: list[int], w: int) -> None:
        if len(acc) < len(values):
            acc.extend([0] * (len(values) - len(acc)))
        for i, s in enumerate(values):
            acc[i] += w * s

    def add_range(self, t: VerificationTerms) -> None:
        """Adds a range proof's equation."""
        w = self._weight()
        self._add_into(self._range_g, t.g, w)
        self._add_into(self._range_h, t.h, w)
        self._add_bases_and_extras(w, t)

    def add_linear_form(self, t: LinearFormTerms) -> None:
        """Adds a linear-form argument's equation (on the vector generators)."""
        w = self._weight()
        self._vec_g.append((w * t.g_scale % ORDER, t.us, t.dim, t.lo_one, t.offset))
        self._add_bases_and_extras(w, t)

    def _add_bases_and_extras(self, w: int, t: VerificationTerms | LinearFormTerms) -> None:
        """``w`` times the equation's scalars on ``B``, ``B~`` and its own extra points."""
        self._b += w * t.b
        self._bt += w * t.b_blinding
        self._scalars.extend(w * s % ORDER for s in t.extra_scalars)
        self._points.extend(t.extra_points)

    def add_linear_form_on(self, points: list[EcPt], t: LinearFormTerms) -> None:
        """Adds a linear-form argument's equation over explicit generators ``points``."""
        w = self._weight()
        self._b += w * t.b
        self._bt += w * t.b_blinding
        self._scalars.extend(w * s % ORDER for s in list(t.g) + list(t.extra_scalars))
        self._points.extend(list(points[t.offset:t.offset + t.dim]) + list(t.extra_points))

    def add_points(self, scalars: list[int], points: list[EcPt]) -> None:
        """Adds a free-form equation ``sum_i scalars[i] points[i] = 0``."""
        w = self._weight()
        self._scalars.extend(w * s % ORDER for s in scalars)
        self._points.extend(points)

    def merge(self, other: "Accumulator") -> None:
        """Adds all of ``other``'s equations, weighted by one fresh random scalar."""
        w = self._weight()
        self._add_into(self._range_g, other._range_g, w)
        self._add_into(self._range_h, other._range_h, w)
        self._vec_g.extend((w * scale % ORDER, us, d, lo, o) for scale, us, d, lo, o in other._vec_g)
        if other._vec_total:
            self._add_vector([w * a for a in other._vec_total])
        self._sum_vectors()  # one running sum: memory stays one d-vector however many merge
        self._b += w * other._b
        self._bt += w * other._bt
        self._scalars.extend(w * s % ORDER for s in other._scalars)
        self._points.extend(other._points)

    def _add_vector(self, g: list[int]) -> None:
        total = self._vec_total
        if not total:
            self._vec_total = g
            return
        if len(total) < len(g):
            total, g = g, total
        self._vec_total = list(map(operator.add, total[:len(g)], g)) + total[len(g):]

    def _sum_vectors(self) -> None:
        """Adds the pending linear forms into the running sum: per client one fused pass that
        forms its scaled challenge products (unreduced) and adds them (:mod:`.challenge_products`)."""
        for scale, us, d, lo_one, offset in self._vec_g:
            if self._vec_total or offset:
                self._vec_total = add_challenge_products(self._vec_total, us, d, scale,
                                                         lo_one=lo_one, offset=offset)
            else:
                self._vec_total = challenge_products_unreduced(us, d, scale, lo_one=lo_one)
        self._vec_g = []

    def _vector_scalars(self) -> list[int]:
        """``sum_c w_c g_c`` over the linear forms on the vector generators (unreduced: the
        multi-exponentiation reduces its scalars).

        The generators are shared, so each client costs one pass over its ``d`` scalars and the
        multi-exponentiation stays ``d`` terms however many clients there are.
        """
        self._sum_vectors()
        return self._vec_total

    def check(self) -> bool:
        """Whether every added equation holds (one multi-exponentiation)."""
        q = ORDER
        n = len(self._range_g)
        G, H = range_generators(n) if n else ([], [])
        vec = self._vector_scalars()
        VG = vector_generators(len(vec)) if vec else []
        B, Bt = pedersen_bases()
        scalars = [s % q for s in self._range_g] + [s % q for s in self._range_h] + \
                  vec + [self._b % q, self._bt % q] + self._scalars
        points = list(G) + list(H) + list(VG) + [B, Bt] + self._points
        return msm(scalars, points).is_infinite()
