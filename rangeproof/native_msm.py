"""The verifier's multi-exponentiation for public scalars: a bucket method in C, or OpenSSL.

A verification of a norm proof is one multi-exponentiation over the ``d`` vector generators with
full-width scalars (products of challenges and the verifier's own weights, all public).
OpenSSL's ``EC_POINTs_mul`` (:func:`.group.msm`) spends about 60-70 point operations per term on
P-256 (a 16-point table and 52 window additions per point); Pippenger's bucket method with
``c``-bit signed windows spends about ``256 / c`` additions per term plus ``2^c`` per window, 16
to 20 at the model's size. ``rangeproof/_p256msm.c`` implements it (field, formulas and windows
in ``docs/proofs.md``, "Native multi-exponentiation"); it is variable-time, so it serves
**public scalars only**: the prover's blindings and folded vector keep going through
:func:`.group.msm`. Sums with small integer values (the commitment, the prover's first rounds,
the binding check) run on the generators' affine tables in C (:func:`label_small_sum`), or
through :func:`.group.msm_small` on other points: variable-time in the values, as they always
were.

The module is built by ``pip install`` where a C compiler is present. Without it, or with
``SABRE_NATIVE_MSM=0`` (or ``false``, ``off``, ``no``) in the environment, :func:`msm_public`
on plain scalars and points is :func:`.group.msm` (the same results, slower), and the verifier's accumulator keeps its sums as
Python integers. Points are handed to C as affine coordinates; the generators' tables are kept
per label by :func:`generator_table`.
"""
from __future__ import annotations

import operator
import threading
from typing import Sequence

from petlib.ec import EcPt

import numpy as np

from .generators import are_generators, generators, on_memory_clear
from .group import ORDER, buckets_pay, curve, identity, msm, msm_small, native_switched_off

__all__ = ["available", "msm_public", "affine_bytes", "generator_table", "tensor_add",
           "label_small_sum"]

try:
    from . import _p256msm as _native
except ImportError:  # no compiler at install time
    _native = None

_AFFINE = 64
_UNCOMPRESSED = 4  # OpenSSL's POINT_CONVERSION_UNCOMPRESSED: 0x04 || x || y


def available() -> bool:
    """Whether the C bucket method is in use (built, and not switched off by
    ``SABRE_NATIVE_MSM=0``)."""
    return _native is not None and not native_switched_off()


def affine_bytes(points: Sequence[EcPt]) -> bytes:
    """``x || y`` (32 bytes each, big-endian) of every point.

    Raises:
      TypeError: a point is not a petlib point.
      ValueError: a point is the identity (it has no affine coordinates).
    """
    out = []
    group = curve()
    for P in points:
        if type(P) is not EcPt or (P.group is not group and P.group != group):
            raise TypeError("affine_bytes: points must be petlib EcPt objects on P-256")
        if P.is_infinite():
            raise ValueError("affine_bytes: the identity has no affine coordinates")
        out.append(P.export(_UNCOMPRESSED)[1:])
    return b"".join(out)


_tables: dict[bytes, bytes] = {}
_tables_lock = threading.Lock()


def _forget_tables() -> None:
    with _tables_lock:
        _tables.clear()


on_memory_clear(_forget_tables)  # 77 MB at 1.2M points: dropped with the generators


def generator_table(label: bytes, n: int) -> bytes:
    """The affine table of the first ``n`` generators of the list ``label``
    (:func:`.generators.generators`), derived here from the label itself, so that no caller can
    hand in points that are not the label's. Kept per label and extended when a longer prefix is
    asked for; about 7 us per point, once.
    """
    if n <= 0:
        return b""
    have = _whole_table(label, n)
    return have if len(have) == n * _AFFINE else have[:n * _AFFINE]


