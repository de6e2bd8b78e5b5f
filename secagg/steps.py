"""The protocol's steps, one vocabulary for client, server, driver and transport."""
from __future__ import annotations

import enum

__all__ = ["Step", "STEPS"]


class Step(enum.Enum):
    """Where a party stands in a round; the four steps of Bonawitz et al. plus the active check."""

    ADVERTISE = "advertise_keys"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT = "masked_input"
    CONSISTENCY = "consistency_check"
    UNMASK = "unmask"
    DONE = "done"


#: the steps a client can drop out at, in protocol order
STEPS = tuple(s.value for s in Step if s is not Step.DONE)
