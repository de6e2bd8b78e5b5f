"""The exact discrete Gaussian sampler: exact decisions, unbounded support, the right law."""
from __future__ import annotations

import decimal
import math
from fractions import Fraction

import numpy as np
import pytest

from fl.aggregation import discrete_gaussian as dg
from fl.aggregation.discrete_gaussian import (
    FLOAT_TOLERANCE,
    bernoulli_exp,
    sample_discrete_gaussian,
    sample_discrete_laplace,
    uniform_below,
)
from fl.aggregation.noise_source import CsprngGenerator


class Scripted:
    """A generator whose ``random(n)`` returns a scripted value per call (then the fallback's)."""

    def __init__(self, values, fallback=None):
        self.values, self.calls = list(values), 0
        self.fallback = fallback

    def random(self, n):
        self.calls += 1
        if self.values:
            return np.full(n, self.values.pop(0), dtype=np.float64)
        if self.fallback is None:
            return np.zeros(n)
        return self.fallback.random(n)


def exp_exact(gamma: Fraction, digits: int = 60) -> Fraction:
    ctx = decimal.Context(prec=digits)
    return Fraction(ctx.exp(-ctx.divide(decimal.Decimal(gamma.numerator), decimal.Decimal(gamma.denominator))))


def discrete_gaussian_pmf(sigma: float, support: np.ndarray) -> np.ndarray:
    k = np.arange(-int(60 * sigma) - 60, int(60 * sigma) + 61)
    norm = float(np.sum(np.exp(-k.astype(np.float64) ** 2 / (2 * sigma * sigma))))
    return np.exp(-support.astype(np.float64) ** 2 / (2 * sigma * sigma)) / norm


# ---------------------------------------------------------------- the fast path is the exact comparison

@pytest.mark.parametrize("sigma", [0.4, 3.0, 1234.5, 2.0**31])
def test_the_fast_path_decides_as_exact_arithmetic_does(sigma, monkeypatch):
    """The same seed with every decision sent down the exact (decimal) path gives the same draws:
    the float fast path only ever takes decisions that exact arithmetic takes too."""
    fast = sample_discrete_gaussian(np.random.default_rng(11), sigma, 400)
    monkeypatch.setattr(dg, "FLOAT_TOLERANCE", 1.0)  # no decision is clear of the tolerance
    exact = sample_discrete_gaussian(np.random.default_rng(11), sigma, 400)
    assert np.array_equal(fast, exact)


