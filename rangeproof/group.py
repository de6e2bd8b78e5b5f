"""The prime-order group: NIST P-256 through petlib, canonical encodings, multi-exponentiation.

Scalars are plain Python ``int`` values modulo :data:`ORDER` everywhere in this package; they
become OpenSSL ``BIGNUM`` objects only inside :func:`msm`, the one place where group work happens
in bulk (OpenSSL's ``EC_POINTs_mul``, about 10 us per element against about 30 us for a single
scalar multiplication, on the development machine when quiet).

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
import os
from itertools import repeat
import secrets
from typing import Callable, Sequence

import numpy as np

from petlib.bindings import _C, _FFI
from petlib.bn import get_ctx
from petlib.ec import EcGroup, EcPt, POINT_CONVERSION_COMPRESSED, POINT_CONVERSION_UNCOMPRESSED

from .errors import EncodingError

try:  # the C loop of msm_small (optional; rangeproof/_p256msm.c)
    from ._p256msm import openssl_version_num as _native_openssl, small_sum as _native_small
    if _native_openssl() != _C.OpenSSL_version_num():  # it handles petlib's OpenSSL points
        _native_small = None
except ImportError:
    _native_small = None

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
    "msm_shared",
    "msm_small",
    "SMALL_SCALAR_LIMIT",
    "buckets_pay",
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
    """Returns a fresh identity point (the point at infinity).

    Fresh, not petlib's ``EcGroup.infinite()``: that one is cached and shared, and a point
    changed in place (``pt_add_inplace``, or an OpenSSL call writing into it) would change what
    ``is_infinite()`` compares against for the whole process.
    """
    return EcPt(_GROUP)  # a new EC_POINT is the identity


def native_switched_off() -> bool:
    """Whether ``SABRE_NATIVE_MSM`` switches the C code off (``0``, ``false``, ``off``, ``no``,
    any case): then every multi-exponentiation and projection takes its Python and OpenSSL path."""
    return os.environ.get("SABRE_NATIVE_MSM", "").strip().lower() in ("0", "false", "off", "no")


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
        return identity()
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


def msm(scalars: Sequence[int], points: Sequence[EcPt]) -> EcPt:
    """Multi-exponentiation: returns ``sum_i scalars[i] * points[i]``.

    One call of OpenSSL's ``EC_POINTs_mul`` (through petlib's own cffi bindings). The scalars go
    to OpenSSL as temporary ``BIGNUM`` objects made straight from their 32-byte encodings and
    cleared and freed afterwards, which costs about a quarter of what wrapping each in a petlib
    ``Bn`` does (about 0.4 us against 2.6 us per term, next to about 10 us of group work).

    Args:
      scalars: integers (Python ints of any sign and size, or numpy integers; reduced mod q
        here). Floats are refused with ``TypeError``.
      points: points of :func:`curve`, as many as ``scalars``.

    Returns:
      The sum; the identity for empty input.

    Raises:
      ValueError: the two sequences differ in length.
      TypeError: a scalar is not an integer or a point is not a petlib point.
    """
    points = list(points)  # references held until the call returns: the raw addresses stay valid
    n = len(scalars)
    if n != len(points):
        raise ValueError(f"msm: {n} scalars but {len(points)} points")
    if not n:
        return identity()
    # Everything that can raise (non-integers, non-points) happens before any allocation.
    encoded = _encode_scalars(scalars)
    raw_points = _raw_points(points, "msm")
    total = _points_mul(encoded[:_MSM_CHUNK], raw_points[:_MSM_CHUNK])
    for start in range(_MSM_CHUNK, n, _MSM_CHUNK):
        total = total + _points_mul(encoded[start:start + _MSM_CHUNK],
                                    raw_points[start:start + _MSM_CHUNK])
    return total


def _encode_scalars(scalars: Sequence[int]) -> list[bytes]:
    """32-byte big-endian encodings of the scalars reduced mod q (``TypeError`` for non-integers)."""
    q, index = ORDER, operator.index
    return [(index(s) % q).to_bytes(SCALAR_BYTES, "big") for s in scalars]


def _raw_points(points: Sequence[EcPt], who: str) -> list:
    """The OpenSSL points behind petlib points (``TypeError`` for anything else)."""
    if not all(type(P) is EcPt for P in points):
        raise TypeError(f"{who}: points must be petlib EcPt objects")
    return [P.pt for P in points]


class _Bignums:
    """OpenSSL ``BIGNUM`` copies of 32-byte scalar encodings, cleared and freed on exit."""

    def __init__(self, encoded: list[bytes], who: str):
        self._encoded = encoded
        self._who = who
        self._bns: list = []

    def __enter__(self) -> list:
        null = _FFI.NULL
        self._bns = list(map(_C.BN_bin2bn, self._encoded, repeat(SCALAR_BYTES), repeat(null)))
        if null in self._bns:
            self.__exit__(None, None, None)
            raise MemoryError(f"{self._who}: BN_bin2bn failed")
        return self._bns

    def __exit__(self, *exc) -> None:
        null = _FFI.NULL
        for bn in self._bns:
            if bn != null:
                _C.BN_clear_free(bn)
        self._bns = []


_MSM_CHUNK = 16384
"""Terms per ``EC_POINTs_mul`` call. OpenSSL's P-256 code keeps a 16-point table per term
(1.5 KB); past a few tens of thousands of terms the tables outgrow the cache and every term gets
slower (13.4 us per term at 1.2M terms against 10 us at 16k here), so larger inputs are split
and the partial sums added (one extra point addition per chunk)."""


SMALL_SCALAR_LIMIT = 1 << 14
"""Largest ``|scalar|`` for which :func:`msm_small` uses buckets (one bucket per magnitude)."""


def buckets_pay(top: int, n: int) -> bool:
    """Whether ``n`` values of at most ``top`` in size are summed by buckets (one per magnitude)
    rather than by a full multi-exponentiation: ``top <= SMALL_SCALAR_LIMIT`` and the buckets'
    running sums (``2 top`` additions) not outnumbering the terms."""
    return top <= SMALL_SCALAR_LIMIT and 2 * top <= n + 64


def msm_small(values: Sequence[int], points: Sequence[EcPt]) -> EcPt:
    """``sum_i values[i] * points[i]`` for small signed integers, by point additions.

    Bucket method: each point is added into the bucket of ``|values[i]|`` (one set of buckets
    per sign), and ``sum_b b (P_b - N_b)`` is formed with running sums, ``2 B`` more additions
    for ``B = max |values[i]|``. A point addition costs about 0.6 us through petlib's bindings
    against about 10 us per term of :func:`msm` (OpenSSL's P-256 code always processes 256-bit
    scalars), so for quantized updates (``|x_j|`` in the tens or hundreds) this is about 15
    times faster. Falls back to :func:`msm` when ``B`` exceeds :data:`SMALL_SCALAR_LIMIT` or
    the buckets would outnumber the terms. Unlike :func:`msm` it is not constant-time in the
    values (the prover's own vector, on its own machine).

    Args:
      values: signed Python ints (or numpy integers).
      points: points of :func:`curve`, as many as ``values``.

    Returns:
      The sum.

    Raises:
      ValueError: the two sequences differ in length.
      TypeError: a value is not an integer or a point is not a petlib point.
    """
    points = list(points)  # references held until the call returns: the raw addresses stay valid
    n = len(values)
    if n != len(points):
        raise ValueError(f"msm_small: {n} values but {len(points)} points")
    if not n:
        return identity()
    vals = [operator.index(v) for v in values]
    top = max(max(vals), -min(vals))
    if not buckets_pay(top, n):
        return msm(vals, points)
    raw = _raw_points(points, "msm_small")
    if _native_small is not None and not native_switched_off():
        # the same bucket loop in C (rangeproof/_p256msm.c, small_sum), on the same OpenSSL
        # points: no Python call per point
        total = EcPt(_GROUP)
        arr = _FFI.new("EC_POINT *[]", raw)  # kept alive (with ``points``) during the call
        addrs = np.frombuffer(_FFI.buffer(arr), dtype=np.uint64)
        _native_small(int(_FFI.cast("uintptr_t", _GROUP.ecg)), addrs,
                      np.asarray(vals, dtype=np.int64), int(_FFI.cast("uintptr_t", total.pt)))
        return total
    ecg, ctx, add = _GROUP.ecg, get_ctx().bnctx, _C.EC_POINT_add
    pos = [EcPt(_GROUP) for _ in range(top + 1)]  # EcPt(group) is the identity
    neg = [EcPt(_GROUP) for _ in range(top + 1)]
    praw = [P.pt for P in pos]
    nraw = [P.pt for P in neg]
    failed = 0  # OpenSSL returns 1 on success; any failure makes the result unusable
    for v, pt in zip(vals, raw):
        if v > 0:
            r = praw[v]
            failed |= add(ecg, r, r, pt, ctx) != 1
        elif v < 0:
            r = nraw[-v]
            failed |= add(ecg, r, r, pt, ctx) != 1
    total = EcPt(_GROUP)
    run = EcPt(_GROUP)
    t, u = total.pt, run.pt
    for b in range(top, 0, -1):  # run = sum_{b' >= b} (P_b' - N_b'); total = sum_b run
        failed |= _C.EC_POINT_invert(ecg, nraw[b], ctx) != 1
        failed |= add(ecg, u, u, praw[b], ctx) != 1
        failed |= add(ecg, u, u, nraw[b], ctx) != 1
        failed |= add(ecg, t, t, u, ctx) != 1
    if failed:
        _drain_openssl_errors()
        raise ArithmeticError("msm_small: EC_POINT_add failed")
    return total


def msm_shared(scalars: Sequence[int], groups: Sequence[Sequence[EcPt]],
               bases: Sequence[EcPt] | None = None) -> list[EcPt]:
    """Many small multi-exponentiations with the same scalars: for each ``j``,
    ``bases[j] + sum_i scalars[i] * groups[j][i]`` (``groups[j]`` may be shorter than
    ``scalars``: its first ``len(groups[j])`` scalars are used; without ``bases``, no base).

    The scalars are converted to OpenSSL numbers once for all groups, and the base is added in
    place; for the many 1- to 3-term sums of the linear-form prover's generator folding this
    halves the Python-side cost per sum.

    Raises:
      ValueError: a group is longer than ``scalars`` or ``bases`` has the wrong length.
      TypeError: a scalar is not an integer or a point is not a petlib point.
    """
    if bases is not None and len(bases) != len(groups):
        raise ValueError("msm_shared: one base per group")
    groups = [list(grp) for grp in groups]  # references held until the call returns
    bases = None if bases is None else list(bases)
    encoded = _encode_scalars(scalars)
    m = len(encoded)
    raw_groups = []
    for grp in groups:
        if len(grp) > m:
            raise ValueError("msm_shared: a group is longer than the scalars")
        raw_groups.append(_raw_points(grp, "msm_shared"))
    raw_bases = None if bases is None else _raw_points(bases, "msm_shared")
    null, mul, add = _FFI.NULL, _C.EC_POINTs_mul, _C.EC_POINT_add
    ecg, ctx = _GROUP.ecg, get_ctx().bnctx
    out = []
    with _Bignums(encoded, "msm_shared") as bns:
        for j, raw in enumerate(raw_groups):
            res = EcPt(_GROUP)
            if raw and mul(ecg, res.pt, null, len(raw), raw, bns[:len(raw)], ctx) != 1:
                _drain_openssl_errors()
                raise ArithmeticError("msm_shared: EC_POINTs_mul failed")
            if raw_bases is not None and add(ecg, res.pt, res.pt, raw_bases[j], ctx) != 1:
                _drain_openssl_errors()
                raise ArithmeticError("msm_shared: EC_POINT_add failed")
            out.append(res)
    return out


def _points_mul(encoded: list[bytes], raw_points: list) -> EcPt:
    """One ``EC_POINTs_mul`` call on 32-byte scalar encodings and raw petlib points."""
    res = EcPt(_GROUP)
    with _Bignums(encoded, "msm") as bns:
        if _C.EC_POINTs_mul(_GROUP.ecg, res.pt, _FFI.NULL, len(bns), raw_points, bns,
                            get_ctx().bnctx) != 1:
            _drain_openssl_errors()
            raise ArithmeticError("msm: EC_POINTs_mul failed")
    return res


def _drain_openssl_errors() -> None:
    """Empties this thread's OpenSSL error queue (a stale entry there is read by the next TLS
    call on the thread as its own failure)."""
    while _C.ERR_get_error():
        pass


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
