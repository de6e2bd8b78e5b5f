"""The classifiers trained by the federated simulation, and flat-vector helpers around them.

Two models share one interface:

* :class:`PaperCNN` - the EMNIST CNN of Sun et al. (2019), layer for layer (1,199,882 parameters);
* :class:`SmallCNN` - a much smaller CNN (14,410 parameters) for fast demos and proof experiments.

Federated code handles a model as a **flat float32 vector** of all its parameters, in the fixed
order of ``module.parameters()`` (weight then bias, layer by layer). :func:`init_params`,
:func:`flatten_params`, :func:`load_flat_` and :func:`unflatten` convert between the two forms.

Every model also has a **functional forward**, ``functional(params, x, keep)``, that takes the
parameters as a sequence of tensors and the dropout masks as an explicit argument. Local training
(``fl.training``) uses it so that the per-client loop and the batched path draw identical masks
from each client's own random generator; ``keep`` is ``None`` for evaluation (dropout off).
The ``nn.Module.forward`` of each model is the ordinary stateful version (``nn.Dropout``
semantics via ``self.training``) for code that wants a plain module.

Input is ``float32 [n, 1, 28, 28]``; output is ``[n, 10]`` logits (the softmax lives in the loss).
Initialisation follows Keras' defaults, which the paper's code relied on: Glorot-uniform kernels
with ``limit = sqrt(6 / (fan_in + fan_out))`` (for a convolution ``fan_in = in_channels * kh * kw``
and ``fan_out = out_channels * kh * kw``; for a dense layer the input and output widths) and zero
biases; the uniform law on ``[-limit, limit]`` has variance ``2 / (fan_in + fan_out)``.

The flatten order differs from Keras (channels-first here, channels-last there); that permutes
the rows of the first dense kernel and changes neither the function class nor the initial law.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PaperCNN",
    "SmallCNN",
    "MODELS",
    "get_model",
    "model_class",
    "init_params",
    "num_params",
    "param_shapes",
    "flatten_params",
    "load_flat_",
    "unflatten",
    "evaluate",
    "predict",
]


def _dense_head(h, w3, b3, w4, b4, keep):
    """Dropout -> Dense ReLU -> Dropout -> Dense, the tail both models share.

    ``h`` is the flattened convolutional output; ``keep``'s first ``h.shape[1]`` columns scale it
    and the rest scale the hidden layer (``None``: no dropout).
    """
    split = h.shape[1]
    if keep is not None:
        h = h * keep[:, :split]
    h = F.relu(F.linear(h, w3, b3))
    if keep is not None:
        h = h * keep[:, split:]
    return F.linear(h, w4, b4)


def _relu_pool(h: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(relu(h), 2)`` of a ``[n, c, H, W]`` tensor, computed as ``relu(max_pool2d(h, 2))``
    on a channels-last copy of ``h``; returns a contiguous (channels-first) ``[n, c, H/2, W/2]``.

    The same numbers, forward and backward, bit for bit, only faster on the CPU:

    * ReLU is monotone, so ``relu(max(window)) == max(relu(window))``; in the backward pass both
      orders send the gradient to the window's first largest element when it is positive and
      nowhere when it is not (ReLU's gradient at ``<= 0`` is 0), so the gradients agree too. The
      ReLU then runs on a quarter of the elements.
    * PyTorch's CPU max-pooling kernel for channels-first tensors walks each small 24 x 24 plane
      on its own and is about 15x slower than its channels-last kernel, which vectorises over the
      channels (0.3 ms against 5 ms for a batch of 20 of the paper CNN's 64 x 24 x 24 maps, on one
      thread). Both pick the first largest element of each window in the same scan order, so the
      pooled values and the indices the backward pass uses are the same.

    Elsewhere (CUDA, or inside :func:`torch.func.vmap`, which cannot change a memory format) the
    pooling runs on ``h`` as it is, with the ReLU after it.
    """
    if h.device.type == "cpu" and not _is_batched(h):
        h = h.contiguous(memory_format=torch.channels_last)
    return F.relu(F.max_pool2d(h, 2)).contiguous()


def _is_batched(t: torch.Tensor) -> bool:
    """Whether ``t`` is a per-example view inside :func:`torch.func.vmap` (the batched training path)."""
    return bool(torch._C._functorch.is_batchedtensor(t))


