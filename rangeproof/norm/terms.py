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
from ..labels import PEDERSEN_BASES
from ..native_msm import available as native_available, generator_table, msm_public, tensor_add
from ..range_proof import _G_LABEL, _H_LABEL, VerificationTerms, range_generators
from .commitment import VECTOR_LABEL, vector_generators
from .challenge_products import (add_challenge_products, challenge_factors,
                                 challenge_products_unreduced)
from .linear_form import LinearFormTerms

__all__ = ["Accumulator", "prepare_verifier_tables"]

_MONT = (1 << 256) % ORDER
"""2^256 mod q: :func:`.native_msm.tensor_add` multiplies in Montgomery form, so each row factor
is handed over times this."""


def _encode(values: list[int]) -> bytes:
    q = ORDER
    return b"".join([(v % q).to_bytes(32, "big") for v in values])


def _decode(buf: bytearray) -> list[int]:
    return [int.from_bytes(buf[i:i + 32], "big") for i in range(0, len(buf), 32)]


def prepare_verifier_tables(dim: int, range_count: int) -> None:
    """Derives (or loads) the generators a verification over ``dim`` coordinates and
    ``range_count`` range-proof generators uses, and, where the native multi-exponentiation is in
    use, their affine tables (about 7 us per point, once per process, like the derivation).
    A prover's small-value sums (:func:`..native_msm.label_small_sum`) use the same vector table.
    """
    vector_generators(dim)
    range_generators(range_count)
    if native_available():
        generator_table(VECTOR_LABEL, dim)
        generator_table(_G_LABEL, range_count)
        generator_table(_H_LABEL, range_count)
        generator_table(PEDERSEN_BASES, 2)


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
        # what has been summed: Python ints (unreduced), or, with the native code, 32-byte
        # big-endian entries reduced mod q in one buffer (summed in C, handed to the
        # multi-exponentiation as they are)
        self._native = native_available()
        self._vec_total: list[int] | bytearray = bytearray() if self._native else []
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
        """Adds all of ``other``'s equations, weighted by one fresh random scalar.

        Raises:
          ValueError: ``other`` is this accumulator.
        """
        if other is self:
            raise ValueError("Accumulator.merge: cannot merge an accumulator into itself")
        w = self._weight()
        self._add_into(self._range_g, other._range_g, w)
        self._add_into(self._range_h, other._range_h, w)
        # (copies first: ``other`` may share its lists with this accumulator, as a shallow copy does)
        self._vec_g.extend([(w * scale % ORDER, us, d, lo, o) for scale, us, d, lo, o in other._vec_g])
        if other._vec_total:
            self._add_vector(other._vec_total, w)
        self._sum_vectors()  # one running sum: memory stays one d-vector however many merge
        self._b += w * other._b
        self._bt += w * other._bt
        self._scalars.extend([w * s % ORDER for s in other._scalars])
        self._points.extend(list(other._points))

    def _add_vector(self, g: list[int] | bytearray, w: int) -> None:
        """Adds ``w`` times another accumulator's summed vector to this one's."""
        if self._native:
            enc = bytes(g) if isinstance(g, bytearray) else _encode(g)
            self._grow(len(enc) // 32)
            tensor_add(self._vec_total, _encode([w * _MONT % ORDER]), enc, 0, len(enc) // 32)
            return
        vals = _decode(g) if isinstance(g, bytearray) else g
        g = [w * a for a in vals]
        total = self._vec_total
        if not total:
            self._vec_total = g
            return
        if len(total) < len(g):
            total, g = g, total
        self._vec_total = list(map(operator.add, total[:len(g)], g)) + total[len(g):]

    def _grow(self, n: int) -> None:
        """Extends the native buffer to ``n`` entries (zeros)."""
        have = len(self._vec_total) // 32
        if have < n:
            self._vec_total.extend(bytes(32 * (n - have)))

    def _sum_vectors(self) -> None:
        """Adds the pending linear forms into the running sum: per client one fused pass that
        forms its scaled challenge products and adds them (:mod:`.challenge_products`; with the
        native code, ``s = A (x) B`` is added as a tensor product in C, mod q)."""
        for scale, us, d, lo_one, offset in self._vec_g:
            if self._native:
                A, B, _ = challenge_factors(us, d, scale, lo_one=lo_one)
                self._grow(offset + d)
                tensor_add(self._vec_total, _encode([a * _MONT for a in A]), _encode(B), offset, d)
            elif self._vec_total or offset:
                self._vec_total = add_challenge_products(self._vec_total, us, d, scale,
                                                         lo_one=lo_one, offset=offset)
            else:
                self._vec_total = challenge_products_unreduced(us, d, scale, lo_one=lo_one)
        self._vec_g = []

    def _vector_scalars(self) -> list[int] | bytearray:
        """``sum_c w_c g_c`` over the linear forms on the vector generators: Python ints
        (unreduced: the multi-exponentiation reduces its scalars), or with the native code one
        buffer of 32-byte entries reduced mod q.

        The generators are shared, so each client costs one pass over its ``d`` scalars and the
        multi-exponentiation stays ``d`` terms however many clients there are.
        """
        self._sum_vectors()
        return self._vec_total

    def check(self) -> bool:
        """Whether every added equation holds (one multi-exponentiation).

        Every scalar here is public (challenges, proof scalars and the verifier's weights, which
        are fresh per check), so the variable-time bucket method may compute it
        (:mod:`..native_msm`); the fixed generators go to it as cached affine tables.
        """
        q = ORDER
        n = len(self._range_g)
        G, H = range_generators(n) if n else ([], [])
        vec = self._vector_scalars()
        n_vec = len(vec) // 32 if self._native else len(vec)
        VG = vector_generators(n_vec) if n_vec else []
        B, Bt = pedersen_bases()
        rest = [s % q for s in self._range_g] + [s % q for s in self._range_h] + \
            [self._b % q, self._bt % q] + self._scalars
        points = list(VG) + list(G) + list(H) + [B, Bt] + self._points
        if not self._native or not native_available():
            # (the backend was switched off since this accumulator started: decode its buffer)
            vals = _decode(vec) if isinstance(vec, bytearray) else list(vec)
            return msm(vals + rest, points).is_infinite()
        table = b"".join([generator_table(VECTOR_LABEL, n_vec), generator_table(_G_LABEL, n),
                          generator_table(_H_LABEL, n), generator_table(PEDERSEN_BASES, 2)])
        return msm_public(rest, points, table=table, scalar_prefix=bytes(vec)).is_infinite()
