"""Feldman verifiable secret sharing over the scalar field of P-256: commitments and share checks.

Internal primitive: use it through the protocol (:mod:`secagg.client`, :mod:`secagg.server`). The
maths is in ``docs/secagg.md#verifiable-sharing``.

A dealer shares each of its two secrets with a polynomial ``f(x) = a_0 + a_1 x + ... + a_{t-1}
x^{t-1}`` over Z_q (q the order of P-256, :data:`secagg.shamir.SHARE_PRIME`) and publishes
``C_i = a_i G``. The holder with id ``j`` checks its share ``s_j`` with ::

    s_j G == sum_i j^i C_i

so any ``t`` shares that pass lie on the committed polynomial and rebuild ``a_0``, whose
commitment ``C_0 = a_0 G`` is checkable against what the dealer advertised (its mask public key
for ``s``). Many checks are batched into one multi-scalar multiplication with random weights
(:func:`invalid_shares`); when the batch fails, each check is redone alone to find the culprits.

Encoding: each ``C_i`` is a 33-byte compressed SEC 1 point (``0x02``/``0x03 || x``, x < p, on the
curve); the identity, the uncompressed and the hybrid forms are refused. The group arithmetic is
:mod:`rangeproof.group` (P-256 through petlib), a public module of a package that imports nothing
of :mod:`secagg`.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

from rangeproof.group import ORDER, EcPt, curve, is_identity, msm, point_to_bytes_compact

from .errors import MalformedMessage, NonCanonicalEncoding
from .randomness import RandomSource

__all__ = ["POINT_BYTES", "Commitments", "commit_polynomial", "decode_point", "invalid_shares", "share_is_valid",
           "clear_decode_cache"]

#: bytes of one commitment point (compressed SEC 1)
POINT_BYTES = 33
#: bits of each random weight of a batched check (soundness error 2^-128 per batch)
WEIGHT_BITS = 128

_FIELD_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF  # p of P-256


def decode_point(data: bytes, what: str = "commitment") -> EcPt:
    """A point from its 33-byte compressed SEC 1 encoding, refused unless canonical.

    Raises:
      NonCanonicalEncoding: wrong length, a prefix other than 0x02/0x03 (uncompressed, hybrid or
        identity encodings), x not below p.
      MalformedMessage: x is not the x-coordinate of a curve point (an invalid point).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"{what}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != POINT_BYTES or data[0] not in (2, 3):
        raise NonCanonicalEncoding(f"{what}: expected a 33-byte compressed point (prefix 0x02 or 0x03)")
    if int.from_bytes(data[1:], "big") >= _FIELD_PRIME:
        raise NonCanonicalEncoding(f"{what}: x is not below p")
    # With the prefix 0x02/0x03 and x < p checked, the encoding is the canonical one of the point
    # (if any: OpenSSL's decompression fails when x^3 - 3x + b has no square root; P-256 has no
    # point with y = 0, so both prefixes name distinct points), and never the identity. This is
    # rangeproof.group.point_from_bytes_compact without its re-encoding, which costs a third more.
    try:
        return EcPt.from_binary(data, curve())
    except Exception:  # petlib raises a bare Exception from OpenSSL errors
        raise MalformedMessage(f"{what}: not a point of P-256") from None