class PaperCNN(nn.Module):
    """Sun et al.'s EMNIST CNN.

    Conv 32 3x3 ReLU (valid) -> Conv 64 3x3 ReLU -> MaxPool 2 -> Dropout 0.25 -> Flatten ->
    Dense 128 ReLU -> Dropout 0.5 -> Dense 10. 1,199,882 parameters for 10 classes.

    Attributes:
      dropout_layers: ``(units, rate)`` of each dropout layer, in forward order. The explicit
        ``keep`` mask of :meth:`functional` has ``sum(units)`` columns, split in this order.
    """

    dropout_layers: tuple[tuple[int, float], ...] = ((64 * 12 * 12, 0.25), (128, 0.5))

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.fc2 = nn.Linear(128, num_classes)

    @staticmethod
    def functional(params: Sequence[torch.Tensor], x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """Logits for ``x`` with parameters ``params`` and dropout scales ``keep``.

        Args:
          params: the eight tensors in ``parameters()`` order.
          x: ``float32 [n, 1, 28, 28]``.
          keep: ``[n, 9216 + 128]`` multipliers (columns split as :attr:`dropout_layers`) (0 or ``1 / (1 - rate)``), or ``None`` for no dropout.

        Returns:
          ``[n, num_classes]`` logits.
        """
        w1, b1, w2, b2, w3, b3, w4, b4 = params
        h = F.relu(F.conv2d(x, w1, b1))
        h = _relu_pool(F.conv2d(h, w2, b2)).flatten(1)
        return _dense_head(h, w3, b3, w4, b4, keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x))
        h = _relu_pool(self.conv2(h))
        h = F.dropout(h, 0.25, self.training).flatten(1)
        h = F.dropout(F.relu(self.fc1(h)), 0.5, self.training)
        return self.fc2(h)


