"""What local training is told: the hyperparameters and one client's data."""
from __future__ import annotations

import dataclasses
import math
import operator

import torch

__all__ = ["LocalConfig", "ClientData"]


@dataclasses.dataclass(frozen=True)
class LocalConfig:
    """Hyperparameters of a client's local SGD (the paper's defaults).

    Attributes:
      epochs: passes over the client's data.
      batch_size: examples per SGD step; the last, partial batch of an epoch is kept.
      lr: SGD learning rate (plain SGD, no momentum, no weight decay).
      shuffle: visit each epoch's examples in a fresh permutation drawn from the client's seed;
        ``False`` keeps file order (what the paper's released code does).

    Raises:
      ValueError: negative ``epochs``, ``batch_size`` below 1, or a non-finite ``lr``.
    """

    epochs: int = 5
    batch_size: int = 20
    lr: float = 0.1
    shuffle: bool = True

    def __post_init__(self) -> None:
        epochs, batch_size = _as_int(self.epochs), _as_int(self.batch_size)
        if epochs is None or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {self.epochs!r}")
        if batch_size is None or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        try:
            lr = float(self.lr)
        except (TypeError, ValueError):
            lr = math.nan
        if not math.isfinite(lr):
            raise ValueError(f"lr must be a finite number, got {self.lr!r}")
        # store plain Python numbers (numpy scalars from a config file become int / float)
        object.__setattr__(self, "epochs", epochs)
        object.__setattr__(self, "batch_size", batch_size)
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "shuffle", bool(self.shuffle))


def _as_int(value: object) -> int | None:
    """``value`` as a Python int if it is an integer (not a bool), else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


@dataclasses.dataclass
class ClientData:
    """One client's training examples, already on the device that trains on them.

    Attributes:
      x: ``float32 [n, 1, 28, 28]`` images.
      y: ``int64 [n]`` labels.

    Raises:
      ValueError: wrong shapes or dtypes, or different devices for ``x`` and ``y``.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32 or self.x.dim() != 4 or tuple(self.x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x must be float32 [n, 1, 28, 28], got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.dim() != 1 or self.y.shape[0] != self.x.shape[0]:
            raise ValueError(f"y must be int64 [{self.x.shape[0]}], got {self.y.dtype} {tuple(self.y.shape)}")
        if self.x.device != self.y.device:
            raise ValueError(f"x is on {self.x.device} but y is on {self.y.device}")

    def __len__(self) -> int:
        return int(self.y.shape[0])
