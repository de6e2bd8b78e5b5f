"""Throughput of local training: a hand-written PyTorch loop against both sabre paths.

Run with ``python -m pytest bench/bench_training.py --benchmark-only -q``.

Workload (CPU): 30 clients x 20 images x 1 epoch of the paper's CNN at batch 20, i.e. one SGD
step per client; on CUDA 30 clients x 100 images (a paper round's client size). Each case
reports images/s and GFLOP/s (analytic count of ``fl.training.flops``) in ``extra_info``. The
per-client path also reports its cost relative to the baseline, measured in the same test by
alternating the two (the CPU may be shared, so alternation cancels most of the drift).

On a shared machine, ``SABRE_BENCH_THREADS=1`` pins PyTorch to one thread: multi-threaded
kernels stall badly when another process holds one of their cores, which makes two-thread
figures swing by an order of magnitude.
"""
from __future__ import annotations

import os
import statistics
import time

import pytest
import torch
import torch.nn.functional as F

from fl.model import get_model, init_params, load_flat_
from fl.training import ClientData, LocalConfig, train_clients
from fl.training.flops import images_per_second_to_gflops

if os.environ.get("SABRE_BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["SABRE_BENCH_THREADS"]))

MODEL = "paper_cnn"
CLIENTS = 30
ROUNDS = 5
RATIO_PAIRS = 10  # alternating baseline / per-client runs for the ratio
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


def _workload(device: str):
    n = 20 if device == "cpu" else 100
    gen = torch.Generator().manual_seed(0)
    clients = [
        ClientData(
            torch.rand(n, 1, 28, 28, generator=gen).to(device),
            torch.randint(0, 10, (n,), generator=gen).to(device),
        )
        for _ in range(CLIENTS)
    ]
    start = init_params(MODEL, 0).to(device)
    return start, clients, LocalConfig(epochs=1, batch_size=20, lr=0.1, shuffle=True), list(range(CLIENTS))


def _baseline(start, clients, cfg, device):
    """A plain PyTorch training loop: nn.Module, F.cross_entropy, backward, SGD on ``p.data``."""
    out = []
    model = get_model(MODEL).to(device).train()
    params = list(model.parameters())
    for data in clients:
        load_flat_(model, start)
        n = data.y.shape[0]
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, device=device)
            for i in range(0, n, cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                loss = F.cross_entropy(model(data.x[idx]), data.y[idx])
                for p in params:
                    p.grad = None
                loss.backward()
                for p in params:
                    p.data.add_(p.grad, alpha=-cfg.lr)
        out.append(torch.cat([p.detach().reshape(-1) for p in params]) - start)
    return torch.stack(out).cpu()


def _timed(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def _report(benchmark, clients, cfg):
    images = sum(len(c) for c in clients) * cfg.epochs
    ips = images / benchmark.stats.stats.median
    benchmark.extra_info["images"] = images
    benchmark.extra_info["images_per_s"] = round(ips, 1)
    benchmark.extra_info["gflop_per_s"] = round(images_per_second_to_gflops(MODEL, ips), 2)
    benchmark.extra_info["threads"] = torch.get_num_threads()


@pytest.mark.parametrize("device", DEVICES)
def test_baseline_handwritten_loop(benchmark, device):
    start, clients, cfg, _ = _workload(device)
    benchmark.pedantic(_baseline, args=(start, clients, cfg, device), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _report(benchmark, clients, cfg)


@pytest.mark.parametrize("device", DEVICES)
def test_per_client_path(benchmark, device):
    start, clients, cfg, seeds = _workload(device)
    ours = lambda: train_clients(MODEL, start, clients, cfg, seeds, device=device, path="loop")  # noqa: E731
    benchmark.pedantic(ours, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _report(benchmark, clients, cfg)
    base_t, ours_t = [], []
    for _ in range(RATIO_PAIRS):
        base_t.append(_timed(lambda: _baseline(start, clients, cfg, device), device))
        ours_t.append(_timed(ours, device))
    benchmark.extra_info["ratio_vs_baseline_median"] = round(statistics.median(ours_t) / statistics.median(base_t), 3)
    benchmark.extra_info["ratio_vs_baseline_min"] = round(min(ours_t) / min(base_t), 3)


@pytest.mark.parametrize("device", DEVICES)
def test_batched_path(benchmark, device):
    start, clients, cfg, seeds = _workload(device)
    benchmark.pedantic(
        train_clients,
        args=(MODEL, start, clients, cfg, seeds),
        kwargs=dict(device=device, path="batched"),
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )
    _report(benchmark, clients, cfg)
