"""Cost of the exact discrete Gaussian sampler against a float Gaussian baseline.

Run with ``python -m pytest bench/bench_noise.py --benchmark-only -q``.

Each case draws one client's noise for 120,000 coordinates (1/10 of the paper CNN), seeded and
from the CSPRNG (``CsprngGenerator``), at a small and a large sigma. The ``float_baseline`` case
draws ``numpy``'s float64 standard normals of the same size, measured in the same run: compare
the rows as ratios. Each sampler case records in ``extra_info`` the random 53-bit words it used
per draw.
"""
from __future__ import annotations

import numpy as np
import pytest

from fl.aggregation.discrete_gaussian import sample_discrete_gaussian
from fl.aggregation.noise_source import CsprngGenerator

DIM = 120_000


class _Counting:
    """Counts the uniforms a generator hands out."""

    def __init__(self, rng):
        self.rng, self.words = rng, 0

    def random(self, n):
        self.words += int(n)
        return self.rng.random(n)


def test_float_baseline(benchmark):
    rng = np.random.default_rng(0)
    benchmark(rng.standard_normal, DIM)


@pytest.mark.parametrize("sigma", [3.0, 2.0**20])
@pytest.mark.parametrize("source", ["seeded", "csprng"])
def test_exact_discrete_gaussian(benchmark, sigma, source):
    make = (lambda: np.random.default_rng(0)) if source == "seeded" else CsprngGenerator
    counting = _Counting(make())
    sample_discrete_gaussian(counting, sigma, DIM)
    benchmark.extra_info["words_per_draw"] = counting.words / DIM
    benchmark(lambda: sample_discrete_gaussian(make(), sigma, DIM))
