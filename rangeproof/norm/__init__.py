"""Norm-bound proofs for a committed integer vector (L2 and L-infinity, both exact).

Public API:

* :class:`NormStatement` -- round, client, dimension, norm, bound, scale;
* :func:`commit_vector` -- the client's commitment ``C = <x, G> + r B~``;
* :func:`commit_and_prove` (the client's entry point), :func:`prove`, :func:`verify`, :func:`verify_batch`, :func:`proof_from_bytes`;
* :func:`l2_params`, :func:`linf_params` -- derived parameters and soundness.

The maths and the soundness argument are in ``docs/proofs.md``.
"""
from .batch import NormProof, commit_and_prove, proof_from_bytes, prove, verify, verify_batch
from .commitment import commit_vector, vector_generators
from .l2 import L2Proof
from .linf import LinfProof
from .params import L2Params, LinfParams, l2_params, linf_params
from .statement import NORMS, PROTOCOL_VERSION, NormStatement

__all__ = [
    "NormStatement",
    "NORMS",
    "PROTOCOL_VERSION",
    "commit_vector",
    "vector_generators",
    "prove",
    "commit_and_prove",
    "verify",
    "verify_batch",
    "proof_from_bytes",
    "NormProof",
    "L2Proof",
    "LinfProof",
    "L2Params",
    "LinfParams",
    "l2_params",
    "linf_params",
]
