"""The prime-order group: NIST P-256 through petlib, canonical encodings, multi-exponentiation.

Scalars are plain Python ``int`` values modulo :data:`ORDER` everywhere in this package; they
become petlib ``Bn`` objects only inside :func:`msm`, the one place where group work happens in
bulk (OpenSSL's ``EC_POINTs_mul``, about 15 us per element against about 45 us for a single
scalar multiplication).

Point encodings:

* :func:`point_to_bytes` / :func:`point_from_bytes` -- the canonical wire form, **65 bytes,
  uncompressed** (``0x04 || x || y``, SEC 1). Decoding it costs about 2 us, against about 17 us
  for the 33-byte compressed form (which needs a square root), so verifiers that decode many
  points prefer it. The identity, where allowed, is 65 zero bytes.
* :func:`point_to_bytes_compact` / :func:`point_from_bytes_compact` -- the 33-byte compressed
  form (``0x02``/``0x03 || x``), for sizes that matter more than decode time. The identity, where
  allowed, is 33 zero bytes.

Both decoders are strict: exactly one byte string decodes to each point (the decoded point is
re-encoded and compared), and anything else raises :class:`~rangeproof.errors.EncodingError`.
"""
from __future__ import annotations

import operator
import secrets
from typing import Callable, Sequence

from petlib.bn import Bn
from petlib.ec import EcGroup, EcPt, POINT_CONVERSION_COMPRESSED, POINT_CONVERSION_UNCOMPRESSED

from .errors import EncodingError

__all__ = [
    "CURVE_NID",
    "ORDER",
    "POINT_BYTES",
    "COMPACT_POINT_BYTES",
    "SCALAR_BYTES",
    "EcPt",
    "curve",
    "identity",
    "is_identity",
    "is_group_point",
    "point_to_bytes",
    "point_from_bytes",
    "point_to_bytes_compact",
    "point_from_bytes_compact",
    "scalar_to_bytes",
    "scalar_from_bytes",
    "msm",
    "random_scalar",
    "inverse",
    "batch_inverse",
]

CURVE_NID = 415
"""OpenSSL NID of NIST P-256 (prime256v1); petlib's default is P-224, which is much slower here."""

_GROUP = EcGroup(CURVE_NID)

ORDER: int = int(_GROUP.order())
"""q, the prime order of the P-256 group."""

SCALAR_BYTES = 32
POINT_BYTES = 65
COMPACT_POINT_BYTES = 33

_IDENTITY_WIDE = bytes(POINT_BYTES)
_IDENTITY_COMPACT = bytes(COMPACT_POINT_BYTES)


def curve() -> EcGroup:
    """Returns the package's group, P-256 (one shared ``EcGroup`` object)."""
    return _GROUP


def identity() -> EcPt:
    """Returns a fresh identity point (the point at infinity)."""
    return _GROUP.infinite()


def is_identity(P: EcPt) -> bool:
    """Returns whether ``P`` is the identity point."""
    return P.is_infinite()


def is_group_point(P: object) -> bool:
    """Returns whether ``P`` is a petlib point of this package's group (P-256)."""
    return isinstance(P, EcPt) and (P.group is _GROUP or P.group == _GROUP)


def point_to_bytes(P: EcPt) -> bytes:
    """Encodes a point in the canonical 65-byte uncompressed form.

    Args:
      P: a point of :func:`curve`.

    Returns:
      ``0x04 || x || y`` (big-endian, 32 bytes each), or 65 zero bytes for the identity.
    """
    if P.is_infinite():
        return _IDENTITY_WIDE
    return P.export(POINT_CONVERSION_UNCOMPRESSED)


def point_to_bytes_compact(P: EcPt) -> bytes:
    """Encodes a point in the 33-byte compressed form.

    Args:
      P: a point of :func:`curve`.

    Returns:
      ``0x02 || x`` or ``0x03 || x`` (the prefix carries the parity of y), or 33 zero bytes for the
      identity.
    """
    if P.is_infinite():
        return _IDENTITY_COMPACT
    return P.export(POINT_CONVERSION_COMPRESSED)


def _decode(b: bytes, length: int, prefixes: tuple[int, ...], identity_bytes: bytes,
            allow_identity: bool, encode: Callable[[EcPt], bytes]) -> EcPt:
    if not isinstance(b, (bytes, bytearray, memoryview)):
        raise EncodingError(f"point encoding must be bytes, not {type(b).__name__}")
    b = bytes(b)
    if len(b) != length:
        raise EncodingError(f"point encoding must be {length} bytes, got {len(b)}")
    if b == identity_bytes:
        if not allow_identity:
            raise EncodingError("the identity point is not allowed here")
        return _GROUP.infinite()
    if b[0] not in prefixes:
        raise EncodingError(f"bad point prefix byte 0x{b[0]:02x}")
    try:
        P = EcPt.from_binary(b, _GROUP)
    except Exception as exc:  # petlib raises a bare Exception from OpenSSL errors
        raise EncodingError("point is not on the curve or its encoding is invalid") from exc
    if P.is_infinite() or not _GROUP.check_point(P):
        raise EncodingError("point is not on the curve")
    if encode(P) != b:
        raise EncodingError("non-canonical point encoding")
    return P