def test_the_float_estimates_are_well_inside_the_tolerance():
    """The fast path's premise (docs/privacy.md, "The exact sampler"): the float64 estimate of
    every acceptance probability is within 2^-40 of the truth. Checked against the decimal module
    at the largest and smallest sigma, through the centre (cancellation) and into the tail."""
    worst = 0.0
    for sigma in (0.3, 1.0, 2.5, 37.0, 1e4 + 0.37, 2.0**20 + 0.5, 2.0**31):
        t = math.floor(sigma) + 1
        s2 = Fraction(sigma) ** 2
        centre = s2 / t
        ys = set(range(0, 40)) | {int(centre) + d for d in range(-3, 4)} | {
            int(f * sigma) for f in (0.5, 1, 2, 5, 10, 20, 38)}
        for y in sorted(v for v in ys if v >= 0):
            est = (float(y) - sigma * sigma / t) ** 2 / (2.0 * sigma * sigma)
            exact = exp_exact((y - centre) ** 2 / (2 * s2))
            worst = max(worst, abs(float(Fraction(float(np.exp(-np.float64(est)))) - exact)))
        for u in (0, 1, t // 3, t // 2, t - 1):
            exact = exp_exact(Fraction(u, t))
            worst = max(worst, abs(float(Fraction(float(np.exp(-np.float64(u / t)))) - exact)))
    assert worst < 2.0**-47 < FLOAT_TOLERANCE


# ---------------------------------------------------------------- the exact path

def test_an_undecided_cell_is_settled_by_the_further_bits():
    """A first word whose cell holds exp(-gamma) is decided by the bits after it: all zeros put
    W just below exp(-gamma) (accept), all ones just above (reject)."""
    gamma = Fraction(1, 3)
    p = exp_exact(gamma)
    w = math.floor(p * 2**53)  # the cell [w, w + 1) 2^-53 holds p
    first = w / 2.0**53
    below = bernoulli_exp(Scripted([first, 0.0, 0.0]), np.array([1 / 3]), lambda i: gamma)
    above = bernoulli_exp(Scripted([first] + [1 - 2.0**-53] * 3), np.array([1 / 3]), lambda i: gamma)
    assert below.tolist() == [True] and above.tolist() == [False]


def test_the_exact_path_has_the_right_frequency():
    rng = np.random.default_rng(3)
    gamma = Fraction(7, 5)
    hits = bernoulli_exp(rng, np.full(20_000, 1.4), lambda i: gamma, tolerance=1.0)
    p = math.exp(-1.4)
    assert abs(hits.mean() - p) < 5 * math.sqrt(p * (1 - p) / hits.size)


def test_uniform_below_is_exact_and_rejects_the_top_partial_range():
    # a word in the top partial range (>= 2^53 - 2^53 mod 3) is rejected, not folded onto 0
    top = (2**53 - 1) / 2.0**53
    out = uniform_below(Scripted([top, 4 / 2.0**53]), 3, 1)
    assert out.tolist() == [1]
    counts = np.bincount(uniform_below(np.random.default_rng(0), 7, 70_000), minlength=7)
    assert counts.min() > 9_500 and counts.max() < 10_500
    with pytest.raises(ValueError):
        uniform_below(np.random.default_rng(0), 0, 1)


def _reference_exp(gamma: Fraction) -> Fraction:
    ctx = decimal.Context(prec=120)
    return Fraction(ctx.exp(ctx.minus(ctx.divide(decimal.Decimal(gamma.numerator), decimal.Decimal(gamma.denominator)))))


@pytest.mark.parametrize("prec", [28, 6])
def test_the_exact_bounds_ignore_the_global_decimal_context(prec):
    """Fifth privacy review, F1: the bounds were computed partly in the thread's global decimal
    context (28 digits, or whatever other code set), so they could exclude the truth."""
    gammas = [Fraction(1.25133), Fraction(7, 3), Fraction(10**30 + 7, 10**29), Fraction(3, 10**9)]
    with decimal.localcontext() as glob:
        glob.prec = prec
        for gamma in gammas:
            lo, hi = dg._exp_bounds(gamma, 160)
            truth = _reference_exp(gamma)
            assert lo <= truth <= hi and hi - lo < truth * Fraction(1, 2**150)


@pytest.mark.parametrize("side", ["below", "above"])
def test_a_uniform_a_hair_from_exp_minus_gamma_is_decided_by_its_side(side):
    """W within 2^-106 of exp(-gamma), on either side: the exact path must say which (with a
    6-digit global context, as another library might set)."""
    gamma = Fraction(1.25133)
    p = _reference_exp(gamma)
    w = math.floor(p * 2**106) + (1 if side == "above" else 0)  # W = w 2^-106 (then zeros)
    words = [(w >> 53) / 2.0**53, (w & ((1 << 53) - 1)) / 2.0**53]
    with decimal.localcontext() as glob:
        glob.prec = 6
        out = bernoulli_exp(Scripted(words), np.array([float(gamma)]), lambda i: gamma)
    assert out.tolist() == [side == "below"]


def test_a_nan_estimate_goes_to_the_exact_path_instead_of_rejecting():
    """Fifth privacy review, F2: a NaN estimate compared False both ways and was a silent reject
    (at sigma near 1e-162 the sampler looped for ever)."""
    hits = bernoulli_exp(np.random.default_rng(1), np.full(4000, np.nan), lambda i: Fraction(1, 2))
    p = math.exp(-0.5)
    assert abs(hits.mean() - p) < 5 * math.sqrt(p * (1 - p) / hits.size)


def test_a_huge_gamma_on_the_exact_path_is_decided_at_once():
    """A uniform in the fast path's window with gamma = 1e12: the cheap 2^-m test rejects it
    without building a fraction of 10^(4e11) (which stalled the sampler at small sigma)."""
    gamma = Fraction(10**12)
    assert bernoulli_exp(Scripted([1 / 2.0**53]), np.array([1e12]), lambda i: gamma).tolist() == [False]
    # W = 0 for three words, then 1: still far above exp(-1e12), rejected without exact bounds
    assert bernoulli_exp(Scripted([0.0, 0.0, 0.0, 1 / 2.0**53]), np.array([1e12]), lambda i: gamma).tolist() == [False]


def test_the_sampler_works_at_its_floor_and_refuses_below():
    y = sample_discrete_gaussian(np.random.default_rng(0), dg.MIN_SAMPLER_SIGMA, 50_000)
    assert not y.any()
    with pytest.raises(ValueError, match="range"):
        sample_discrete_gaussian(np.random.default_rng(0), 1e-200, 3)


# ---------------------------------------------------------------- unbounded support

def test_the_support_is_unbounded():
    """Scripted uniforms keep the Laplace's Bernoulli(exp(-1)) succeeding 30 times and then make
    the acceptance uniform as small as it must be: the draw is 60 at sigma 1.5, 40 sigma out. The
    float sampler could never return it (its reach there was about 38 sigma)."""
    script = [0.0, 0.0] + [0.0] * 30 + [0.9, 0.0]  # U = 0, keep, V = 30, stop, sign +, then zeros
    y = sample_discrete_gaussian(Scripted(script), 1.5, 1)
    assert y.tolist() == [60]


def test_a_draw_beyond_the_int64_room_raises_rather_than_wraps(monkeypatch):
    monkeypatch.setattr(dg, "MAX_DRAW", 64)
    with pytest.raises(OverflowError):
        sample_discrete_laplace(Scripted([]), 2, 1)  # all-zero uniforms: V never stops


# ---------------------------------------------------------------- the law

@pytest.mark.parametrize("sigma", [0.6, 3.0, 40.0])
def test_the_draws_follow_the_discrete_gaussian(sigma):
    n = 200_000
    y = sample_discrete_gaussian(np.random.default_rng(5), sigma, n)
    lo, hi = int(-4 * sigma) - 1, int(4 * sigma) + 1
    support = np.arange(lo, hi + 1)
    expected = n * discrete_gaussian_pmf(sigma, support)
    counts = np.array([(y == k).sum() for k in support])
    keep = expected > 20
    chi2 = float(np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep]))
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof) + 10, (chi2, dof)
    assert abs(y.astype(np.float64).mean()) < 5 * sigma / math.sqrt(n) + 1e-3


