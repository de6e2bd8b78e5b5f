"""Cheating provers for the norm proofs, built on the real prover code with its checks bypassed.

A cheater runs the project's own prover (:meth:`L2Proof._finish`, :meth:`LinfProof._prove`,
:meth:`RangeProof._prove`) on inputs the honest entry points refuse: vectors over the bound,
coordinates anywhere in ``Z_q``, projections and sums of its own choosing, range-proven values
outside their range (proven with their low bits, as any cheater must), and commitments ground
until the projection suits it. If the verifier accepts one of these proofs, the soundness argument
in ``docs/proofs.md`` does not hold for the code. :func:`l2_real` can also lie in each committed
component separately: projections ``z`` of its choosing in the ``V_k``, a sum of squares ``S`` of
its choosing in ``C_S``, a witness other than the committed vector.

Nothing here is imported by the library; it is test code (``tests/test_norm_cheaters.py``).
"""
from __future__ import annotations

import contextlib
import math
import random
from typing import Callable, Iterator, Sequence

import numpy as np

from rangeproof.generators import pedersen_bases
from rangeproof.group import ORDER, msm
from rangeproof.norm import L2Proof, LinfProof, NormStatement, commit_vector
from rangeproof.norm.commitment import to_residues
from rangeproof.norm.l2 import projection_for
from rangeproof.norm.projection import Projection
from rangeproof.range_proof import RangeProof

B, BT = pedersen_bases()
_LIMB = 30


def centered(v: int) -> int:
    """The representative of ``v mod q`` in ``(-q/2, q/2]``."""
    v %= ORDER
    return v - ORDER if v > ORDER // 2 else v


@contextlib.contextmanager
def unchecked_range_proofs() -> Iterator[None]:
    """While active, :meth:`RangeProof.prove` skips its range check and proves whatever it is
    given with :meth:`RangeProof._prove` (a value outside ``[0, 2^n)`` is committed in full, its
    bit vector holds only its low ``n`` bits)."""
    original = RangeProof.__dict__["prove"]

    def forced(cls, transcript, values, blindings, n_bits, *, rng=None):
        return cls._prove(transcript, [int(v) for v in values], [int(b) for b in blindings],
                          n_bits, rng)

    RangeProof.prove = classmethod(forced)
    try:
        yield
    finally:
        RangeProof.prove = original


def project(proj: Projection, xs: Sequence[int]) -> list[int]:
    """``P x`` over the integers for centered coordinates of any size (``x`` taken mod q and
    centered): the vector is split into signed 30-bit limbs, each projected exactly by the
    real :meth:`Projection.apply`, and recombined."""
    cs = [centered(int(v)) for v in xs]
    signs = np.array([1 if c >= 0 else -1 for c in cs], dtype=np.int64)
    mags = [abs(c) for c in cs]
    top = max(mags, default=0).bit_length()
    z = [0] * proj.rows
    for i in range(0, max(top, 1), _LIMB):
        limb = np.array([(m >> i) & ((1 << _LIMB) - 1) for m in mags], dtype=np.int64) * signs
        if not limb.any():
            continue
        part = proj.apply(limb)
        z = [a + (b << i) for a, b in zip(z, part)]
    return z


def rng_of(seed: int) -> Callable[[int], int]:
    return random.Random(seed).getrandbits


def square_norm_mod_q(xs: Sequence[int]) -> int:
    """``<x, x> mod q`` of the residues ``x`` (what ``C_S`` must hold for the norm-linear
    argument to pass)."""
    return sum(centered(int(v)) ** 2 for v in xs) % ORDER


def l2_real(st: NormStatement, xs: Sequence[int], C, r: int, rng, *,
            z: Sequence[int] | None = None, S: int | None = None) -> L2Proof:
    """The real L2 prover past its checks: ``x`` anywhere in ``Z_q^d`` as the witness of the
    norm-linear argument on ``C`` (blinding ``r``; a ``C`` that does not open to ``x`` makes a
    cheater that swaps its vector), the true projections ``P x`` in the ``V_k`` unless ``z`` is
    given, ``<x, x> mod q`` in ``C_S`` unless ``S`` is given; range proofs are made whatever the
    values (``M^2 - S`` and ``z_k + T`` outside their ranges are proven with their low bits)."""
    prm = st.l2_params()
    t = st.transcript(C)
    proj = projection_for(t, prm, st.dim)
    if z is None:
        z = project(proj, xs)
    if S is None:
        S = square_norm_mod_q(xs)
    with unchecked_range_proofs():
        return L2Proof._finish(t, st, prm, proj, [int(v) % ORDER for v in xs], list(z), S, C, r,
                               rng, _NoClock())


def outside_count(st: NormStatement, C, xs: Sequence[int]) -> int:
    """How many of the range-checked projections of ``x`` under ``C``'s challenge fall outside
    ``[-T, T)``."""
    prm = st.l2_params()
    T = prm.half_range
    z = project(projection_for(st.transcript(C), prm, st.dim), xs)
    return sum(1 for v in z if not -T <= v < T)


