"""The linear-form prover's generators, folded lazily with a planned materialization schedule.

Each round of the argument (``docs/proofs.md``, "Linear-form argument") folds the generators,
``G'_k = u^-1 G_k + u G_{k+n/2}``. Doing that with points costs a scalar multiplication per
new point, about three large multi-exponentiation terms; this module keeps the fold symbolic
instead. With ``pts`` the points of the last materialization, ``n`` the current length and
``g = i // n`` the *group* of materialized index ``i``, the current generator ``k`` is ::

    G_k = scale * sum_g c_g pts[g n + k]        (indices past len(pts) are the identity)

A fold multiplies ``scale`` by ``u^-1`` and doubles the groups, ``c'_{2g} = c_g`` and
``c'_{2g+1} = u^2 c_g``; so ``c_0 = 1`` and ``scale`` is common to every point. The cross terms
of a round are then one multi-exponentiation over all materialized points (with the ``c_g``
multiplied into the vector's coordinates), times ``scale`` at the end.

*Materializing* replaces each ``G_k`` by one point, ``pts[k] + sum_{g >= 1} c_g pts[g n + k]``
(an ``(m - 1)``-term multi-exponentiation and one addition for a group of ``m`` points, the
coefficients shared by all groups; a lone point is kept as it is). A lazy round costs one term
per materialized point, a materialization about ``1.25`` terms per point for groups of four.

*Bucket rounds.* While the points are still the original generators, the current vector is
``f sum_a e_a x0[a n + k]`` for the committed small integer vector ``x0``, so a cross term is
``sum_{a,b} e_a c_b (sum_k x0[.] pts[.])``: the inner sums have small integer coefficients and
are computed by point additions (on the generators' affine table in C,
:func:`rangeproof.native_msm.label_small_sum`, about 0.6 us per term, or
:func:`rangeproof.group.msm_small`, about 1.2 us, against 10 us). Their number doubles per
round (four times the inner sums, each half as long) while the rest halves, so only the first
few rounds (three at ``d = 1,199,882``) are done this way, then the points are grouped once.

:func:`fold_plan` picks the number of bucket rounds and the rounds after which to materialize
by dynamic programming over the measured costs below. The schedule changes the work, never the
points computed.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from petlib.ec import EcPt

from ..generators import are_generators
from ..group import ORDER, SMALL_SCALAR_LIMIT, msm, msm_shared, msm_small
from ..native_msm import label_small_sum

__all__ = ["FoldedGenerators", "fold_plan", "materialization_plan"]

# Cost of materializing one group of m points (an (m-1)-term multi-exponentiation and an
# addition, through msm_shared), in units of one term of a large multi-exponentiation (about
# 10 us on P-256 here), as measured: 35.5, 40.8, 50.6, 59.8 and 88.2 us for m = 2, 3, 4, 5, 8.
_GROUP_COST = {1: 0.0, 2: 3.55, 3: 4.1, 4: 5.05, 5: 6.0, 6: 6.9, 7: 7.9, 8: 8.8}
_LARGE_TERM = 1.0
_LAZY_TERM = 1.03  # a lazy term also pays a modular multiplication for c_g


def _group_cost(m: int) -> float:
    return _GROUP_COST.get(m, 1.1 * (m - 1) + 1.2)


def _rounds(d: int) -> int:
    return max(0, (d - 1).bit_length())


def _materialize_cost(count: int, n: int) -> float:
    """Cost of materializing ``count`` points at current length ``n``."""
    if count <= n:
        return 0.0
    full, rest = divmod(count, n)  # every k < n has `full` points, the first `rest` one more
    return rest * _group_cost(full + 1) + (n - rest) * _group_cost(full)


_ADD = 0.09  # one point addition in msm_small's loop (about 0.9 us), in the same units; on the
# generators' affine table in C (label_small_sum) about 0.05, which picks the same plans from
# 2^12 to 2^20 coordinates
_BUCKET = 0.5  # per bucket of one msm_small call (two allocations, the running sums: 5 us)


def _best_from(d: int):
    """The dynamic programme over materializations, from any round and point count."""
    k = _rounds(d)
    n0 = 1 << k

    # best(r, count): cheapest cost of rounds r..k-1 when the materialized points number `count`
    # and the current length is n0 >> r (before round r's cross terms).
    @lru_cache(maxsize=None)
    def best(r: int, count: int) -> tuple[float, tuple[int, ...]]:
        if r == k:
            return (count * _LARGE_TERM if count > 1 else 0.0), ()
        n = n0 >> r
        half = n // 2
        if r == 0:
            terms = 2 * (d - half)  # only coordinates with a partner in the upper half
        else:
            terms = count * (_LAZY_TERM if count > n else _LARGE_TERM)
        lazy_cost, lazy_plan = best(r + 1, count)
        options = [(terms + lazy_cost, lazy_plan)]
        if r + 1 < k:
            new_count = min(count, half)
            mat = _materialize_cost(count, half)
            cost, plan = best(r + 1, new_count)
            options.append((terms + mat + cost, (r,) + plan))
        return min(options, key=lambda o: o[0])

    return best


def _bucket_round_cost(d: int, r: int, top: int) -> float:
    """Round ``r``'s cross terms by point additions: one per (sub-vector, point group, k)."""
    n = (1 << _rounds(d)) >> r
    half = n // 2
    groups = -(-d // n)
    adds = calls = 0
    for a in range(groups):
        for b in range(groups):
            for cnt in (min(half, d - a * n, d - b * n - half), min(half, d - a * n - half, d - b * n)):
                if cnt > 0:
                    adds += cnt
                    calls += 1
    return adds * _ADD + calls * (_BUCKET * (top + 1) + 1)


@lru_cache(maxsize=64)
def fold_plan(d: int, top: int | None = None) -> tuple[int, frozenset[int]]:
    """How the prover handles each round: ``(bucket rounds, rounds to materialize after)``.

    The first ``bucket rounds`` rounds compute their cross terms from the original small
    integer vector by point additions (:func:`rangeproof.group.msm_small`), which is possible
    only while the points are the original generators (nothing materialized yet) and costs
    one addition per (sub-vector of ``x``, group of points, coordinate), a number that grows
    fourfold per round while everything else halves; after them the usual lazy folding and
    planned materialization take over. Minimizes the modelled cost over both choices.

    Args:
      d: the number of generators (``d >= 1``).
      top: ``max |x_j|`` of the committed vector, or None when it is not small (no bucket
        rounds).

    Returns:
      ``(r_b, rounds)``: bucket rounds ``0..r_b-1``, and the rounds after whose fold the
      generators are materialized (none of them below ``r_b - 1``).
    """
    best = _best_from(d)
    k = _rounds(d)
    options = [(best(0, d)[0], 0, best(0, d)[1])]
    if top is not None and 0 < top <= SMALL_SCALAR_LIMIT:
        spent = 0.0
        for r_b in range(1, k + 1):
            spent += _bucket_round_cost(d, r_b - 1, top)
            if spent > options[0][0]:
                break
            rest, plan = best(r_b, d)  # go on lazily from the original points...
            options.append((spent + rest, r_b, plan))
            n = (1 << k) >> r_b
            if r_b < k and n > 1:  # ...or materialize right after the last bucket round
                rest, plan = best(r_b, min(d, n))
                options.append((spent + _materialize_cost(d, n) + rest, r_b, (r_b - 1,) + plan))
    cost, r_b, plan = min(options, key=lambda o: o[0])
    return r_b, frozenset(plan)


def materialization_plan(d: int) -> frozenset[int]:
    """The rounds (0-based) after whose fold the generators are materialized, without bucket
    rounds (:func:`fold_plan` with ``top = None``)."""
    return fold_plan(d, None)[1]


class FoldedGenerators:
    """The generators ``G`` of a linear-form prover, folded lazily.

    Args:
      G: the ``d`` generators; the current length starts at the next power of two (the
        missing ones are the identity).
      small_x: optionally the committed vector as signed ints; when its entries are small,
        the first rounds use :meth:`small_cross_terms` (see :func:`fold_plan`).
      label, offset: when ``G`` are the generators ``generators(label)[offset:]`` themselves
        (checked here), the bucket rounds' sums run on the label's affine table
        (:func:`rangeproof.native_msm.label_small_sum`; faster only).
    """

    def __init__(self, G: Sequence[EcPt], small_x: Sequence[int] | None = None, *,
                 label: bytes | None = None, offset: int = 0):
        self.pts = list(G)
        self.coef = [1]  # c_g per group
        self.scale = 1
        self.length = 1 << _rounds(len(self.pts))
        self._round = 0
        top = None
        if small_x is not None and len(small_x) == len(self.pts) and len(small_x):
            top = max(max(small_x), -min(small_x))
            if top > SMALL_SCALAR_LIMIT:
                top = None
        self._small = list(small_x) if top is not None else None
        self._table = None
        if self._small is not None and label is not None and are_generators(self.pts, label, offset):
            self._table = (label, offset, np.array(self._small, dtype=np.int64))
        self.bucket_rounds, self._plan = fold_plan(max(1, len(self.pts)), top)
        if self._small is None:
            self.bucket_rounds = 0

    def uses_buckets(self) -> bool:
        """Whether this round's cross terms come from :meth:`small_cross_terms`."""
        return self._round < self.bucket_rounds

    def small_cross_terms(self, e: Sequence[int]) -> tuple[list[int], list[EcPt], list[int], list[EcPt]]:
        """This round's cross terms from the original small vector (bucket rounds only).

        With the current vector ``x_k = f sum_a e_a x0[a n + k]`` (``x0`` the original vector,
        ``f`` kept by the caller) and the current generators as in the module docstring,
        ``<x_lo, G_hi> = f scale sum_{a,b} e_a c_b sum_k x0[a n + k] pts[b n + n/2 + k]``; each
        inner sum has small integer coefficients (:func:`rangeproof.group.msm_small`).

        Args:
          e: the coefficients ``e_a`` of the sub-vectors of ``x0`` (``e_0 = 1``).

        Returns:
          ``(L scalars, L points, R scalars, R points)`` as for :meth:`cross_terms`: few points
          (the inner sums) with big scalars ``e_a c_b``.
        """
        if not self.uses_buckets():
            raise ValueError("FoldedGenerators.small_cross_terms: not a bucket round")
        q = ORDER
        n = self.length
        half = n // 2
        x, pts = self._small, self.pts
        d = len(pts)
        out = ([], [], [], [])
        for a, ea in enumerate(e):
            if a * n >= d:
                break
            for b, cb in enumerate(self.coef):
                if b * n >= d:
                    break
                # L: x0[a n + k] with pts[b n + half + k]; R: x0[a n + half + k] with pts[b n + k]
                for side, xo, po in ((0, a * n, b * n + half), (2, a * n + half, b * n)):
                    cnt = min(half, d - xo, d - po)
                    if cnt <= 0:
                        continue
                    if self._table is None:
                        S = msm_small(x[xo:xo + cnt], pts[po:po + cnt])
                    else:
                        label, base, x64 = self._table
                        S = label_small_sum(label, base + po, x64[xo:xo + cnt])
                    if not S.is_infinite():
                        out[side].append(ea * cb % q)
                        out[side + 1].append(S)
        return out

    def _groups(self):
        n = self.length
        for g, c in enumerate(self.coef):
            base = g * n
            if base >= len(self.pts):
                return
            yield base, c

    def cross_terms(self, xs: Sequence[int]) -> tuple[list[int], list[EcPt], list[int], list[EcPt]]:
        """This round's ``L`` and ``R`` generator parts, before the common ``scale``.

        Args:
          xs: the current vector (length at most the current length; missing entries are 0).

        Returns:
          ``(L scalars, L points, R scalars, R points)`` with
          ``<x_lo, G_hi> = scale * msm(L)`` and ``<x_hi, G_lo> = scale * msm(R)``; zero
          coordinates are left out.
        """
        q = ORDER
        n = self.length
        half = n // 2
        pts = self.pts
        size = len(pts)
        ell = len(xs)
        x_lo = list(xs[:half])
        x_hi = list(xs[half:ell])
        Ls: list[int] = []
        Lp: list[EcPt] = []
        Rs: list[int] = []
        Rp: list[EcPt] = []
        for base, c in self._groups():
            # L: x_lo[j] with generator half + j, i.e. pts[base + half + j]
            cnt = min(len(x_lo), size - base - half)
            if cnt > 0:
                Ls.extend(x_lo[:cnt] if c == 1 else [a * c % q for a in x_lo[:cnt]])
                Lp.extend(pts[base + half:base + half + cnt])
            # R: x_hi[j] with generator j, i.e. pts[base + j]
            cnt = min(len(x_hi), size - base)
            if cnt > 0:
                Rs.extend(x_hi[:cnt] if c == 1 else [a * c % q for a in x_hi[:cnt]])
                Rp.extend(pts[base:base + cnt])
        return (*_drop_zeros(Ls, Lp), *_drop_zeros(Rs, Rp))

    def fold(self, u: int, u_inv: int) -> None:
        """Folds with this round's challenge ``u`` (and its inverse), lazily or not per the plan:
        ``G' = u^-1 G_lo + u G_hi`` (the linear-form argument)."""
        self.fold_by(u * u % ORDER, u_inv)

    def fold_by(self, ratio: int, factor: int) -> None:
        """The general fold ``G' = factor (G_lo + ratio G_hi)``: the norm-linear argument's
        ``G' = G_lo + u^-1 G_hi`` is ``fold_by(u^-1, 1)``."""
        q = ORDER
        coef = []
        for c in self.coef:
            coef += [c, c * ratio % q]
        self.coef = coef
        if factor != 1:
            self.scale = self.scale * factor % q
        self.length //= 2
        if self._round in self._plan and self.length > 1:
            self._materialize()
            # bucket rounds need the original points: none after a materialization
            self.bucket_rounds = min(self.bucket_rounds, self._round + 1)
        self._round += 1

    def _materialize(self) -> None:
        n = self.length
        pts = self.pts
        size = len(pts)
        out = pts[:min(n, size)]
        # group k: pts[k] (coefficient c_0 = 1) plus pts[k + g n] for g >= 1; all groups share
        # the coefficients c_1, c_2, ..., so they are converted once (msm_shared)
        busy = [k for k in range(min(n, size)) if k + n < size]
        sums = msm_shared(self.coef[1:], [pts[k + n:size:n] for k in busy], [pts[k] for k in busy])
        for k, P in zip(busy, sums):
            out[k] = P
        self.pts = out
        self.coef = [1]

    def final(self) -> EcPt:
        """The single folded generator (current length 1)."""
        if self.length != 1:
            raise ValueError("FoldedGenerators.final: not folded down to one generator")
        q = ORDER
        s = self.scale
        scalars = [c * s % q for _, c in self._groups()]
        return msm(scalars, self.pts[:len(scalars)])


def _drop_zeros(scalars: list[int], points: list[EcPt]) -> tuple[list[int], list[EcPt]]:
    if 0 not in scalars:
        return scalars, points
    keep = [i for i, s in enumerate(scalars) if s]
    return [scalars[i] for i in keep], [points[i] for i in keep]
