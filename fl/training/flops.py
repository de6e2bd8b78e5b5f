"""Analytic floating-point cost of training, per example, counted from the layer shapes.

Only the matrix products are counted (convolutions and dense layers; one multiply-add = 2 FLOP);
activations, pooling, dropout and the loss are linear in the activations and negligible beside
them. For a layer doing ``M`` multiply-adds per example:

* forward: ``2 M``;
* backward: ``2 M`` for the weight gradient, plus ``2 M`` for the gradient with respect to the
  layer's input, except for the first layer, whose input (the image) needs no gradient.

So one SGD example costs ``6 sum(M) - 2 M_first``. A convolution with ``C_in`` input channels,
a ``kh x kw`` kernel and an output of ``C_out x H x W`` does ``M = C_out H W C_in kh kw``; a dense
layer ``M = in * out``. For the paper's CNN: 194,688 + 10,616,832 + 1,179,648 + 1,280 =
11,992,448 multiply-adds, i.e. about 24.0 MFLOP forward and 71.6 MFLOP per training example.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from fl.model import get_model

__all__ = ["layer_macs", "forward_flops", "training_flops_per_example", "images_per_second_to_gflops"]


@functools.lru_cache(maxsize=None)
def layer_macs(model_name: str) -> tuple[tuple[str, int], ...]:
    """Multiply-adds per example of each convolution and dense layer, in forward order.

    Output sizes are found by running the model on a shape-only (``meta``) input; nothing is
    computed.

    Raises:
      ValueError: unknown ``model_name``.
    """
    module = get_model(model_name).to("meta").eval()
    found: list[tuple[str, int]] = []
    hooks = []
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Conv2d):
            def hook(mod, inp, out, name=name):
                c_out, h, w = out.shape[1:]
                kh, kw = mod.kernel_size
                found.append((name, c_out * h * w * (mod.in_channels // mod.groups) * kh * kw))
        elif isinstance(layer, nn.Linear):
            def hook(mod, inp, out, name=name):
                found.append((name, mod.in_features * mod.out_features))
        else:
            continue
        hooks.append(layer.register_forward_hook(hook))
    try:
        module(torch.empty(1, 1, 28, 28, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return tuple(found)


def forward_flops(model_name: str) -> int:
    """FLOP of one example's forward pass (``2 * sum of multiply-adds``)."""
    return 2 * sum(m for _, m in layer_macs(model_name))


def training_flops_per_example(model_name: str) -> int:
    """FLOP of one example's forward and backward pass in SGD (see the module docstring)."""
    macs = layer_macs(model_name)
    return 6 * sum(m for _, m in macs) - 2 * macs[0][1]


def images_per_second_to_gflops(model_name: str, images_per_second: float) -> float:
    """Convert a training throughput into GFLOP/s with :func:`training_flops_per_example`."""
    return images_per_second * training_flops_per_example(model_name) / 1e9