def l2_grind(st: NormStatement, xs: Sequence[int], tries: int, rng) -> tuple[object, int, L2Proof, int]:
    """A prover that re-randomizes its commitment ``tries`` times (each a fresh projection) and
    keeps the one with the fewest range-checked projections outside ``[-T, T)``, then proves it
    with the real prover (the out-of-range ones proven with their low bits).

    Returns:
      ``(C, r, proof, outside)``."""
    C, r = commit(list(xs), rng)
    best = None
    for _ in range(tries):
        out = outside_count(st, C, xs)
        if best is None or out < best[2]:
            best = (C, r, out)
        delta = rng(256) % ORDER
        C, r = C + msm([delta], [BT]), (r + delta) % ORDER
    C, r, out = best
    return C, r, l2_real(st, xs, C, r, rng), out


def sum_of_squares(target: int) -> list[int]:
    """Non-negative integers whose squares sum to exactly ``target`` (greedy: each step leaves at
    most twice the square root of what was left, so a 256-bit target takes about ten terms)."""
    out = []
    while target:
        a = math.isqrt(target)
        out.append(a)
        target -= a * a
    return out


def linf_real(st: NormStatement, xs: Sequence[int], C, r: int, rng) -> LinfProof:
    """The real L-infinity prover past its bound check, range proofs made whatever the values."""
    with unchecked_range_proofs():
        return LinfProof._prove(st, [centered(int(v)) for v in xs], C, r, rng)


def commit(xs: Sequence[int], rng):
    """A commitment to ``x`` taken mod q."""
    return commit_vector(to_residues([int(v) for v in xs]), rng=rng)


class _NoClock:
    def lap(self, phase: str) -> None:
        pass


def norm_linear_with_padding(pad: Sequence[int]):
    """A context in which :meth:`NormLinearArgument.create` (called by the real L2 prover) puts
    the values ``pad`` on the last chunk's padding coordinates: the chunk commitments, the
    ``C_S,j`` and the witness of the last chunk include them (the split of ``Y`` holds the real
    coordinates' ``<x, v>``, as the verifier's ``Y`` does). The commitment handed to the verifier
    must then include them as well (:func:`commit_with_padding`). Everything else is the real
    code: :meth:`NormLinearProof.create` per chunk, the real transcript and layout."""
    from rangeproof.group import random_scalar
    from rangeproof.norm import norm_linear as nl

    original = nl.NormLinearArgument.__dict__["create"]

    def create(cls, transcript, G, x, r, v, s, sigma, *, rng=None):
        q = ORDER
        d = len(x)
        layout = nl.chunk_layout(d)
        last = layout[-1]
        if len(pad) > last.size - last.length:
            raise ValueError("more padding values than padding coordinates")
        cls._bind_layout(transcript, d, layout)
        xs = [centered(int(a)) for a in x] + [int(p) for p in pad]
        blind = [[r, s, sigma]]
        splits = []
        spans = []
        for j, ch in enumerate(layout):
            n_x = ch.length + (len(pad) if j == len(layout) - 1 else 0)
            spans.append(n_x)
            if j == 0:
                continue
            xj = xs[ch.offset:ch.offset + n_x]
            vj = [int(a) for a in v[ch.offset:ch.offset + ch.length]]
            rj, sj, gj = random_scalar(rng), random_scalar(rng), random_scalar(rng)
            Cj = msm(xj + [rj], list(G[ch.offset:ch.offset + n_x]) + [BT])
            Yj = msm([sum(a * b for a, b in zip(xj, vj)) % q, sj], [B, BT])
            Sj = msm([sum(a * a for a in xj) % q, gj], [B, BT])
            for label, P in ((b"C_j", Cj), (b"Y_j", Yj), (b"C_S_j", Sj)):
                transcript.validate_and_append_point(label, P)
            splits.append((Cj, Yj, Sj))
            blind.append([rj, sj, gj])
        for c in range(3):
            blind[0][c] = (blind[0][c] - sum(b[c] for b in blind[1:])) % q
        pad_v = nl._padding_vector(transcript, last)
        parts = []
        for j, ch in enumerate(layout):
            n_x = spans[j]
            vj = list(v[ch.offset:ch.offset + ch.length])
            rest: list[int] = []
            if j == len(layout) - 1:
                vj += list(pad_v[:len(pad)])
                rest = list(pad_v[len(pad):])
            rj, sj, gj = blind[j]
            parts.append(nl.NormLinearProof.create(
                transcript, G[ch.offset:ch.offset + ch.size], xs[ch.offset:ch.offset + n_x], rj,
                vj, sj, gj, rng=rng, index=j, offset=ch.offset, pad_v=rest))
        return cls(splits, parts)

    @contextlib.contextmanager
    def active() -> Iterator[None]:
        nl.NormLinearArgument.create = classmethod(create)
        try:
            yield
        finally:
            nl.NormLinearArgument.create = original

    return active()


def commit_with_padding(xs: Sequence[int], pad: Sequence[int], rng):
    """``C = <x, G_0..G_{d-1}> + <pad, G_d..> + r B~``: a commitment with a component on the
    padding generators."""
    from rangeproof.group import random_scalar
    from rangeproof.norm.commitment import vector_generators

    full = [centered(int(a)) for a in xs] + [int(p) for p in pad]
    r = random_scalar(rng)
    return msm(full + [r], vector_generators(len(full)) + [BT]), r
