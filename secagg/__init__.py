"""Secure aggregation (Bonawitz et al. 2017; SecAgg+ of Bell et al. 2020).

The server learns the sum of the clients' vectors over Z_(2^k) (and of short side vectors over
a prime field) and nothing else, tolerating dropouts at any step while ``t`` clients remain.
The protocol, threat model, parameter choices and wire encoding are in ``docs/secagg.md``.

Front doors:

* :class:`SecAggParams` (:meth:`~SecAggParams.classic`, :meth:`~SecAggParams.secagg_plus`) and
  :func:`run_round` - one in-process round with a :class:`DropoutPlan`;
* :class:`SecAggClient` / :class:`SecAggServer` - the state machines, for other transports
  (:mod:`secagg.net` runs them over TCP); :mod:`secagg.protocol` is the step table (and each
  step's frame bound) that every transport walks.

Internals (Shamir sharing and its Feldman commitments, mask expansion, key derivation, codec)
live in their own modules and are not re-exported. The aggregation-pipeline stages that run this
protocol (``SecureSum``, ``QuantizeStage``, ``ModularPlainSum``, ``secure_pipeline``) live above
it, in :mod:`fl.aggregation.secure_sum`: this library imports neither torch nor ``fl``.
"""
from __future__ import annotations

from .client import ClientStage, SecAggClient
from .driver import STEPS, DropoutPlan, RoundReport, run_round
from .errors import (
    AuthenticationFailed,
    ConfigError,
    DecodeError,
    DropoutBudgetExceeded,
    InconsistentView,
    MalformedMessage,
    NonCanonicalEncoding,
    NonFiniteInput,
    OutOfOrder,
    OversizedMessage,
    ProtocolViolation,
    RefusedRequest,
    ReplayedMessage,
    SecAggError,
    TooFewSurvivors,
    TruncatedMessage,
    UnusableKey,
    UnrecoverableSecret,
    DealerFault,
    Equivocation,
)
from .params import GRINDING_BITS, P256_ORDER, GraphChoice, SecAggParams, default_threshold, secagg_plus_parameters
from .server import SecAggServer, ServerStage, SumResult

__all__ = [
    "SecAggParams", "GraphChoice", "secagg_plus_parameters", "default_threshold", "P256_ORDER", "GRINDING_BITS",
    "SecAggClient", "ClientStage", "SecAggServer", "ServerStage", "SumResult",
    "run_round", "DropoutPlan", "RoundReport", "STEPS",
    "SecAggError", "ConfigError", "DecodeError", "MalformedMessage", "TruncatedMessage", "OversizedMessage",
    "NonCanonicalEncoding", "ReplayedMessage", "AuthenticationFailed", "ProtocolViolation", "OutOfOrder",
    "RefusedRequest", "TooFewSurvivors", "InconsistentView", "DropoutBudgetExceeded", "NonFiniteInput", "UnusableKey",
    "UnrecoverableSecret", "DealerFault", "Equivocation",
]