def commit_polynomial(coefficients: Sequence[int]) -> tuple[EcPt, ...]:
    """``(a_0 G, ..., a_{t-1} G)``; every coefficient must be non-zero mod q (no identity)."""
    G = curve().generator()
    out = []
    for a in coefficients:
        if not 0 < a < ORDER:
            raise ValueError("coefficients must lie in [1, q)")
        out.append(msm([a], [G]))
    return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class Commitments:
    """One dealer's Feldman commitments: ``t`` points for the polynomial of its mask key ``s``,
    then ``t`` for that of its self-mask seed ``b``.

    Build it with :meth:`from_points` (the dealer) or :meth:`decode` (a receiver: every point is
    checked as it is read). Equality is that of the encodings.
    """

    encoded: bytes
    mask_key: tuple[EcPt, ...] = dataclasses.field(repr=False)
    self_mask: tuple[EcPt, ...] = dataclasses.field(repr=False)

    @property
    def threshold(self) -> int:
        return len(self.mask_key)

    @property
    def mask_key_constant(self) -> bytes:
        """The encoding of ``C_0`` of the mask-key polynomial (must equal the advertised key)."""
        return self.encoded[:POINT_BYTES]

    def __eq__(self, other) -> bool:
        return isinstance(other, Commitments) and other.encoded == self.encoded

    def __hash__(self) -> int:
        return hash(self.encoded)

    @classmethod
    def from_points(cls, mask_key: Sequence[EcPt], self_mask: Sequence[EcPt]) -> "Commitments":
        if len(mask_key) != len(self_mask) or not mask_key:
            raise ValueError("commitments: two non-empty lists of one length")
        if any(is_identity(P) for P in (*mask_key, *self_mask)):
            raise ValueError("commitments: the identity is not a commitment")
        enc = b"".join(point_to_bytes_compact(P) for P in (*mask_key, *self_mask))
        return cls(enc, tuple(mask_key), tuple(self_mask))

    @classmethod
    def decode(cls, data: bytes, threshold: int) -> "Commitments":
        """``2 threshold`` points of 33 bytes.

        Decoded vectors are kept in a small per-process cache keyed by their bytes, so that an
        in-process simulation, where one dealer's vector reaches the server and every holder,
        decodes it once; a client on its own machine decodes each vector it receives
        (``docs/secagg.md`` reports that cost separately). The cache holds public data only and
        only vectors that decoded.

        Raises:
          NonCanonicalEncoding, MalformedMessage: see :func:`decode_point`; a wrong length is
          a :class:`MalformedMessage`.
        """
        data = bytes(data)
        if threshold < 1 or len(data) != 2 * threshold * POINT_BYTES:
            raise MalformedMessage(f"commitments: expected {2 * threshold} points of {POINT_BYTES} bytes")
        return _decode_vector(data, threshold)

    def polynomial(self, kind_is_mask_key: bool) -> tuple[EcPt, ...]:
        return self.mask_key if kind_is_mask_key else self.self_mask


@functools.lru_cache(maxsize=4096)
def _decode_vector(data: bytes, threshold: int) -> Commitments:
    pts = tuple(decode_point(data[i:i + POINT_BYTES]) for i in range(0, len(data), POINT_BYTES))
    return Commitments(data, pts[:threshold], pts[threshold:])


def clear_decode_cache() -> None:
    """Forget every decoded vector (to measure a lone client's decoding cost)."""
    _decode_vector.cache_clear()


@functools.lru_cache(maxsize=256)
def _powers(x: int, count: int) -> tuple[int, ...]:
    out, acc = [], 1
    for _ in range(count):
        out.append(acc)
        acc = acc * x % ORDER
    return tuple(out)


def share_is_valid(points: Sequence[EcPt], holder: int, share: int) -> bool:
    """Whether ``share G == sum_i holder^i C_i`` (one check, ``t + 1`` terms)."""
    if not 0 <= share < ORDER:
        return False
    G = curve().generator()
    return is_identity(msm([share, *(-w for w in _powers(holder, len(points)))], [G, *points]))


def invalid_shares(items: Sequence[tuple[Sequence[EcPt], int, int]], rng: RandomSource) -> list[int]:
    """The indices of the items whose share fails its check, by one batched check first.

    Args:
      items: ``(commitment points, holder id, share)`` triples.
      rng: source of the random weights (``WEIGHT_BITS`` each).

    The batch tests ``(sum_k r_k s_k) G - sum_k sum_i r_k j_k^i C_{k,i} == O`` with independent
    uniform weights ``r_k``: if any item is invalid it passes with probability at most
    ``2^-WEIGHT_BITS``. Items on the same commitment points (the server's case: many holders of
    one dealer) are merged first, ``sum_i (sum_k r_k j_k^i) C_i``, so their cost is ``t`` terms
    in all. On failure each item is checked alone.
    """
    if not items:
        return []
    if any(not 0 <= s < ORDER for _, _, s in items):
        return [k for k, (pts, j, s) in enumerate(items) if not share_is_valid(pts, j, s)]
    weights = [int.from_bytes(rng.bytes(WEIGHT_BITS // 8), "big") | 1 for _ in items]
    lhs = sum(r * s for r, (_, _, s) in zip(weights, items)) % ORDER
    merged: dict[int, tuple[Sequence[EcPt], list[int]]] = {}
    for r, (pts, j, _) in zip(weights, items):
        key = id(pts)
        if key not in merged:
            merged[key] = (pts, [0] * len(pts))
        acc = merged[key][1]
        for i, w in enumerate(_powers(j, len(pts))):
            acc[i] = (acc[i] + r * w) % ORDER
    scalars, points = [lhs], [curve().generator()]
    for pts, acc in merged.values():
        scalars.extend(-a for a in acc)
        points.extend(pts)
    if is_identity(msm(scalars, points)):
        return []
    return [k for k, (pts, j, s) in enumerate(items) if not share_is_valid(pts, j, s)]
