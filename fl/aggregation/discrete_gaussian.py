"""An exact sampler of the discrete Gaussian ``N_Z(0, sigma^2)``, vectorised.

The draws follow Canonne, Kamath and Steinke (NeurIPS 2020, "The Discrete Gaussian for
Differential Privacy", algorithms 1-3) with every random decision made exactly:

* a discrete Laplace proposal ``Y`` of integer scale ``t = floor(sigma) + 1``: ``U`` uniform on
  ``{0, ..., t - 1}`` (rejection from 53-bit words), kept with probability ``exp(-U / t)``; ``V``
  the number of successes of ``Bernoulli(exp(-1))`` before the first failure; ``X = U + t V``; a
  fair sign, and ``-0`` rejected;
* accepted with probability ``exp(-(|Y| - sigma^2 / t)^2 / (2 sigma^2))``.

Every ``Bernoulli(exp(-gamma))`` (:func:`bernoulli_exp`) compares a uniform ``W`` in ``[0, 1)``,
drawn 53 bits at a time and extended lazily, with ``exp(-gamma)`` for the exact rational
``gamma`` (``sigma`` is a float, so an exact dyadic rational). The fast path decides from the
first 53 bits and a float64 estimate ``p~`` of ``exp(-gamma)`` whenever the cell
``[w, w + 2^-53)`` lies clear of ``[p~ - 2^-40, p~ + 2^-40]``; that is exact as long as the float
estimate is within ``2^-40`` of the true value (its error is below ``2^-51`` plus numpy's
``exp`` error, a few ulp: docs/privacy.md, "The exact sampler", derives the bound and
``tests/test_discrete_gaussian.py`` checks it against the decimal module). Otherwise (probability about ``2^-39`` per decision) the decision is made
with exact rationals: more bits of ``W`` are drawn and compared with bounds on ``exp(-gamma)``
from the decimal module (correctly rounded ``exp``, directed rounding of ``gamma``) until the
bounds separate them. ``exp(-gamma)`` is irrational for rational ``gamma > 0`` (Lindemann), so
this ends with probability 1. The output's law is the discrete Gaussian's exactly, with unbounded
support; there is no float approximation and no truncation to pay for.

One bound remains: the integers are int64. A proposal reaching ``2^52`` (``V >= 2^52 / t``:
probability below ``exp(1 - 2^21)`` per proposal for ``sigma <= 2^31``) raises
:class:`OverflowError` instead of being returned, so nothing is ever returned wrong.
"""
from __future__ import annotations

import decimal
import math
from fractions import Fraction
from typing import Callable

import numpy as np

__all__ = ["sample_discrete_gaussian", "sample_discrete_laplace", "bernoulli_exp", "uniform_below",
           "MAX_SAMPLER_SIGMA", "MIN_SAMPLER_SIGMA", "FLOAT_TOLERANCE", "MAX_DRAW"]

#: the sampler's sigma ceiling (integer units): ``t``, ``U + t V`` and ``sigma^2 / t`` stay exact in
#: int64 and float64 with room to spare, and the float estimate of the acceptance probability keeps
#: its error bound (docs/privacy.md, "The exact sampler")
MAX_SAMPLER_SIGMA = 2.0**31

#: the sampler's sigma floor: below it ``sigma^2`` nears float64's underflow, where the float estimates
#: stop being estimates (the draws are 0 with probability above ``1 - 2^-60`` anyway)
MIN_SAMPLER_SIGMA = 2.0**-30

#: the fast path's allowance for the float64 estimate of ``exp(-gamma)`` (absolute); the estimate's
#: error is below ``2^-51`` plus numpy's ``exp`` error (docs/privacy.md): room for 2^11 and more
FLOAT_TOLERANCE = 2.0**-40

#: draws at or beyond this magnitude raise instead of being returned (int64 and float64 stay exact)
MAX_DRAW = 1 << 52

_CELL = 2.0**-53
_WORD = 1 << 53


def _words(rng, n: int) -> np.ndarray:
    """``n`` uniform 53-bit integers (int64) from the generator's 53-bit uniforms."""
    return (rng.random(n) * float(_WORD)).astype(np.int64)


