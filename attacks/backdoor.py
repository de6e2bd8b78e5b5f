"""The backdoor task of Sun et al. (2019): the 7s of N target writers, relabelled as 1.

The attacker's set D_mal holds the *train* images of ``source_label`` (7) of ``num_tasks``
target writers, each labelled ``target_label`` (1). The target writers are chosen
deterministically from ``target_seed`` among the writers that have at least one train image of
the source digit. They stay in the benign population with their correct labels (the paper
allows this), so honest rounds keep pulling the backdoor back out.

Metrics (see docs/attacks.md):

* ``backdoor_acc`` - share of D_mal classified as ``target_label`` (how the authors' code
  measures it: their evaluation set is exactly the attacker's training set);
* ``backdoor_heldout_acc`` - the same on the target writers' *test* images of the source digit,
  when the data has a test split for them (never seen by the attacker);
* main-task accuracy is the simulation's, on every writer's test data except the targets'
  (:attr:`BackdoorTask.target_clients` is what ``main_eval_exclude`` returns).
"""
from __future__ import annotations

import dataclasses
import numpy as np

from .errors import BackdoorTaskError

__all__ = ["BackdoorTask", "build_backdoor_task", "backdoor_metrics"]


@dataclasses.dataclass(frozen=True)
class BackdoorTask:
    """The backdoor set D_mal and its held-out twin.

    Attributes:
      target_clients: client indices of the target writers, increasing.
      source_label: the digit relabelled (7).
      target_label: the label the attacker wants (1).
      train_pixels: ``uint8 [m, 28, 28]``, the target writers' train images of the source digit.
      train_labels: ``int64 [m]``, all equal to ``target_label`` (D_mal's labels).
      test_pixels: ``uint8 [h, 28, 28]``, the target writers' test images of the source digit
        (``h`` may be 0).
      test_labels: ``int64 [h]``, all equal to ``target_label``.
    """

    target_clients: tuple[int, ...]
    source_label: int
    target_label: int
    train_pixels: np.ndarray
    train_labels: np.ndarray
    test_pixels: np.ndarray
    test_labels: np.ndarray

    @property
    def size(self) -> int:
        """|D_mal|."""
        return int(self.train_labels.shape[0])


def build_backdoor_task(
    dataset,
    num_tasks: int,
    *,
    source_label: int = 7,
    target_label: int = 1,
    target_seed: int = 0,
) -> BackdoorTask:
    """Choose the target writers and build D_mal from their images of ``source_label``.

    The targets are the first ``num_tasks`` of a seeded permutation of the participants (the
    writers with training data, a public registry: docs/privacy.md), chosen without looking at
    anyone's images: which other writers hold a ``source_label`` must not decide the targets, or
    the attack of every round would depend on data that the privacy accountant counts only when
    its writer is sampled. A target without a train image of ``source_label`` adds nothing to
    D_mal; only the targets' own data is read.

    Args:
      dataset: an ``fl.data.FederatedDataset``.
      num_tasks: number of target writers N ("number of backdoor tasks").
      source_label: the digit to relabel.
      target_label: its new label.
      target_seed: seed of the choice.

    Returns:
      The :class:`BackdoorTask`.

    Raises:
      ValueError: ``num_tasks`` below 1.
      BackdoorTaskError: fewer than ``num_tasks`` participants, or targets with no train image
        of the source digit between them.
    """
    if int(num_tasks) < 1:
        raise ValueError(f"attack.num_tasks: expected a positive integer, got {num_tasks!r}")
    participants = dataset.train_clients()
    if len(participants) < num_tasks:
        raise BackdoorTaskError(
            f"attack.num_tasks = {num_tasks}, but the data has only {len(participants)} writers with training data"
        )
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(target_seed), 0x7B2])))
    chosen = sorted(int(participants[i]) for i in rng.permutation(len(participants))[:num_tasks])
    train_x, test_x = [], []
    for c in chosen:
        x, y = dataset.client_train(c)
        train_x.append(x[y == source_label])
        x, y = dataset.client_test(c)
        test_x.append(x[y == source_label])
    if sum(len(x) for x in train_x) == 0:
        raise BackdoorTaskError(
            f"attack.num_tasks = {num_tasks}: none of the target writers {chosen} has a train image of "
            f"{source_label}; choose another attack.target_seed"
        )
    train_pixels = np.ascontiguousarray(np.concatenate(train_x))
    test_pixels = np.ascontiguousarray(np.concatenate(test_x))
    return BackdoorTask(
        target_clients=tuple(chosen),
        source_label=int(source_label),
        target_label=int(target_label),
        train_pixels=train_pixels,
        train_labels=np.full(train_pixels.shape[0], target_label, dtype=np.int64),
        test_pixels=test_pixels,
        test_labels=np.full(test_pixels.shape[0], target_label, dtype=np.int64),
    )


def backdoor_metrics(evaluate, task: BackdoorTask, to_input, params) -> dict[str, float]:
    """Backdoor accuracy of ``params`` on D_mal and on the held-out target 7s.

    Args:
      evaluate: ``evaluate(params, x, y) -> (accuracy, loss)`` (``TrainingView.evaluate``).
      task: the backdoor task.
      to_input: turns ``uint8`` pixels into what ``evaluate`` takes as ``x`` (with labels: a
        callable ``(pixels, labels) -> (x, y)``).
      params: flat model weights.

    Returns:
      ``{"backdoor_acc", "backdoor_loss"}`` and, when the targets have test 7s,
      ``{"backdoor_heldout_acc", "backdoor_heldout_loss"}``.
    """
    out: dict[str, float] = {}
    x, y = to_input(task.train_pixels, task.train_labels)
    acc, loss = evaluate(params, x, y)
    out["backdoor_acc"], out["backdoor_loss"] = float(acc), float(loss)
    if task.test_labels.size:
        x, y = to_input(task.test_pixels, task.test_labels)
        acc, loss = evaluate(params, x, y)
        out["backdoor_heldout_acc"], out["backdoor_heldout_loss"] = float(acc), float(loss)
    return out
