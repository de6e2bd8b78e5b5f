"""The exceptions of :mod:`secagg`: one base class, one subclass per way a round can go wrong.

Every check in the package raises one of these; none of them is ever logged and ignored. A method
that raises leaves the object it was called on exactly as it was before the call.
"""
from __future__ import annotations

from rangeproof.blame import ConfigError, InvalidUpdate, RoundFailed, SabreError

__all__ = [
    "SecAggError",
    "ConfigError",
    "NonFiniteInput",
    "DecodeError",
    "MalformedMessage",
    "TruncatedMessage",
    "OversizedMessage",
    "NonCanonicalEncoding",
    "ReplayedMessage",
    "AuthenticationFailed",
    "ProtocolViolation",
    "OutOfOrder",
    "UnusableKey",
    "Equivocation",
    "RefusedRequest",
    "TooFewSurvivors",
    "InconsistentView",
    "DropoutBudgetExceeded",
    "UnrecoverableSecret",
    "DealerFault",
]


class SecAggError(SabreError):
    """Base class of every error raised by :mod:`secagg` (except :class:`ConfigError`, the
    project's one class for refused parameter choices)."""


class NonFiniteInput(SecAggError, InvalidUpdate, ValueError):
    """A client's input holds NaN or an infinity: it has no fixed-point value (refused, not clipped).

    Attributes:
      count: how many coordinates are not finite.
    """

    def __init__(self, count: int, detail: str = "", *, blamed=()):
        text = f"{count} coordinate(s) of the input are NaN or infinite"
        super().__init__(text + (f" ({detail})" if detail else ""), blamed=blamed)
        self.count = count


class DecodeError(SecAggError):
    """Bytes that are not a valid encoding of the expected message."""


class MalformedMessage(DecodeError):
    """Wrong magic, version, type tag, field value, or a message that does not fit the round."""


class TruncatedMessage(DecodeError):
    """The input ended before the message did."""


class OversizedMessage(DecodeError):
    """A length or count field, or the input itself, exceeds the limits of the codec or round."""


class NonCanonicalEncoding(DecodeError):
    """A valid-looking encoding that is not the unique canonical one (order, range, padding)."""


class ReplayedMessage(SecAggError):
    """A message already received in this step, or one that belongs to another round."""


class AuthenticationFailed(SecAggError):
    """A signature or an AES-GCM tag did not verify (tampering or wrong keys)."""


class ProtocolViolation(SecAggError):
    """A message that is well formed but breaks a protocol rule (sender, set sizes, keys)."""


class UnusableKey(ProtocolViolation):
    """A public key that cannot serve: an X25519 key of small order (all-zero shared secret with
    every peer), or a P-256 encoding that is not a curve point.

    Attributes:
      client: the client whose key it is.
    """

    def __init__(self, client: int, detail: str = "of small order"):
        text = f"client {client}'s public key is unusable"
        super().__init__(text + (f" ({detail})" if detail else ""), blamed=(client,))
        self.client = client


class Equivocation(ProtocolViolation):
    """Active variant: a dealer signed two different commitment vectors in one round.

    The server sees every ``ShareKeys``; two valid signatures of one dealer over different
    commitments prove the dealer at fault (``blamed``, reason ``"equivocation"``).
    """


class OutOfOrder(ProtocolViolation):
    """A protocol step invoked in the wrong state (twice, or before the step it depends on)."""


class RefusedRequest(ProtocolViolation):
    """An honest client refuses an unmasking request that would reveal more than it may.

    The standard case: the server asks for the mask-key share and the self-mask share of the
    same peer, which together would unmask that peer's input.
    """


class TooFewSurvivors(SecAggError):
    """Fewer than the threshold ``t`` of clients (or of a client's neighbours) remain.

    Attributes:
      step: the protocol step at which the count fell short.
      have: how many remained.
      need: the threshold.
    """

    def __init__(self, step: str, have: int, need: int, detail: str = "", *, blamed=()):
        text = f"{step}: {have} client(s) remain, the threshold is {need}"
        super().__init__(text + (f" ({detail})" if detail else ""), blamed=blamed)
        self.step = step
        self.have = have
        self.need = need


class InconsistentView(ProtocolViolation):
    """Active variant: the consistency check shows the server gave clients different views."""


class DropoutBudgetExceeded(RefusedRequest):
    """An honest client refuses to go on: more clients are missing than the parameters assumed.

    Raised when the clients missing from the survivor set (dropped or excluded) exceed the
    round's ``dropout_budget`` (scope ``"round"``) or, among the client's own share holders, its
    ``neighbour_dropout_budget`` (scope ``"neighbourhood"``). No share is revealed.

    Attributes:
      scope: ``"round"`` or ``"neighbourhood"``.
      missing: how many clients are missing.
      budget: the budget.
    """

    def __init__(self, scope: str, missing: int, budget: int, detail: str = "", *, blamed=()):
        text = f"{missing} client(s) missing in the {scope}, the dropout budget is {budget}"
        super().__init__(text + (f" ({detail})" if detail else ""), blamed=blamed)
        self.scope = scope
        self.missing = missing
        self.budget = budget


class UnrecoverableSecret(TooFewSurvivors, RoundFailed):
    """Unmasking: a secret the sum needs has fewer than ``t`` shares that pass their commitments.

    The round fails closed (no sum): fewer than ``t`` holders answered honestly, so the secret
    cannot be rebuilt. A :class:`TooFewSurvivors` (step ``"unmask"``) and a
    :class:`~rangeproof.blame.RoundFailed` (reason ``"too_few_valid_shares"``); ``blamed`` names
    the holders whose shares of it differed from their commitments (empty when it fell short by
    dropouts alone).

    Attributes:
      client: whose secret it is.
      kind: ``"self_mask"`` or ``"mask_key"``.
    """

    def __init__(self, client: int, kind: str, have: int, need: int, *, blamed=()):
        text = (f"unmask: {have} valid share(s) of client {client}'s {kind.replace('_', '-')} secret, "
                f"the threshold is {need}")
        SabreError.__init__(self, text, blamed=blamed, reason="too_few_valid_shares")
        self.step, self.have, self.need = "unmask", have, need
        self.client, self.kind = client, kind


class DealerFault(SecAggError, RoundFailed):
    """Unmasking: ``t`` shares that each pass the dealer's Feldman commitments rebuild a secret
    whose commitment is not the dealer's ``C_0`` (its public key ``s^PK``, or ``b G``).

    Since the Feldman sharing of issue 11 this cannot happen (shares that pass lie on the
    committed polynomial; a dealer off its polynomial is disputed at receipt and excluded before
    masking); the check stays so that the round fails closed if the arithmetic were ever wrong.
    Every share used passed the dealer's commitments, so the dealer is blamed (``blamed ==
    (client,)``, reason ``"dealer_fault"``); rebuilding its other secret to exclude it would need
    honest holders to reveal both secrets of one client, which they refuse.

    Attributes:
      client: the dealer.
      kind: ``"self_mask"`` or ``"mask_key"``.
    """

    def __init__(self, client: int, kind: str):
        text = f"unmask: client {client}'s committed shares of its {kind.replace('_', '-')} secret do not rebuild it"
        SabreError.__init__(self, text, blamed=(client,), reason="dealer_fault")
        self.client, self.kind = client, kind
