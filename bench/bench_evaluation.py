"""The paper CNN's CPU pooling and evaluation against the plain layer order they replace.

Run with ``SABRE_BENCH_THREADS=1 python -m pytest bench/bench_evaluation.py --benchmark-only -q``.

``fl.model`` pools a channels-last copy with the ReLU after the pooling, and evaluates on the
CPU in chunks of ``CPU_FORWARD_CHUNK`` images (docs/training.md); both give the same numbers bit
for bit (tests/test_model.py). Each case times the sabre version with pytest-benchmark and
reports in ``extra_info`` its CPU time relative to the replaced version, measured in the same
test by alternating the two (process CPU time, user + system, so that other jobs on a shared
machine move the ratio less than wall time would). ``SABRE_BENCH_THREADS`` pins torch's threads
as in bench_training.py.

Measured on the development machine (2 vCPUs, AMD EPYC, load average 8 to 10 from other jobs),
with one thread: pooling 0.44 and evaluation 0.38 of the replaced versions' CPU time. With two
threads on that loaded machine the evaluation ratio was 1.28: smaller chunks mean more parallel
regions, and there every one of them stalls (docs/sweeps.md, "Why the first measurement was four
times higher").
"""
from __future__ import annotations

import os
import resource
import statistics

import pytest
import torch
import torch.nn.functional as F

import fl.model
from fl.model import _relu_pool, evaluate, init_params, unflatten

if os.environ.get("SABRE_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["SABRE_BENCH_THREADS"]))

PAIRS = 5


def _cpu_seconds(fn) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _ratio(benchmark, ours, replaced):
    ours_t, replaced_t = [], []
    for _ in range(PAIRS):
        replaced_t.append(_cpu_seconds(replaced))
        ours_t.append(_cpu_seconds(ours))
    benchmark.extra_info["cpu_ratio_vs_replaced_median"] = round(statistics.median(ours_t) / statistics.median(replaced_t), 3)
    benchmark.extra_info["replaced_cpu_s_median"] = round(statistics.median(replaced_t), 4)
    benchmark.extra_info["threads"] = torch.get_num_threads()


def _reference_forward(params, x):
    """The paper's layer order: ReLU, then channels-first pooling (dropout off)."""
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    h = F.relu(F.conv2d(x, w1, b1))
    h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2)), 2).flatten(1)
    return F.linear(F.relu(F.linear(h, w3, b3)), w4, b4)


def test_relu_pool_cpu(benchmark):
    # the second convolution's output of one training batch of 20
    h = torch.randn(20, 64, 24, 24, generator=torch.Generator().manual_seed(0))
    ours = lambda: [_relu_pool(h) for _ in range(20)]  # noqa: E731
    replaced = lambda: [F.max_pool2d(F.relu(h), 2) for _ in range(20)]  # noqa: E731
    benchmark.pedantic(ours, rounds=5, iterations=1, warmup_rounds=1)
    _ratio(benchmark, ours, replaced)


def test_evaluate_cpu(benchmark):
    # 1,000 images at the figure configs' eval.batch_size of 500
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1000, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (1000,), generator=gen)
    params = init_params("paper_cnn", 0)
    weights = unflatten("paper_cnn", params)

    def replaced():
        with torch.no_grad():
            for i in range(0, 1000, 500):
                F.cross_entropy(_reference_forward(weights, x[i : i + 500]), y[i : i + 500], reduction="sum")

    ours = lambda: evaluate("paper_cnn", params, x, y, batch_size=500)  # noqa: E731
    benchmark.pedantic(ours, rounds=3, iterations=1, warmup_rounds=1)
    _ratio(benchmark, ours, replaced)
    benchmark.extra_info["chunk"] = fl.model.CPU_FORWARD_CHUNK