class SmallCNN(nn.Module):
    """A small CNN with the paper model's shape of layers (14,410 parameters).

    Conv 8 3x3 ReLU (valid) -> MaxPool 2 -> Conv 16 3x3 ReLU -> MaxPool 2 -> Dropout 0.25 ->
    Flatten -> Dense 32 ReLU -> Dropout 0.5 -> Dense 10.

    Attributes:
      dropout_layers: ``(units, rate)`` of each dropout layer, as for :class:`PaperCNN`.
    """

    dropout_layers: tuple[tuple[int, float], ...] = ((16 * 5 * 5, 0.25), (32, 0.5))

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.conv2 = nn.Conv2d(8, 16, 3)
        self.fc1 = nn.Linear(16 * 5 * 5, 32)
        self.fc2 = nn.Linear(32, num_classes)

    @staticmethod
    def functional(params: Sequence[torch.Tensor], x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """Logits for ``x``; arguments as :meth:`PaperCNN.functional` (``keep`` has 400 + 32 columns)."""
        w1, b1, w2, b2, w3, b3, w4, b4 = params
        h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2)), 2).flatten(1)
        return _dense_head(h, w3, b3, w4, b4, keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = F.dropout(h, 0.25, self.training).flatten(1)
        h = F.dropout(F.relu(self.fc1(h)), 0.5, self.training)
        return self.fc2(h)


#: The models selectable by name (``--model`` on the command line, ``model_name`` everywhere).
MODELS: dict[str, type] = {"paper_cnn": PaperCNN, "small_cnn": SmallCNN}


def model_class(name: str) -> type:
    """The class registered under ``name``.

    Raises:
      ValueError: ``name`` is not a key of :data:`MODELS`; the message lists the choices.
    """
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None


def get_model(name: str) -> nn.Module:
    """A new instance of model ``name`` on the CPU (PyTorch's default initialisation).

    Use :func:`init_params` and :func:`load_flat_` for the Keras-equivalent initialisation.

    Raises:
      ValueError: unknown ``name``.
    """
    return model_class(name)()


@functools.lru_cache(maxsize=None)
def param_shapes(name: str) -> tuple[torch.Size, ...]:
    """Shapes of the model's parameter tensors, in flat-vector order."""
    return tuple(p.shape for p in get_model(name).parameters())


def num_params(name: str) -> int:
    """Length of the model's flat parameter vector."""
    return sum(math.prod(s) for s in param_shapes(name))


def _glorot_limit(shape: torch.Size) -> float:
    """Keras' Glorot-uniform bound for a PyTorch kernel shape (``[out, in]`` or ``[out, in, kh, kw]``)."""
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    return math.sqrt(6.0 / (fan_in + fan_out))


def init_params(name: str, seed: int) -> torch.Tensor:
    """Keras-equivalent initial weights of model ``name`` as a flat float32 CPU vector.

    Kernels are drawn uniformly from ``[-limit, limit]`` (Glorot), one tensor after the other
    from a ``torch.Generator`` seeded with ``seed``; biases are zero. The same seed always gives
    the same vector.

    Raises:
      ValueError: unknown ``name``.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    parts = []
    for shape in param_shapes(name):
        if len(shape) == 1:
            parts.append(torch.zeros(shape[0], dtype=torch.float32))
        else:
            limit = _glorot_limit(shape)
            u = torch.rand(math.prod(shape), generator=gen, dtype=torch.float32)
            parts.append(u.mul_(2.0 * limit).sub_(limit))
    return torch.cat(parts)


def flatten_params(module: nn.Module) -> torch.Tensor:
    """All parameters of ``module`` as one flat float32 vector (detached, on the module's device)."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()]).to(torch.float32)


def load_flat_(module: nn.Module, flat: torch.Tensor) -> nn.Module:
    """Copy the flat vector ``flat`` into ``module``'s parameters in place; returns ``module``.

    Raises:
      ValueError: ``flat`` is not one-dimensional or its length differs from the parameter count.
    """
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    if flat.dim() != 1 or flat.numel() != total:
        raise ValueError(f"flat vector has shape {tuple(flat.shape)}, the model needs [{total}]")
    with torch.no_grad():
        offset = 0
        for p in params:
            p.copy_(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
    return module


def unflatten(name: str, flat: torch.Tensor) -> list[torch.Tensor]:
    """Views of ``flat`` shaped as the parameters of model ``name`` (no copy).

    Raises:
      ValueError: unknown ``name``, or ``flat`` has the wrong shape.
    """
    shapes = param_shapes(name)
    total = sum(math.prod(s) for s in shapes)
    if flat.dim() != 1 or flat.numel() != total:
        raise ValueError(f"flat vector has shape {tuple(flat.shape)}, model {name!r} needs [{total}]")
    views, offset = [], 0
    for s in shapes:
        n = math.prod(s)
        views.append(flat[offset : offset + n].view(s))
        offset += n
    return views


#: On the CPU, evaluation runs the forward pass on at most this many images at a time and joins
#: the logits into the caller's batch. A batch of 500 makes the paper CNN's activations 43 MB and
#: 74 MB, above glibc's largest mmap threshold (32 MB), so every such tensor is a fresh mapping
#: whose pages the kernel faults in and zeroes: measured, that system time was more than the
#: forward pass itself. Each image's logits do not depend on how many images share the pass
#: (the forward has no cross-image reduction; checked bit for bit in tests/test_model.py), so the
#: batch's logits, and the loss summed over them, are the same numbers.
CPU_FORWARD_CHUNK = 64


def _forward_chunked(forward, weights, xb: torch.Tensor) -> torch.Tensor:
    """``forward(weights, xb, None)``, in chunks of :data:`CPU_FORWARD_CHUNK` images on the CPU."""
    if xb.device.type != "cpu" or xb.shape[0] <= CPU_FORWARD_CHUNK:
        return forward(weights, xb, None)
    return torch.cat([forward(weights, xb[i : i + CPU_FORWARD_CHUNK], None)
                      for i in range(0, xb.shape[0], CPU_FORWARD_CHUNK)])


def _logits_batches(name, params, x, batch_size, device):
    """Yield ``(start, logits)`` for consecutive batches of ``x`` (dropout off, no grad)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    device = torch.device(device) if device is not None else x.device
    forward = model_class(name).functional
    weights = unflatten(name, params.detach().to(device=device, dtype=torch.float32))
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(device=device, dtype=torch.float32)
            yield start, _forward_chunked(forward, weights, xb)


def evaluate(
    name: str,
    params: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of flat weights ``params`` on ``(x, y)``, dropout off.

    Args:
      name: model name (a key of :data:`MODELS`).
      params: flat float32 parameter vector.
      x: ``float32 [n, 1, 28, 28]`` images.
      y: ``int64 [n]`` labels.
      batch_size: examples per forward pass.
      device: where to compute; defaults to ``x``'s device.

    Returns:
      ``(accuracy, mean_loss)`` as Python floats.

    Raises:
      ValueError: unknown model, wrong parameter length, empty or mismatched data.
    """
    if x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"need a non-empty dataset with one label per image, got {x.shape[0]} images, {y.shape[0]} labels")
    correct = None
    loss_sum = None
    for start, logits in _logits_batches(name, params, x, batch_size, device):
        yb = y[start : start + logits.shape[0]].to(device=logits.device, dtype=torch.int64)
        c = (logits.argmax(1) == yb).sum()
        s = F.cross_entropy(logits, yb, reduction="sum").double()
        correct = c if correct is None else correct + c
        loss_sum = s if loss_sum is None else loss_sum + s
    n = x.shape[0]
    return float(correct) / n, float(loss_sum) / n


def predict(
    name: str,
    params: torch.Tensor,
    x: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Predicted labels (``int64 [n]``, on the compute device) of flat weights ``params`` for ``x``.

    Raises:
      ValueError: unknown model or wrong parameter length.
    """
    out = [logits.argmax(1) for _, logits in _logits_batches(name, params, x, batch_size, device)]
    if not out:
        return torch.zeros(0, dtype=torch.int64, device=device if device is not None else x.device)
    return torch.cat(out)