def point_from_bytes(b: bytes, *, allow_identity: bool = False) -> EcPt:
    """Decodes the canonical 65-byte uncompressed form.

    Args:
      b: the encoding.
      allow_identity: accept 65 zero bytes as the identity point.

    Returns:
      The point.

    Raises:
      EncodingError: wrong length, prefix other than ``0x04``, coordinates not reduced mod p,
        a point off the curve, or the identity when ``allow_identity`` is false.
    """
    return _decode(b, POINT_BYTES, (0x04,), _IDENTITY_WIDE, allow_identity, point_to_bytes)


def point_from_bytes_compact(b: bytes, *, allow_identity: bool = False) -> EcPt:
    """Decodes the 33-byte compressed form.

    Args:
      b: the encoding.
      allow_identity: accept 33 zero bytes as the identity point.

    Returns:
      The point.

    Raises:
      EncodingError: wrong length, prefix other than ``0x02``/``0x03``, x not reduced mod p or
        not the x-coordinate of a curve point, or the identity when ``allow_identity`` is false.
    """
    return _decode(b, COMPACT_POINT_BYTES, (0x02, 0x03), _IDENTITY_COMPACT, allow_identity,
                   point_to_bytes_compact)


def scalar_to_bytes(s: int) -> bytes:
    """Encodes a scalar (any integer, numpy integers included) as 32 bytes big-endian, after
    reducing it mod q."""
    return (operator.index(s) % ORDER).to_bytes(SCALAR_BYTES, "big")


def scalar_from_bytes(b: bytes) -> int:
    """Decodes a canonical scalar.

    Args:
      b: 32 bytes, big-endian.

    Returns:
      The scalar as an int in ``[0, q)``.

    Raises:
      EncodingError: the length is not 32 or the value is not below q.
    """
    if not isinstance(b, (bytes, bytearray, memoryview)):
        raise EncodingError(f"scalar encoding must be bytes, not {type(b).__name__}")
    if len(b) != SCALAR_BYTES:
        raise EncodingError(f"scalar encoding must be {SCALAR_BYTES} bytes, got {len(b)}")
    s = int.from_bytes(b, "big")
    if s >= ORDER:
        raise EncodingError("non-canonical scalar (not below the group order)")
    return s


_SMALL = 1 << 31  # petlib's Bn(int) goes through BN_set_word with a 32-bit argument


def _to_bn(s: int) -> Bn:
    s = operator.index(s) % ORDER  # operator.index: numpy integers too, never floats
    if s < _SMALL:
        return Bn(s)  # about 0.5 us faster than the byte route; quantized data is mostly small
    return Bn.from_binary(s.to_bytes(SCALAR_BYTES, "big"))


def msm(scalars: Sequence[int], points: Sequence[EcPt]) -> EcPt:
    """Multi-exponentiation: returns ``sum_i scalars[i] * points[i]``.

    Args:
      scalars: integers (Python ints of any sign and size, or numpy integers; reduced mod q
        here). Floats are refused with ``TypeError``.
      points: points of :func:`curve`, as many as ``scalars``.

    Returns:
      The sum; the identity for empty input.

    Raises:
      ValueError: the two sequences differ in length.
    """
    if len(scalars) != len(points):
        raise ValueError(f"msm: {len(scalars)} scalars but {len(points)} points")
    if not scalars:
        return _GROUP.infinite()
    return _GROUP.wsum([_to_bn(s) for s in scalars], list(points))


def random_scalar(rng: Callable[[int], int] | None = None) -> int:
    """Returns a uniformly random scalar in ``[0, q)``.

    Args:
      rng: optional deterministic source for tests: a callable ``rng(k)`` returning a k-bit
        int (``random.Random().getrandbits`` fits). Default: :mod:`secrets`.
    """
    draw = secrets.randbits if rng is None else rng
    # 512 bits reduced mod q: statistical distance from uniform < 2^-256.
    return draw(512) % ORDER


def inverse(s: int) -> int:
    """Returns ``s^-1 mod q``.

    Raises:
      ZeroDivisionError: ``s`` is 0 mod q.
    """
    s %= ORDER
    if s == 0:
        raise ZeroDivisionError("0 has no inverse mod q")
    return pow(s, -1, ORDER)


def batch_inverse(values: Sequence[int]) -> list[int]:
    """Inverts many scalars with one modular inversion (Montgomery's trick).

    Args:
      values: non-zero scalars mod q.

    Returns:
      ``[v^-1 mod q for v in values]``.

    Raises:
      ZeroDivisionError: some value is 0 mod q.
    """
    q = ORDER
    prefix = []
    acc = 1
    for v in values:
        v %= q
        if v == 0:
            raise ZeroDivisionError("0 has no inverse mod q")
        prefix.append(acc)
        acc = acc * v % q
    inv = pow(acc, -1, q)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % q
        inv = inv * values[i] % q
    return out
