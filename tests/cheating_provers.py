"""Cheating provers for the norm proofs, built on the real prover code with its checks bypassed.

A cheater runs the project's own prover (:meth:`L2Proof._finish`, :meth:`LinfProof._prove`,
:meth:`RangeProof._prove`) on inputs the honest entry points refuse: vectors over the bound,
coordinates anywhere in ``Z_q``, projections and sums of its own choosing, range-proven values
outside their range (proven with their low bits, as any cheater must), and commitments ground
until the projection suits it. If the verifier accepts one of these proofs, the soundness argument
in ``docs/proofs.md`` does not hold for the code. The forge (:func:`l2_forge`) goes further and
lies in each committed component separately.

Nothing here is imported by the library; it is test code (``tests/test_norm_cheaters.py``).
"""
from __future__ import annotations

import contextlib
import random
from typing import Callable, Iterator, Sequence

import numpy as np

from rangeproof.generators import pedersen_bases
from rangeproof.group import ORDER, msm
from rangeproof.norm import L2Proof, LinfProof, NormStatement, commit_vector
from rangeproof.norm.commitment import to_residues, vector_generators
from rangeproof.norm.l2 import _gammas, _link_challenges, projection_for, projection_generators
from rangeproof.norm.linear_form import LinearFormProof
from rangeproof.norm.params import SMALLNESS_PROJECTIONS, SUM_BITS
from rangeproof.norm.projection import Projection
from rangeproof.norm.self_inner import SelfInnerProof
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


def l2_real(st: NormStatement, xs: Sequence[int], C, r: int, rng, *,
            z: Sequence[int] | None = None, S: int | None = None) -> L2Proof:
    """The real L2 prover past its checks: ``x`` anywhere in ``Z_q^d`` behind ``C`` (blinding
    ``r``), the true projections unless ``z`` is given, their true sum of squares unless ``S`` is
    given; range proofs are made whatever the values."""
    prm = st.l2_params()
    t = st.transcript(C, 0)
    proj = projection_for(t, prm, st.dim)
    if z is None:
        z = project(proj, xs)
    if S is None:
        S = sum(v * v for v in z)
    with unchecked_range_proofs():
        return L2Proof._finish(t, st, prm, proj, [int(v) % ORDER for v in xs], list(z), S, C, r,
                               rng, _NoClock())


def l2_grind(st: NormStatement, xs: Sequence[int], tries: int, rng) -> tuple[object, int, L2Proof, int]:
    """A prover that re-randomizes its commitment ``tries`` times (each a fresh projection) and
    keeps the one whose sketch ``S`` is smallest, then proves it with the real prover.

    Returns:
      ``(C, r, proof, S)``."""
    prm = st.l2_params()
    C, r = commit_vector(list(xs), rng=rng)
    best = None
    for _ in range(tries):
        proj = projection_for(st.transcript(C, 0), prm, st.dim)
        z = project(proj, xs)
        S = sum(v * v for v in z)
        if best is None or S < best[2]:
            best = (C, r, S)
        delta = rng(256) % ORDER
        C, r = C + msm([delta], [BT]), (r + delta) % ORDER
    C, r, S = best
    return C, r, l2_real(st, xs, C, r, rng), S


def l2_forge(st: NormStatement, xs: Sequence[int], C, r: int, z: Sequence[int], S: int,
             v_values: Sequence[int], y_value, rng) -> L2Proof:
    """A cheating prover that lies in each component separately: ``z`` is committed in ``C_z``,
    ``v_values`` (clamped into ``[0, 2T)``) in the ``V_k`` and their range proof, ``y_value``
    (an int, or a function of ``gamma``) in ``Y`` and ``S`` in ``C_S``; every sub-proof is made
    by the honest sub-prover on these values, valid or not."""
    prm = st.l2_params()
    K, T, R = prm.projections, prm.half_range, SMALLNESS_PROJECTIONS
    H = projection_generators(K)
    t = st.transcript(C, 0)
    proj = projection_for(t, prm, st.dim)
    rho = rng(256) % ORDER
    C_z = msm([v % ORDER for v in z] + [rho], H + [BT])
    vals = [min(max(v, 0), 2 * T - 1) for v in v_values[:R]]
    s = [rng(256) % ORDER for _ in range(R)]
    V = [msm([v, sk], [B, BT]) for v, sk in zip(vals, s)]
    t.validate_and_append_point(b"C_z", C_z)
    for P in V:
        t.append_point(b"V", P)
    gamma = _gammas(t, K)
    s_Y = rng(256) % ORDER
    yv = y_value(gamma) if callable(y_value) else y_value
    Y = msm([yv, s_Y], [B, BT])
    t.append_point(b"Y", Y)
    delta, c = _link_challenges(t)
    v_small = [(g + c * delta[k]) % ORDER if k < R else g for k, g in enumerate(gamma)]
    s_link = (s_Y + c * sum(d * sk for d, sk in zip(delta, s))) % ORDER
    link = LinearFormProof.create(t, H, [v % ORDER for v in z], rho, v_small, s_link, rng=rng)
    sigma = rng(256) % ORDER
    C_S = msm([S, sigma], [B, BT])
    t.append_point(b"C_S", C_S)
    squares = SelfInnerProof.create(t, H, list(z), rho, sigma, rng=rng)
    rz, _ = RangeProof.prove(t, vals, s, prm.bits, rng=rng)
    rs, _ = RangeProof.prove(t, [min(max(prm.tau - S, 0), (1 << SUM_BITS) - 1)], [(-sigma) % ORDER],
                             SUM_BITS, rng=rng)
    v = proj.transpose_apply(gamma)
    lf = LinearFormProof.create(t, vector_generators(st.dim), [int(x) % ORDER for x in xs], r, v, s_Y,
                                rng=rng)
    return L2Proof(0, C_z, V, Y, C_S, link, squares, rz, rs, lf)


def inner(z: Sequence[int]):
    """``y_value`` for :func:`l2_forge`: the true ``<gamma, z>``."""
    return lambda gamma: sum(g * v for g, v in zip(gamma, z))


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
