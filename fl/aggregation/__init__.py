"""Aggregation pipeline: composable stages between client updates and the server's model step."""
from .base import (
    AggregateResult,
    AggregationError,
    Aggregator,
    ClientAdversary,
    ClientMessage,
    RoundContext,
    RoundFailed,
    Stage,
)
from .mean import WEIGHTINGS, MeanStage, PlainSum

__all__ = [
    "AggregateResult",
    "AggregationError",
    "Aggregator",
    "ClientAdversary",
    "ClientMessage",
    "RoundContext",
    "RoundFailed",
    "Stage",
    "MeanStage",
    "PlainSum",
    "WEIGHTINGS",
]
