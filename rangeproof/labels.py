"""The one registry of domain-separation labels for sabre's cryptography (``rangeproof`` and ``secagg``).

Every label that separates one use of a hash, a KDF, a PRG or a transcript from another is
written here and nowhere else: transcript labels and protocol names, key-derivation ``info``
strings, hash-to-curve list names, hash-commitment prefixes. Each has the form ::

    sabre/<component>/<name>/v<N>

and names its version, so a change of derivation is a change of label, and anything made under
the old derivation stops verifying under the new one. :func:`registry` lists them all; the tests
check that they are distinct, that none is a prefix of another (so a label followed by data is
never a different label followed by other data), and that no other module of the two packages
writes a ``sabre/`` label of its own.

Not here: the names of records *inside* a transcript that is already domain-separated by a label
below (``b"A"``, ``b"gamma"``, ``b"C_z"``, ...). They name the symbols of the equations in
``docs/bulletproofs.md`` and ``docs/proofs.md`` and stay next to the code that absorbs them.

``secagg`` imports this module (``rangeproof`` needs nothing of ``secagg``); it holds constants
only.
"""
from __future__ import annotations

__all__ = [
    "registry",
    # rangeproof
    "TRANSCRIPT",
    "GENERATORS",
    "PEDERSEN_BASES",
    "RANGE_G",
    "RANGE_H",
    "RANGE_PROOF",
    "INNER_PRODUCT",
    "NORM_TRANSCRIPT",
    "NORM_STATEMENT",
    "NORM_VECTOR_G",
    "NORM_PROJECTION_KEY",
    "NORM_LINEAR_FORM",
    "NORM_LINEAR",
    "NORM_LINEAR_SPLIT",
    # secagg
    "SECAGG_PAIRWISE_MASK",
    "SECAGG_SELF_MASK",
    "SECAGG_SHARE_ENCRYPTION",
    "SECAGG_SHARE_AD",
    "SECAGG_ADVERTISE",
    "SECAGG_CONSISTENCY",
    "SECAGG_SHARE_COMMITMENTS",
    "SECAGG_GRAPH_PERMUTATION",
    "SECAGG_GRAPH_SEED",
    "SECAGG_RING_POSITION",
    "SECAGG_SEEDED_RANDOM",
    "SECAGG_ROUND_ID",
]

_REGISTRY: dict[str, bytes] = {}


def _label(name: str, component: str, what: str, version: int) -> bytes:
    value = f"sabre/{component}/{what}/v{version}".encode("ascii")
    _REGISTRY[name] = value
    return value


# --- rangeproof --------------------------------------------------------------------------------

TRANSCRIPT = _label("TRANSCRIPT", "rangeproof", "transcript", 2)
"""First bytes absorbed by every Fiat-Shamir transcript (:mod:`rangeproof.transcript`)."""

GENERATORS = _label("GENERATORS", "rangeproof", "generators", 2)
"""Hash-to-curve domain of every generator list (:mod:`rangeproof.generators`)."""

PEDERSEN_BASES = _label("PEDERSEN_BASES", "rangeproof", "pedersen-bases", 2)
"""The list whose first two points are the Pedersen bases ``B, B~``."""

RANGE_G = _label("RANGE_G", "rangeproof", "range-G", 2)
"""The range proof's vector generators ``G``."""

RANGE_H = _label("RANGE_H", "rangeproof", "range-H", 2)
"""The range proof's vector generators ``H``."""

RANGE_PROOF = _label("RANGE_PROOF", "rangeproof", "range-proof", 2)
"""Protocol name of the aggregated range proof (``n`` and ``m`` bound with it)."""

INNER_PRODUCT = _label("INNER_PRODUCT", "rangeproof", "inner-product", 2)
"""Protocol name of the inner-product argument (``n`` bound with it)."""

NORM_TRANSCRIPT = _label("NORM_TRANSCRIPT", "rangeproof", "norm-proof", 3)
"""Outermost transcript label of a norm proof."""

NORM_STATEMENT = _label("NORM_STATEMENT", "rangeproof", "norm-statement", 3)
"""Protocol name under which a norm proof's whole public statement is bound."""

