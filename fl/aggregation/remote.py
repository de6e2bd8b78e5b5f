"""The pipeline split across processes: client halves where the data is, server halves on the server.

In process, :meth:`Stage.aggregate` runs every client's halves itself (through
:meth:`Stage.run_client`) and then its own server half. Over a network the client halves run
in the client's process, on its own update, and the server is handed their result:

* the client calls :func:`client_halves` on its message: the same stage objects (built from the
  same config) run the same ``run_client`` calls, outermost first, as ``aggregate`` would;
* the server wraps what arrives in a :class:`ClientMessage` whose ``adversary`` is a
  :class:`PlayedRemotely` marker: each stage's ``run_client`` then hands the message on as it
  came (the half was played already), or refuses it where the client's own half refused it, so
  ``aggregate`` runs unchanged and makes the same decisions.

Only stages whose client half depends on the client's message alone can be split:
:data:`SPLIT_STAGES` (mean, quantization, norm bound with proofs); :func:`check_splittable`
refuses any other pipeline before a round starts.
"""
from __future__ import annotations

from typing import Callable

from .base import Aggregator, ClientMessage, InvalidUpdate, RoundContext, Stage
from .mean import MeanStage
from .norm_proof import NormProofStage
from .secure_sum import QuantizeStage, SecureSum

__all__ = ["SPLIT_STAGES", "check_splittable", "client_halves", "innermost", "PlayedRemotely"]

#: the stages whose client half can run in the client's process
SPLIT_STAGES = (MeanStage, QuantizeStage, NormProofStage)


def innermost(pipeline: Aggregator) -> Aggregator:
    """The aggregator at the bottom of the stack (the sum)."""
    agg = pipeline
    while isinstance(agg, Stage):
        agg = agg.inner
    return agg


def check_splittable(pipeline: Aggregator) -> SecureSum:
    """Check that ``pipeline`` can run split across processes; returns its :class:`SecureSum`.

    Raises:
      ValueError: a stage whose client half cannot run remotely, or a sum other than the secure
        one (a plaintext sum would hand the server every update in the clear).
    """
    bottom = innermost(pipeline)
    if not isinstance(bottom, SecureSum):
        raise ValueError(f"the network transport needs aggregation.secure = true (the sum is {bottom!r})")
    agg = pipeline
    while isinstance(agg, Stage):
        if not isinstance(agg, SPLIT_STAGES):
            raise ValueError(f"the network transport cannot split the stage {agg!r}; it runs "
                             f"{', '.join(c.__name__ for c in SPLIT_STAGES)} over SecureSum")
        agg = agg.inner
    return bottom


def client_halves(pipeline: Aggregator, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
    """Every stage's client half on ``message``, outermost first, as ``aggregate`` runs them.

    Raises:
      InvalidUpdate: a stage's half refused the message (in process the stage would exclude
        the client); :func:`refusal_of` says which stage.
    """
    agg = pipeline
    while isinstance(agg, Stage):
        if isinstance(agg, MeanStage):
            message = agg.capped(message)  # the server's cap of the claimed weight, applied first
        try:
            message = agg.run_client(message, ctx)
        except InvalidUpdate as exc:
            exc.stage = agg.name
            raise
        agg = agg.inner
    return message


class PlayedRemotely:
    """The ``adversary`` slot of a message whose client halves ran in the client's process.

    Args:
      refused: ``(stage name, reason, text)`` when the client's own half at that stage refused
        its update; the stage then excludes the client here with the same reason.
    """

    secagg_client = None

    def __init__(self, refused: tuple[str, str, str] | None = None):
        self.refused = refused

    def client_step(self, stage: Stage, message: ClientMessage, ctx: RoundContext,
                    honest: Callable[[ClientMessage, RoundContext], ClientMessage]) -> ClientMessage:
        if self.refused is not None and self.refused[0] == stage.name:
            raise InvalidUpdate(self.refused[2], blamed=(message.client_id,), reason=self.refused[1])
        return message

    def __repr__(self) -> str:
        return f"PlayedRemotely(refused={self.refused!r})"
