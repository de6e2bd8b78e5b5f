"""The verifier's multi-exponentiation: the C bucket method against OpenSSL's, in the same run.

Run: ``python -m pytest bench/bench_native_msm.py --benchmark-only -q``.

Each size times :func:`rangeproof.native_msm.msm_public` (affine table prepared, as the verifier
holds it) with pytest-benchmark and records in ``extra_info`` its CPU time relative to
:func:`rangeproof.group.msm` (OpenSSL's ``EC_POINTs_mul``) on the same scalars and points,
measured in the same test by alternating the two (process CPU time, so that other jobs on a
shared machine move the ratio less than wall time would). Also the same for ``msm_small``'s loop
in C against the Python loop (``SABRE_NATIVE_MSM=0``).

Measured on the development machine (2 vCPUs, AMD EPYC, a background sweep paused): see
docs/proofs.md, "Native multi-exponentiation", for the figures at the model's size.
"""
from __future__ import annotations

import random
import resource

import pytest

from rangeproof import native_msm
from rangeproof.generators import generators
from rangeproof.group import ORDER, msm, msm_small

pytestmark = pytest.mark.skipif(not native_msm.available(), reason="the C module is not built")

SIZES = [2**12, 2**15, 2**17]
PAIRS = 3
LABEL = b"sabre/bench/native-msm/v1"


def _cpu(fn) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _ratio(fast, slow) -> float:
    f = s = 0.0
    for _ in range(PAIRS):
        f += _cpu(fast)
        s += _cpu(slow)
    return f / s


@pytest.mark.parametrize("n", SIZES)
def test_msm_public_against_openssl(benchmark, n):
    benchmark.group = f"verifier msm n={n}"
    rnd = random.Random(n)
    G = generators(LABEL, n)
    table = native_msm.generator_table(LABEL, n)
    sc = [rnd.randrange(ORDER) for _ in range(n)]
    fast = lambda: native_msm.msm_public(sc, G, table=table)  # noqa: E731
    slow = lambda: msm(sc, G)  # noqa: E731
    assert fast() == slow()
    benchmark.extra_info["cpu_ratio_to_openssl"] = round(_ratio(fast, slow), 3)
    benchmark.pedantic(fast, rounds=3, iterations=1)


@pytest.mark.parametrize("n", SIZES)
def test_msm_small_loop_in_c(benchmark, n, monkeypatch):
    benchmark.group = f"msm_small n={n}"
    rnd = random.Random(n + 1)
    G = generators(LABEL, n)
    vals = [rnd.randrange(-300, 301) for _ in range(n)]

    def python_loop():
        monkeypatch.setenv("SABRE_NATIVE_MSM", "0")
        try:
            return msm_small(vals, G)
        finally:
            monkeypatch.delenv("SABRE_NATIVE_MSM")

    fast = lambda: msm_small(vals, G)  # noqa: E731
    assert fast() == python_loop()
    benchmark.extra_info["cpu_ratio_to_python_loop"] = round(_ratio(fast, python_loop), 3)
    benchmark.pedantic(fast, rounds=3, iterations=1)