NORM_VECTOR_G = _label("NORM_VECTOR_G", "rangeproof", "norm-vector-G", 2)
"""The ``d`` vector generators of the client's commitment ``C = <x, G> + r B~``."""

NORM_PROJECTION_KEY = _label("NORM_PROJECTION_KEY", "rangeproof", "norm-projection-key", 2)
"""HKDF ``info`` prefix deriving the AES key of the projection matrix from its challenge."""

NORM_LINEAR_FORM = _label("NORM_LINEAR_FORM", "rangeproof", "norm-linear-form", 2)
"""Protocol name of the linear-form argument (``d`` bound with it)."""

NORM_LINEAR = _label("NORM_LINEAR", "rangeproof", "norm-linear", 2)
"""Protocol name of one power-of-two chunk of the norm-linear argument (its index, offset and
size bound with it)."""

NORM_LINEAR_SPLIT = _label("NORM_LINEAR_SPLIT", "rangeproof", "norm-linear-split", 1)
"""Protocol name of the norm-linear argument's split of ``C``, ``Y`` and ``C_S`` into chunks
(``d`` and the chunk layout bound with it)."""

# --- secagg ------------------------------------------------------------------------------------

SECAGG_PAIRWISE_MASK = _label("SECAGG_PAIRWISE_MASK", "secagg", "pairwise-mask", 3)
"""HKDF purpose: the mask keys of a pair ``{u, v}`` from their P-256 ECDH secret (v2: X25519)."""

SECAGG_SELF_MASK = _label("SECAGG_SELF_MASK", "secagg", "self-mask", 2)
"""HKDF purpose: a client's self-mask keys from its seed ``b_u``."""

SECAGG_SHARE_ENCRYPTION = _label("SECAGG_SHARE_ENCRYPTION", "secagg", "share-encryption", 2)
"""HKDF purpose: the AES-256-GCM key of a pair's share bundles."""

SECAGG_SHARE_AD = _label("SECAGG_SHARE_AD", "secagg", "share-ciphertext", 2)
"""Associated-data prefix of the encrypted share bundles."""

SECAGG_ADVERTISE = _label("SECAGG_ADVERTISE", "secagg", "advertise-keys", 3)
"""What a client signs over its advertised keys (active variant; v3: a 33-byte P-256 mask key)."""

SECAGG_CONSISTENCY = _label("SECAGG_CONSISTENCY", "secagg", "consistency-check", 2)
"""What a client signs over the survivor set and the graph seed (active variant)."""

SECAGG_SHARE_COMMITMENTS = _label("SECAGG_SHARE_COMMITMENTS", "secagg", "share-commitments", 1)
"""What a dealer signs over its Feldman commitments (active variant). Replaces the hash
commitments to single shares and to the self-mask seed (``share-commitment/v1``,
``self-mask-commitment/v2``), which the Feldman commitments made redundant."""

SECAGG_GRAPH_PERMUTATION = _label("SECAGG_GRAPH_PERMUTATION", "secagg", "graph-permutation", 2)
"""Seed prefix of the semi-honest SecAgg+ ring order (from the round id)."""

SECAGG_GRAPH_SEED = _label("SECAGG_GRAPH_SEED", "secagg", "graph-seed", 2)
"""Hash prefix of the active variant's graph seed (over every advertised key; v2: 33-byte mask keys)."""

SECAGG_RING_POSITION = _label("SECAGG_RING_POSITION", "secagg", "ring-position", 1)
"""Hash prefix of a client's ring position (graph seed and verify key, active variant)."""

SECAGG_SEEDED_RANDOM = _label("SECAGG_SEEDED_RANDOM", "secagg", "seeded-random", 2)
"""Key derivation of the seeded (replayable, never secret) random source."""

SECAGG_ROUND_ID = _label("SECAGG_ROUND_ID", "secagg", "round-id", 2)
"""Derivation of a simulated round's id from the run seed."""


def registry() -> dict[str, bytes]:
    """Every label above, by name (a copy)."""
    return dict(_REGISTRY)
