"""The norm-bound pipeline stage: clip, quantize, commit, prove; verify, exclude, bind.

Where it sits. The commitment must be to *the exact integer vector that gets masked*, so this
stage does its own fixed-point quantization and sits **directly above the sum** (secure or
plain); nothing between it and the sum may change the vector::

    MeanStage(weighting="uniform" | "fixed")
      NormProofStage(bound=M, norm, scale)      <- client: clip to M, x = trunc(scale * v), commit, prove
        SecureSum (or ExactIntegerSum)          <- sums x and the blindings r (a field vector)

Client half (honest): clip the float update to ``M`` (L2: rescale; L-infinity: clamp), quantize
with truncation toward zero (``|trunc(s v_j)| <= s |v_j|``, so the integer vector is within
``ceil(s M)`` in L2 and ``floor(s M)`` in L-infinity), commit ``C = <x, G> + r B~``, prove the
bound, and attach ``extras["norm_proof"] = {"commitment", "proof"}`` (bytes) and
``extras["field_vector"] = [r]`` (summed over the group order by the secure sum).

Server half: verify every proof (batched, :func:`rangeproof.norm.verify_batch`), mark the
clients whose proofs fail with ``extras["secagg_exclude"]`` so that the secure sum treats them
as dropouts before unmasking (a round that still sums one of them fails closed), and after the
sum check
``sum_c C_c == <X, G> + R B~`` over the survivors (:mod:`rangeproof.binding`). A failed binding
check fails the round closed: ``RoundFailed("binding_failed")``, and an event is recorded.

The fast twin (``secure=False``) makes the same decisions without cryptography. It models a
commitment by a SHA-256 digest of the committed integer vector and an opening nonce
(:func:`plain_commitment`; the nonce plays the blinding's part) and a
proof by what it attests: the digest of the vector it was made for and whether that vector was
within the bound. The server accepts a client when its "proof" attests its commitment and the
bound; after the sum, the binding check compares each survivor's vector with its commitment.
So a client that attaches a proof made for another vector is excluded, and one that masks a
vector other than the committed one fails the round, in both modes. Both proofs are exact
(``docs/proofs.md``): the twin's test, ``sum_j x_j^2 <= M^2`` or ``|x_j| <= M``, is the very
statement a real proof establishes, so the two modes accept and reject the same clients.

Integration with :mod:`secagg`: ``fl.aggregation.secure_sum.SecureSum`` (signed int64 inputs give the signed
sum; ``field_sum`` carries the modular sum of ``extras["field_vector"]``; the exclusion mark makes
a client a dropout before unmasking) is the inner sum; :class:`ExactIntegerSum` is the plaintext
reference with the same contract. The secure sum's modulus ``2^k`` must exceed twice the largest
possible sum, ``2 N s M``: choose ``scale <= (2^(k-1) - 1) / (N M)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from typing import Sequence

import numpy as np

from rangeproof.binding import BindingError, check_binding
from rangeproof.errors import EncodingError
from rangeproof.group import ORDER, point_from_bytes, point_to_bytes
from rangeproof.norm import NormStatement, commit_and_prove, verify_batch
from rangeproof.norm.fixed_point import clip_and_quantize, integer_bound
from rangeproof.norm.l2 import exact_square_norm
from rangeproof.norm.params import l2_params, linf_params

from .base import AggregateResult, Aggregator, ClientMessage, RoundContext, RoundFailed, Stage, screen

__all__ = ["NormProofStage", "ExactIntegerSum", "FieldSumResult", "integer_bound", "clip_and_quantize",
           "plain_commitment"]

EXTRA_KEY = "norm_proof"
FIELD_KEY = "field_vector"
EXCLUDE_KEY = "secagg_exclude"  # fl.aggregation.secure_sum.EXCLUDE_KEY: a dropout before unmasking


@dataclasses.dataclass
class FieldSumResult(AggregateResult):
    """An :class:`AggregateResult` that also carries the modular sum of the field vectors."""

    field_sum: list[int] = dataclasses.field(default_factory=list)


def _payload_ok(m: ClientMessage, dim: int, width: int) -> bool:
    """Whether ``m`` masks a signed integer vector of length ``dim`` (at most 64-bit entries, as
    every honest client's ``int64``) and exactly ``width`` field entries, each an int in ``[0, q)``
    (none at all when ``width`` is 0)."""
    v = m.vector
    if not (type(v) is np.ndarray and v.shape == (dim,) and v.dtype.kind == "i" and v.dtype.itemsize <= 8):
        return False
    fv = m.extras.get(FIELD_KEY)
    if width == 0:
        return fv is None
    return (type(fv) in (list, tuple) and len(fv) == width
            and all(type(e) is int and 0 <= e < ORDER for e in fv))


class ExactIntegerSum(Aggregator):
    """Plaintext reference sum: exact over the integers, plus the field vectors mod q.

    It is the plaintext stand-in for the secure sum under :class:`NormProofStage` (for the fast
    twin and for tests); it returns an int64 vector and ``field_sum``, and, like
    ``fl.aggregation.secure_sum.SecureSum``, leaves out messages marked ``extras["secagg_exclude"]``.
    """

    name = "exact_integer_sum"

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> FieldSumResult:
        if not messages:
            raise RoundFailed("no_clients", "no client message reached the server")
        rejected = {m.client_id: f"excluded: {m.extras[EXCLUDE_KEY]}" for m in messages if EXCLUDE_KEY in m.extras}
        messages = [m for m in messages if EXCLUDE_KEY not in m.extras]
        if not messages:
            raise RoundFailed("no_clients", "every client was excluded before the sum")
        d = messages[0].vector.shape
        total = np.zeros(d, dtype=np.int64)
        width = len(messages[0].extras.get(FIELD_KEY, []))
        field = [0] * width
        for m in messages:
            if m.vector.shape != d or m.vector.dtype.kind not in "iu":
                raise ValueError(f"client {m.client_id}: expected an integer vector of shape {d}")
            total += m.vector.astype(np.int64)
            fv = m.extras.get(FIELD_KEY, [])
            if len(fv) != width:
                raise ValueError(f"client {m.client_id}: field vector of length {len(fv)}, expected {width}")
            field = [(a + int(b)) % ORDER for a, b in zip(field, fv)]
        return FieldSumResult(vector=total, included=[m.client_id for m in messages],
                              weight_total=float(sum(m.weight for m in messages)), rejected=rejected,
                              field_sum=field)

    def __repr__(self) -> str:
        return "ExactIntegerSum()"


def plain_commitment(x: np.ndarray, opening: bytes) -> bytes:
    """The fast twin's stand-in for a commitment to ``x``: SHA-256 of ``opening`` and the int64 bytes.

    ``opening`` plays the blinding's part: two commitments to the same vector differ, so a proof
    made for one commitment never fits another, as with Pedersen commitments.
    """
    return hashlib.sha256(bytes(opening) + np.ascontiguousarray(x, dtype=np.int64).tobytes()).digest()


class NormProofStage(Stage):
    """Norm bound with zero-knowledge proofs (``secure=True``) or its plaintext twin.

    Args:
      inner: the sum below (a secure sum, or :class:`ExactIntegerSum`).
      bound: the bound ``M`` on the float update.
      norm: ``"l2"`` or ``"linf"``.
      scale: fixed-point scale ``s`` (integers are ``trunc(s v)``).
      secure: prove and verify (True), or decide in plaintext (False).
    """

    name = "norm_proof"

    def __init__(self, inner: Aggregator, *, bound: float, norm: str = "l2", scale: float,
                 secure: bool = True):
        super().__init__(inner)
        if norm not in ("l2", "linf"):
            raise ValueError(f"NormProofStage: norm must be 'l2' or 'linf', got {norm!r}")
        if not (bound > 0 and math.isfinite(bound)) or not (scale > 0 and math.isfinite(scale)):
            raise ValueError("NormProofStage: bound and scale must be positive and finite")
        self.bound = float(bound)
        self.norm = norm
        self.scale = float(scale)
        self.secure = bool(secure)
        self.int_bound = integer_bound(bound, scale, norm)

    def check_dimension(self, dim: int) -> None:
        """Refuse, before any round, a dimension the proofs cannot handle (both modes alike).

        Raises:
          ValueError: an L-infinity bound over more coordinates than one proof supports, or an
            L2 bound too large for the proof's range proofs at this dimension.
        """
        if self.norm == "linf":
            linf_params(int(dim), self.int_bound)
        else:
            l2_params(int(dim), self.int_bound)

    def statement(self, ctx: RoundContext, client_id: int) -> NormStatement:
        """The public statement of ``client_id`` in this round."""
        session = ctx.derive_seed("norm_proof_session").to_bytes(8, "big")
        return NormStatement(round_id=ctx.round_index, client_id=client_id, dim=ctx.dim,
                             norm=self.norm, bound=self.int_bound, scale=self.scale,
                             session=session)

    # --- client half -----------------------------------------------------------------------

    def client(self, message: ClientMessage, ctx: RoundContext) -> ClientMessage:
        x = clip_and_quantize(message.vector, self.bound, self.scale, self.norm)
        return self.commit_and_prove(message, x, ctx)

    def commit_and_prove(self, message: ClientMessage, x: np.ndarray, ctx: RoundContext
                         ) -> ClientMessage:
        """Attaches commitment and proof for the integer vector ``x`` and sets it as the payload.

        A cheating client's adversary may call this with one vector and then replace
        ``vector`` with another; the binding check catches that.
        """
        extras = dict(message.extras)
        if self.secure:
            C, r, proof = commit_and_prove(self.statement(ctx, message.client_id), x)
            extras[EXTRA_KEY] = {"commitment": point_to_bytes(C), "proof": proof.to_bytes()}
            extras[FIELD_KEY] = [r]
        else:
            opening = ctx.derive_seed("norm_commitment", message.client_id).to_bytes(8, "little")
            digest = plain_commitment(x, opening)
            # the twin's "proof" is the committed vector itself: the server decides the bound on
            # it, as a real proof exists exactly for committed vectors within the bound
            extras[EXTRA_KEY] = {"commitment": digest, "opening": opening,
                                 "proof": {"attests": digest, "vector": x}}
        return message.replace(vector=x, extras=extras)

    # --- server half -----------------------------------------------------------------------

    def aggregate(self, messages: Sequence[ClientMessage], ctx: RoundContext) -> AggregateResult:
        # a client whose update cannot be quantized (not finite) sends nothing: it is left out
        prepared, unsent = screen(messages, ctx, self.name, lambda m: self.run_client(m, ctx))
        rejected: dict[int, str] = {}
        survivors: list[ClientMessage] = []
        commitments = {}
        start = time.perf_counter()
        if self.secure:
            items, owners = [], []
            for m in prepared:
                try:
                    blob = m.extras[EXTRA_KEY]
                    C = point_from_bytes(blob["commitment"])
                    proof = blob["proof"]
                    if not isinstance(proof, (bytes, bytearray)):  # never a client's object
                        raise TypeError("the proof must be bytes")
                except (KeyError, TypeError, EncodingError):
                    rejected[m.client_id] = "norm_proof_missing_or_malformed"
                    continue
                items.append((self.statement(ctx, m.client_id), C, proof))
                owners.append(m)
                commitments[m.client_id] = C
            for m, good in zip(owners, verify_batch(items)):
                if good:
                    survivors.append(m)
                else:
                    rejected[m.client_id] = "norm_proof_failed"
            ctx.record("norm_proof_verify_s", time.perf_counter() - start)
        else:
            for m in prepared:
                blob = m.extras.get(EXTRA_KEY)
                proof = blob.get("proof") if isinstance(blob, dict) else None
                if not isinstance(proof, dict) or not isinstance(blob.get("commitment"), bytes) \
                        or not isinstance(blob.get("opening"), bytes):
                    rejected[m.client_id] = "norm_proof_missing_or_malformed"
                elif self._plain_proof_ok(proof, blob, ctx.dim):
                    survivors.append(m)
                    commitments[m.client_id] = (blob["commitment"], blob["opening"])
                else:
                    rejected[m.client_id] = "norm_proof_failed"
        # what a verified client masks must be a payload the sum below can take: its vector an
        # integer vector of the statement's length and, under real proofs, its field vector the
        # one blinding in [0, q). Anything else is that client's fault: it is excluded like a
        # failed proof, never left to abort the round inside the sum.
        width = 1 if self.secure else 0
        for m in [m for m in survivors if not _payload_ok(m, ctx.dim, width)]:
            survivors.remove(m)
            commitments.pop(m.client_id, None)
            rejected[m.client_id] = "malformed_payload"
        for cid, why in rejected.items():
            ctx.events.append(f"round {ctx.round_index}: client {cid} excluded before unmasking ({why})")
        ctx.record("norm_proof_rejected", len(rejected))
        if not survivors:
            raise RoundFailed("no_clients", "every client failed the norm-bound check")
        # Failing clients still take part in the protocol up to their masked input and are then
        # treated as dropouts before unmasking (secagg's exclusion mark). Their payload is never
        # unmasked, so it is replaced by a well-formed zero input (a malformed one must not be
        # able to abort the round).
        marked = [m if m.client_id not in rejected else
                  m.replace(vector=np.zeros(ctx.dim, dtype=np.int64),
                            extras={FIELD_KEY: [0] * width, EXCLUDE_KEY: rejected[m.client_id]})
                  for m in prepared]
        result = self.inner.aggregate(marked, ctx)
        leaked = sorted(set(result.included) & set(rejected))
        if leaked:
            ctx.events.append(f"round {ctx.round_index}: excluded clients {leaked} were summed; round discarded")
            raise RoundFailed("binding_failed", f"the inner sum included excluded clients {leaked}")
        if self.secure:
            self._check_binding(result, commitments, ctx)
        else:
            self._check_plain_binding(result, commitments, {m.client_id: m.vector for m in survivors}, ctx)
        result = result.replace(vector=(np.asarray(result.vector, dtype=np.float64) / self.scale)
                                .astype(np.float32))
        result.rejected.update(rejected)
        result.rejected.update(unsent)
        return result

    def _plain_proof_ok(self, proof: dict, blob: dict, dim: int) -> bool:
        """The twin's verification: the proof attests this commitment, opens it, and the vector
        it opens to is within the bound (decided here, never taken from the client)."""
        x = proof.get("vector")
        return (isinstance(x, np.ndarray) and proof.get("attests") == blob["commitment"]
                and self._plain_ok(x, dim)
                and plain_commitment(x, blob["opening"]) == blob["commitment"])

    def _plain_ok(self, x: np.ndarray, dim: int) -> bool:
        """Whether the integer vector ``x`` is within the bound, decided exactly.

        Nothing is cast or passed through ``abs`` first (``abs`` wraps at ``INT64_MIN``, a cast
        to int64 wraps large ``uint64``): L-infinity compares ``x.max()`` and ``x.min()`` as
        Python ints, L2 uses :func:`rangeproof.norm.l2.exact_square_norm`.
        """
        if x.shape != (dim,) or x.dtype.kind not in "iu":
            return False
        B = self.int_bound
        if self.norm == "l2":
            return exact_square_norm(x) <= B * B
        return not x.size or (int(x.max()) <= B and int(x.min()) >= -B)

    def _check_plain_binding(self, result: AggregateResult, commitments: dict, summed: dict,
                             ctx: RoundContext) -> None:
        """The twin's binding check: every summed vector is the committed one."""
        # a client the inner sum included without a verified commitment fails it too (as in
        # _check_binding, where the KeyError is caught), rather than escaping as a KeyError
        if any(c not in commitments or plain_commitment(summed[c], commitments[c][1]) != commitments[c][0]
               for c in result.included):
            ctx.events.append(f"round {ctx.round_index}: binding check failed (the aggregate is not the sum "
                              "of the committed vectors); round discarded")
            ctx.record("binding_failed", 1.0)
            raise RoundFailed("binding_failed", "the aggregate is not the sum of the committed vectors")
        ctx.record("binding_failed", 0.0)

    def _check_binding(self, result: AggregateResult, commitments: dict, ctx: RoundContext) -> None:
        field = getattr(result, "field_sum", None)
        try:
            if not field:
                raise BindingError("the inner sum did not return the summed blindings (field_sum)")
            check_binding([commitments[c] for c in result.included], np.asarray(result.vector),
                          int(field[0]), dim=ctx.dim)
        except (BindingError, KeyError) as exc:
            ctx.events.append(f"round {ctx.round_index}: binding check failed ({exc}); round discarded")
            ctx.record("binding_failed", 1.0)
            raise RoundFailed("binding_failed",
                              "the secure aggregate is not the sum of the committed vectors") from exc
        ctx.record("binding_failed", 0.0)

    def __repr__(self) -> str:
        return (f"NormProofStage(bound={self.bound}, norm={self.norm!r}, scale={self.scale}, "
                f"secure={self.secure})")
