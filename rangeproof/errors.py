"""The exceptions of :mod:`rangeproof`: one base class, one subclass per kind of failure.

Every error the package raises on purpose is a :class:`ProofError`. Callers that only need to
know "this input is not acceptable" catch :class:`ProofError`; callers that must tell a peer's
malformed message from a proof that does not hold catch the subclasses.
"""
from __future__ import annotations

from .blame import SabreError

__all__ = ["ProofError", "EncodingError", "VerificationError", "ProvingError"]


class ProofError(SabreError):
    """Base class of every error raised by :mod:`rangeproof`."""


class EncodingError(ProofError):
    """Bytes that do not decode to a valid object.

    Raised for a wrong length, a bad prefix byte, a point that is not on the curve, the identity
    point where it is not allowed, a non-canonical encoding (for example a scalar >= q, or a
    coordinate >= p), or a count field out of range.
    """


class VerificationError(ProofError):
    """A proof, a commitment or a transcript check did not verify.

    There is deliberately one type and one generic message: the error does not say which
    equation broke, so a failed verification leaks nothing about the secret side.
    """

    def __init__(self, message: str = "proof verification failed"):
        super().__init__(message)


class ProvingError(ProofError):
    """The honest prover refuses its input (a value out of range, mismatched lengths, ...).

    The message says what is wrong with the input; no proof is produced.
    """