def _whole_table(label: bytes, n: int) -> bytes:
    """The label's whole table, extended to at least ``n`` points (not copied: a slice of a
    table of a million points is 77 MB)."""
    with _tables_lock:
        have = _tables.get(label, b"")
        if len(have) < n * _AFFINE:
            have = have + affine_bytes(generators(label, n)[len(have) // _AFFINE:])
            _tables[label] = have
        return have


def label_small_sum(label: bytes, offset: int, values: Sequence[int] | np.ndarray) -> EcPt:
    """``sum_i values[i] G_{offset + i}`` for small signed integers, ``G = generators(label)``
    (derived here when not yet held): :func:`.group.msm_small` on those generators.

    With the native module in use, and values small enough for buckets
    (:func:`.group.buckets_pay`), the sum runs in C on the label's affine table (:func:`generator_table`, built on first
    use): a mixed Jacobian-affine addition per nonzero value into one bucket per magnitude, then
    running sums (``table_sum``: 0.64 us per value against 1.2 us through OpenSSL's
    ``EC_POINT_add``, measured in the prover at 1.2M). Variable time in the values, as
    ``msm_small``: the prover's own vector, or the public aggregate.

    Raises:
      ValueError: a negative offset.
      TypeError: a value is not an integer.
    """
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError("label_small_sum: the values must be a one-dimensional array")
    n = len(values)
    if offset < 0:
        raise ValueError("label_small_sum: negative offset")
    if not n:
        return identity()
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        top = max(int(values.max()), -int(values.min()))
    else:
        values = [operator.index(v) for v in values]
        top = max(max(values), -min(values))
    if not buckets_pay(top, n) or not available():
        G = generators(label, offset + n)[offset:]
        return msm_small(values.tolist() if isinstance(values, np.ndarray) else values, G)
    res = _native.table_sum(_whole_table(label, offset + n), offset, np.asarray(values, dtype=np.int64))
    if res is None:
        return identity()
    return EcPt.from_binary(b"\x04" + res, curve())


def tensor_add(total: bytearray, a: bytes, b: bytes, offset: int, d: int) -> None:
    """``total[offset + i] += a[i // w] * b[i % w] / 2^256 mod q`` for ``i < d`` (``w`` entries
    in ``b``; every entry 32 bytes big-endian below q), in place, in C.

    Raises:
      ValueError: lengths that do not fit (``total`` unchanged), or an entry not below q (the
        entries before it already updated: the caller's buffer is then unusable).
      RuntimeError: the native module is not built.
    """
    if _native is None:
        raise RuntimeError("tensor_add: the native module is not built")
    _native.tensor_add(total, a, b, offset, d)


def msm_public(scalars: Sequence[int], points: Sequence[EcPt], *,
               table: bytes | None = None, scalar_prefix: bytes = b"", window: int = 0) -> EcPt:
    """``sum_i scalars[i] * points[i]`` for **public** scalars (variable time).

    Args:
      scalars: integers of any sign and size (reduced mod q here).
      points: petlib points, as many as ``scalars``; or, with ``table``, the points that the
        table's first entries stand for followed by further points.
      table: affine bytes (:func:`affine_bytes` / :func:`generator_table`) of the first
        ``len(table) // 64`` points, so that they are not converted again; the caller vouches
        that they are those points (the one caller, ``Accumulator.check``, builds it from
        generator labels).
      scalar_prefix: the first points' scalars already encoded (32 bytes big-endian each);
        ``scalars`` then holds the others' (native code only: without it, ``ValueError``).
      window: the bucket window in bits (tests); 0 chooses it from the size.

    Returns:
      The sum, a petlib point (the identity for empty input).

    Raises:
      ValueError: lengths disagree.
      TypeError: a scalar is not an integer or a point is not a petlib point.
    """
    if len(scalar_prefix) % 32:
        raise ValueError("msm_public: the scalar prefix is not whole 32-byte entries")
    n_pre = len(scalar_prefix) // 32
    n = n_pre + len(scalars)
    if n != len(points):
        raise ValueError(f"msm_public: {n} scalars but {len(points)} points")
    if not available():
        if n_pre:
            raise ValueError("msm_public: a scalar prefix needs the native code")
        return msm(scalars, points)
    q, index = ORDER, operator.index
    head = b"" if table is None else table
    k = len(head) // _AFFINE
    if len(head) % _AFFINE or k > n:
        raise ValueError("msm_public: the table is longer than the points")
    if k < n_pre:  # the table covers part of the prefix: the prefix's tail is dropped by keep
        raise ValueError("msm_public: the table must cover the scalar prefix")
    points = list(points)  # held until the call returns
    rest = points[k:]
    group = curve()
    if not all(type(P) is EcPt and (P.group is group or P.group == group) for P in rest):
        raise TypeError("msm_public: points must be petlib EcPt objects on P-256")
    enc = [(index(s) % q).to_bytes(32, "big") for s in scalars]  # every scalar checked first
    # the identity adds nothing and has no affine form: it leaves with its scalar
    keep = [i for i, P in enumerate(rest) if not P.is_infinite()]
    body = enc[:k - n_pre]
    encoded = b"".join([scalar_prefix] + body + [enc[k - n_pre + i] for i in keep])
    affine = head + affine_bytes([rest[i] for i in keep])
    res = _native.msm(affine, encoded, window)
    if res is None:
        return identity()
    return EcPt.from_binary(b"\x04" + res, curve())