def test_the_discrete_laplace_has_its_law():
    t, n = 4, 100_000
    y = sample_discrete_laplace(np.random.default_rng(9), t, n)
    support = np.arange(-20, 21)
    pmf = np.exp(-np.abs(support) / t) * (1 - math.exp(-1 / t)) / (1 + math.exp(-1 / t))
    counts = np.array([(y == k).sum() for k in support])
    chi2 = float(np.sum((counts - n * pmf) ** 2 / (n * pmf)))
    assert chi2 < 40 + 6 * math.sqrt(80) + 10


def test_the_csprng_draws_the_same_law():
    y = sample_discrete_gaussian(CsprngGenerator(), 2.0, 100_000).astype(np.float64)
    assert abs(y.var() / 4.0 - 1) < 0.03


# ---------------------------------------------------------------- determinism and known answers

def test_seeded_draws_are_pinned():
    """Known-answer draws: the same seed gives the same noise on every machine (a change of the
    sampler's order of random calls shows here)."""
    assert sample_discrete_gaussian(np.random.default_rng(2026), 3.0, 12).tolist() == KAT_SIGMA_3
    assert sample_discrete_gaussian(np.random.default_rng(2026), 1e6, 4).tolist() == KAT_SIGMA_1E6


def test_bad_sigmas_are_refused():
    for sigma in (0.0, -1.0, math.nan, math.inf, 2.0**31 * 1.01):
        with pytest.raises(ValueError):
            sample_discrete_gaussian(np.random.default_rng(0), sigma, 3)


KAT_SIGMA_3 = [2, 0, -6, 3, -1, 1, -3, -4, -1, 3, 1, 2]
KAT_SIGMA_1E6 = [684699, 85413, -1153884, -1480022]


def test_the_exact_bounds_ignore_the_default_contexts_traps():
    """Sixth review, F1: a Context copies unnamed fields from decimal.DefaultContext, so another
    library turning on the Inexact trap made every exact-path decision raise."""
    saved = decimal.DefaultContext.traps.copy()
    try:
        decimal.DefaultContext.traps[decimal.Inexact] = True
        decimal.DefaultContext.traps[decimal.Rounded] = True
        lo, hi = dg._exp_bounds(Fraction(7, 3), 100)
    finally:
        for signal, on in saved.items():
            decimal.DefaultContext.traps[signal] = on
    assert lo <= _reference_exp(Fraction(7, 3)) <= hi


def test_the_exact_bounds_hold_for_a_large_gamma():
    """Bounds at gamma = 1e6 + 1/3 (the exact path computes them only after W's first m - 8 bits
    are zero, m = floor(gamma log2 e) - 1: never for an honest generator, but they must hold)."""
    gamma = Fraction(3 * 10**6 + 1, 3)
    lo, hi = dg._exp_bounds(gamma, 100)
    ctx = decimal.Context(prec=160, Emin=decimal.MIN_EMIN, Emax=decimal.MAX_EMAX)
    truth = Fraction(ctx.exp(ctx.minus(ctx.divide(decimal.Decimal(gamma.numerator), decimal.Decimal(gamma.denominator)))))
    assert lo <= truth <= hi and (hi - lo) <= truth * Fraction(1, 2**100)