def uniform_below(rng, bound: int, n: int) -> np.ndarray:
    """``n`` exact uniform integers on ``{0, ..., bound - 1}`` (int64), by rejection from 53-bit words."""
    bound = int(bound)
    if not 1 <= bound <= _WORD:
        raise ValueError(f"uniform_below: bound must lie in [1, 2^53], got {bound}")
    limit = _WORD - _WORD % bound  # the largest multiple of bound that 53-bit words reach
    out = np.empty(n, dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        w = _words(rng, todo.size)
        ok = w < limit
        out[todo[ok]] = w[ok] % bound
        todo = todo[~ok]
    return out


def _exp_bounds(gamma: Fraction, bits: int) -> tuple[Fraction, Fraction]:
    """Rationals ``lo <= exp(-gamma) <= hi``, about ``bits`` significant bits tight.

    Every decimal operation runs in a local context (never the thread's global one, which other
    code may change): the quotient rounded down and up, ``exp`` correctly rounded, then one unit
    outward.
    """
    # gamma's quotient is rounded relative to gamma, which moves exp(-gamma) by gamma times that:
    # log10(gamma) more digits keep the bounds ``bits`` tight for large gamma
    digits = int(bits * 0.30103) + 12 + max(0, len(str(gamma.numerator)) - len(str(gamma.denominator)) + 1)
    # every field named: a Context copies the unnamed ones (traps included) from DefaultContext,
    # which other code may change
    ctx = decimal.Context(prec=digits, rounding=decimal.ROUND_HALF_EVEN, Emin=decimal.MIN_EMIN,
                          Emax=decimal.MAX_EMAX, capitals=1, clamp=0, flags=[], traps=[])
    num, den = decimal.Decimal(gamma.numerator), decimal.Decimal(gamma.denominator)  # exact
    ctx.rounding = decimal.ROUND_FLOOR
    g_lo = ctx.divide(num, den)
    ctx.rounding = decimal.ROUND_CEILING
    g_hi = ctx.divide(num, den)
    # exp is correctly rounded (half even) whatever the context's rounding: within half an ulp, so
    # one ulp outward bounds the truth; exp(-x) falls as x grows; minus is exact (same digits)
    ctx.rounding = decimal.ROUND_HALF_EVEN
    lo = ctx.next_minus(ctx.exp(ctx.minus(g_hi)))
    hi = ctx.next_plus(ctx.exp(ctx.minus(g_lo)))
    return Fraction(lo), Fraction(hi)


def _log2_floor(gamma: Fraction) -> int:
    """An integer ``m`` with ``exp(-gamma) <= 2^-m`` (``m <= gamma log2(e)``; 0 for small ``gamma``)."""
    capped = gamma if gamma < (1 << 60) else Fraction(1 << 60)
    return max(0, math.floor(float(capped) * (1.0 - 2.0**-40) * math.log2(math.e)) - 1)


def _decide_exactly(rng, first_word: int, gamma: Fraction) -> bool:
    """``W < exp(-gamma)`` for the uniform ``W`` whose first 53 bits are ``first_word``.

    While ``W``'s known bits are too coarse to lie below ``exp(-gamma) <= 2^-m``, only a cheap
    test runs (``W >= 2^-m`` rejects); the decimal bounds are computed once the bits reach
    ``2^-m`` (a huge ``gamma`` never builds a huge fraction unless ``W`` starts with ``m`` zeros).
    """
    if gamma < 0:
        raise ValueError(f"bernoulli_exp: gamma must be >= 0, got {gamma}")
    if gamma == 0:
        return True  # W < 1 always
    m = _log2_floor(gamma)
    numerator, bits = int(first_word), 53  # W lies in [numerator, numerator + 1) / 2^bits
    while True:
        if numerator and (bits < m or numerator >> (bits - m)):
            return False  # W >= numerator 2^-bits >= 2^-m >= exp(-gamma)
        if bits >= m - 8:  # fine enough to be below exp(-gamma): decide with exact bounds
            lo, hi = _exp_bounds(gamma, bits - m + 40)
            prefix = Fraction(numerator, 1 << bits)
            if prefix + Fraction(1, 1 << bits) <= lo:
                return True
            if prefix >= hi:
                return False
        # undecided: draw the next 53 bits of W (and tighten the bounds next time round)
        numerator = (numerator << 53) | int(_words(rng, 1)[0])
        bits += 53


def bernoulli_exp(rng, gamma_estimate: np.ndarray, gamma_exact: Callable[[int], Fraction],
                  *, tolerance: float | None = None) -> np.ndarray:
    """Exact ``Bernoulli(exp(-gamma_i))`` decisions, one per entry.

    Args:
      rng: the generator (its ``random(n)`` gives 53-bit uniforms).
      gamma_estimate: float64 estimates of ``gamma_i >= 0`` whose ``exp(-.)`` is within
        ``tolerance`` of ``exp(-gamma_i)`` (absolute).
      gamma_exact: ``i -> gamma_i`` as an exact rational; called only for the rare entries the
        fast path cannot decide.
      tolerance: the allowance for the estimate (default :data:`FLOAT_TOLERANCE`; tests raise it
        to send every entry down the exact path).

    Returns:
      bool array, True with probability exactly ``exp(-gamma_i)``.
    """
    g = np.asarray(gamma_estimate, dtype=np.float64)
    tolerance = FLOAT_TOLERANCE if tolerance is None else float(tolerance)
    w = _words(rng, g.size)
    u = w.astype(np.float64) * _CELL  # exact: the cell [u, u + 2^-53) holds W
    with np.errstate(invalid="ignore", over="ignore"):
        p = np.exp(-g)
    out = (u + _CELL) <= (p - tolerance)
    # a NaN estimate compares False both ways: it goes to the exact path, never a silent reject
    unsure = ~out & ((u < p + tolerance) | ~np.isfinite(p))
    for i in np.flatnonzero(unsure):
        out[i] = _decide_exactly(rng, int(w[i]), gamma_exact(int(i)))
    return out


def sample_discrete_laplace(rng, t: int, size: int) -> np.ndarray:
    """``size`` exact draws of the discrete Laplace ``P(y) ~ exp(-|y| / t)`` (int64), ``t`` a positive integer."""
    t = int(t)
    if not 1 <= t <= _WORD:
        raise ValueError(f"discrete Laplace scale must lie in [1, 2^53], got {t}")
    out = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    one = Fraction(1)
    while todo.size:
        u = uniform_below(rng, t, todo.size)
        keep = bernoulli_exp(rng, u / t, lambda i: Fraction(int(u[i]), t))
        u, idx = u[keep], todo[keep]
        v = np.zeros(u.size, dtype=np.int64)
        alive = np.arange(u.size)
        while alive.size:
            more = bernoulli_exp(rng, np.ones(alive.size), lambda i: one)
            alive = alive[more]
            v[alive] += 1
            if alive.size and int(v[alive[0]]) >= MAX_DRAW // t:  # all alive entries share one count
                raise OverflowError(f"discrete Laplace draw beyond {MAX_DRAW} (probability below exp(1 - 2^21))")
        x = u + t * v
        negative = (_words(rng, u.size) & 1).astype(bool)
        ok = ~(negative & (x == 0))  # -0 would count 0 twice
        out[idx[ok]] = np.where(negative, -x, x)[ok]
        todo = np.concatenate([todo[~keep], idx[~ok]])
        todo.sort()
    return out


def sample_discrete_gaussian(rng, sigma: float, size: int) -> np.ndarray:
    """``size`` i.i.d. exact draws of the discrete Gaussian ``N_Z(0, sigma^2)``, as int64.

    The rejection sampler of Canonne, Kamath and Steinke (2020, algorithm 3) with exact Bernoulli
    decisions (module docstring): a discrete Laplace proposal of scale ``t = floor(sigma) + 1``
    accepted with probability ``exp(-(|y| - sigma^2/t)^2 / (2 sigma^2))``.

    Args:
      rng: the generator (:class:`~fl.aggregation.noise_source.CsprngGenerator`, or a seeded
        ``numpy.random.Generator``); only its ``random`` is used.
      sigma: the scale parameter, ``MIN_SAMPLER_SIGMA <= sigma <= MAX_SAMPLER_SIGMA``.
      size: number of draws.

    Returns:
      ``int64 [size]``.

    Raises:
      ValueError: ``sigma`` out of range.
      OverflowError: a proposal reached ``2^52`` (probability below ``exp(1 - 2^21)`` per proposal).
    """
    sigma = float(sigma)
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"discrete Gaussian sigma must be positive, got {sigma!r}")
    if not MIN_SAMPLER_SIGMA <= sigma <= MAX_SAMPLER_SIGMA:
        raise ValueError(f"discrete Gaussian sigma {sigma:.4g} is outside the sampler's range "
                         f"[{MIN_SAMPLER_SIGMA:.4g}, {MAX_SAMPLER_SIGMA:.4g}]")
    t = math.floor(sigma) + 1
    s2 = Fraction(sigma) ** 2
    centre = s2 / t
    centre_f, two_s2_f = sigma * sigma / t, 2.0 * sigma * sigma
    out = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        y = sample_discrete_laplace(rng, t, todo.size)
        a = np.abs(y)
        if a.size and int(a.max()) >= MAX_DRAW:
            raise OverflowError("discrete Gaussian draw beyond 2^52")
        estimate = (a.astype(np.float64) - centre_f) ** 2 / two_s2_f
        accept = bernoulli_exp(rng, estimate, lambda i: (int(a[i]) - centre) ** 2 / (2 * s2))
        out[todo[accept]] = y[accept]
        todo = todo[~accept]
    return out
