"""Norm-bound zero-knowledge proofs on petlib: Pedersen commitments, Bulletproofs, norm proofs.

The cryptographic core (this package's top-level API):

* :mod:`rangeproof.group` -- P-256, canonical encodings, multi-exponentiation (:func:`msm`);
* :mod:`rangeproof.generators` -- nothing-up-my-sleeve generators (:func:`generators`);
* :mod:`rangeproof.transcript` -- Fiat-Shamir transcripts (:class:`Transcript`);
* :mod:`rangeproof.pedersen` -- Pedersen commitments (:func:`commit`, :func:`vector_commit`);
* :mod:`rangeproof.inner_product` -- the inner-product argument (:class:`InnerProductProof`);
* :mod:`rangeproof.range_proof` -- aggregated range proofs (:class:`RangeProof`);
* :mod:`rangeproof.batch_verify` -- batched verification (:func:`verify_range_proofs`).

All errors are :class:`ProofError` subclasses (:mod:`rangeproof.errors`). The maths is written
down in ``docs/bulletproofs.md``.
"""
from .batch_verify import invalid_range_proofs, verify_range_proofs
from .errors import EncodingError, ProofError, ProvingError, VerificationError
from .generators import generators, pedersen_bases
from .group import (
    ORDER,
    curve,
    msm,
    point_from_bytes,
    point_to_bytes,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)
from .inner_product import InnerProductProof
from .pedersen import commit, vector_commit
from .range_proof import RangeProof
from .transcript import Transcript

__all__ = [
    "ProofError",
    "EncodingError",
    "VerificationError",
    "ProvingError",
    "ORDER",
    "curve",
    "msm",
    "point_to_bytes",
    "point_from_bytes",
    "scalar_to_bytes",
    "scalar_from_bytes",
    "random_scalar",
    "generators",
    "pedersen_bases",
    "Transcript",
    "commit",
    "vector_commit",
    "InnerProductProof",
    "RangeProof",
    "verify_range_proofs",
    "invalid_range_proofs",
]
