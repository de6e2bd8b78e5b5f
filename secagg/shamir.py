"""t-of-n Shamir secret sharing over Z_q, q the prime order of the P-256 group.

Internal primitive: use it through the protocol (:mod:`secagg.client`). The maths (sharing,
Lagrange interpolation at 0, and the Feldman commitments of :mod:`secagg.vss`, which need the
share field to be the group's scalar field) is in ``docs/secagg.md#verifiable-sharing``.

A secret ``s in [0, q)`` is shared with a random polynomial ``f`` of degree ``t - 1`` over Z_q,
``f(0) = s``; the holder with protocol id ``x`` (``1 <= x < q``) receives ``f(x)``. Any ``t``
shares give ``s`` back; fewer reveal nothing about it.
"""
from __future__ import annotations

import functools
from typing import Mapping, Sequence

from .errors import ConfigError, ProtocolViolation
from .params import P256_ORDER
from .randomness import RandomSource, randbelow

__all__ = ["SHARE_PRIME", "SHARE_BYTES", "share_secret", "deal", "random_scalar", "reconstruct_secret", "lagrange_at_zero"]

#: q, the order of the P-256 group: shares live in its scalar field so that they can be
#: committed to as points (Feldman, :mod:`secagg.vss`)
SHARE_PRIME = P256_ORDER
#: bytes of one share value on the wire (big-endian, < SHARE_PRIME)
SHARE_BYTES = 32


def random_scalar(rng: RandomSource) -> int:
    """A uniform scalar in ``[1, q)`` (by rejection: no modulo bias)."""
    return 1 + randbelow(rng, SHARE_PRIME - 1)


def deal(secret: int, holders: Sequence[int], threshold: int, rng: RandomSource) -> tuple[dict[int, int], list[int]]:
    """Shares of ``secret`` and the polynomial they lie on.

    Args:
      secret: the value to share, ``1 <= secret < q`` (a zero constant would commit to the
        identity point).
      holders: distinct non-zero evaluation points (the holders' protocol ids).
      threshold: t, ``1 <= t <= len(holders)``.
      rng: source of the coefficients ``a_1 .. a_{t-1}``, each uniform in ``[1, q)``.

    Returns:
      ``({holder: f(holder)}, [a_0 = secret, a_1, ..., a_{t-1}])``.

    Raises:
      ConfigError: bad threshold, holders or secret.
    """
    if not 0 < secret < SHARE_PRIME:
        raise ConfigError("secret: expected an int in [1, q)")
    if len(set(holders)) != len(holders) or any(not 0 < x < SHARE_PRIME for x in holders):
        raise ConfigError("holders: expected distinct ids in [1, q)")
    if not 1 <= threshold <= len(holders):
        raise ConfigError(f"threshold: expected 1..{len(holders)}, got {threshold}")
    p = SHARE_PRIME
    coefficients = [secret] + [random_scalar(rng) for _ in range(threshold - 1)]
    shares = {}
    for x in holders:
        y = 0
        for a in reversed(coefficients):  # Horner, highest coefficient first
            y = (y * x + a) % p
        shares[x] = y
    return shares, coefficients


def share_secret(secret: int, holders: Sequence[int], threshold: int, rng: RandomSource) -> dict[int, int]:
    """Shares of ``secret`` for each holder id.

    Args:
      secret: the value to share, ``0 <= secret < q``.
      holders: distinct non-zero evaluation points (the holders' protocol ids).
      threshold: t, ``1 <= t <= len(holders)``.
      rng: source of the polynomial's coefficients.

    Returns:
      ``{holder: f(holder)}``.

    Raises:
      ConfigError: bad threshold, holders or secret.
    """
    if not 0 <= secret < SHARE_PRIME:
        raise ConfigError("secret: expected an int in [0, q)")
    if len(set(holders)) != len(holders) or any(not 0 < x < SHARE_PRIME for x in holders):
        raise ConfigError("holders: expected distinct ids in [1, q)")
    if not 1 <= threshold <= len(holders):
        raise ConfigError(f"threshold: expected 1..{len(holders)}, got {threshold}")
    p = SHARE_PRIME
    # coefficients a_{t-1}, ..., a_1 (highest first, for Horner), then the secret a_0
    coefficients = [randbelow(rng, p) for _ in range(threshold - 1)] + [secret]
    shares = {}
    for x in holders:
        y = 0
        for a in coefficients:
            y = (y * x + a) % p
        shares[x] = y
    return shares


@functools.lru_cache(maxsize=64)
def lagrange_at_zero(xs: tuple[int, ...]) -> tuple[int, ...]:
    """Coefficients ``lambda_i = prod_{j != i} x_j / (x_j - x_i) mod p`` for interpolation at 0."""
    p = SHARE_PRIME
    out = []
    for i, xi in enumerate(xs):
        num = 1
        den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % p
                den = den * (xj - xi) % p
        out.append(num * pow(den, -1, p) % p)
    return tuple(out)


def reconstruct_secret(shares: Mapping[int, int], threshold: int) -> int:
    """The secret from at least ``threshold`` shares (the ``threshold`` lowest ids are used).

    Args:
      shares: ``{holder id: share value}``.
      threshold: t.

    Returns:
      The secret.

    Raises:
      ProtocolViolation: fewer than ``t`` shares, or a share out of range.
    """
    if len(shares) < threshold:
        raise ProtocolViolation(f"reconstruction needs {threshold} shares, got {len(shares)}")
    xs = tuple(sorted(shares)[:threshold])
    p = SHARE_PRIME
    if any(not 0 < x < p for x in xs) or any(not 0 <= shares[x] < p for x in xs):
        raise ProtocolViolation("share out of range")
    return sum(lam * shares[x] for lam, x in zip(lagrange_at_zero(xs), xs)) % p
