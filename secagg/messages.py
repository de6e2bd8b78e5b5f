"""The protocol's typed messages and their one canonical binary encoding (version 2).

Each message is a frozen dataclass with ``encode() -> bytes`` and ``decode(data)``; the common
header and the field rules are in :mod:`secagg.encoding`, and every layout is listed in
``docs/secagg.md#wire-encoding``. ``party`` in the header is the sender for client -> server
messages and the receiver for server -> client messages.

========  =====================  ===================  ============================================
type      message                direction            body after the header
========  =====================  ===================  ============================================
1         AdvertiseKeys          client -> server     c_pk 32 | s_pk 33 | sig flag u8 | [sig 64]
2         KeysBroadcast          server -> client     u16 n | n x (id u16, c_pk, s_pk, flag, [sig])
3         ShareKeys              client -> server     commitments | flag, [sig] | u16 n | n x (to u16, ct 84)
4         SharesDelivery         server -> client     u16 n | n x (from u16, ct 84, commitments, flag, [sig])
5         MaskedInput            client -> server     k u8 | u32 d | d words | u16 m | m x 32 bytes
6         ConsistencyRequest     server -> client     ids (u16 n | n x u16)
7         ConsistencySignature   client -> server     sig 64
8         UnmaskRequest          server -> client     survivors ids | dropped ids | u16 n | n x (id, sig)
9         UnmaskResponse         client -> server     u16 n | n x (peer u16, kind u8, share 33)
10        SharesReceipt          client -> server     disputed ids (u16 n | n x u16)
11        MaskRequest            server -> client     excluded ids (u16 n | n x u16)
========  =====================  ===================  ============================================

``commitments`` is a dealer's Feldman commitments, ``u16 t | 2t x 33`` (compressed P-256 points,
:class:`secagg.vss.Commitments`); ``s_pk`` is a compressed P-256 point, ``c_pk`` an X25519 key.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from .encoding import HEADER_BYTES, MAGIC, VERSION, Reader, Writer, check_ids
from .errors import MalformedMessage, NonCanonicalEncoding, OversizedMessage
from .keys import (
    MASK_PUBLIC_KEY_BYTES,
    PUBLIC_KEY_BYTES,
    SHARE_CIPHERTEXT_OVERHEAD,
    SIGNATURE_BYTES,
    is_canonical_mask_public_key,
    is_canonical_public_key,
)
from .params import MAX_CLIENTS, MAX_DIM, MAX_FIELD_DIM
from .prg import ring_dtype
from .shamir import SHARE_BYTES, SHARE_PRIME
from .vss import POINT_BYTES, Commitments

__all__ = [
    "ROUND_ID_BYTES",
    "SHARE_PLAINTEXT_BYTES",
    "SHARE_CIPHERTEXT_BYTES",
    "SELF_MASK_SHARE",
    "MASK_KEY_SHARE",
    "AdvertiseKeys",
    "PeerKeys",
    "KeysBroadcast",
    "ShareKeys",
    "DealerCommitments",
    "SharesDelivery",
    "MaskedInput",
    "ConsistencyRequest",
    "ConsistencySignature",
    "UnmaskRequest",
    "UnmaskResponse",
    "SharesReceipt",
    "MaskRequest",
    "decode_message",
    "MESSAGE_TYPES",
]

ROUND_ID_BYTES = 16
#: share bundle plaintext: sender u16 | receiver u16 | mask-key share 33 | self-mask share 33
SHARE_PLAINTEXT_BYTES = 2 + 2 + 2 * SHARE_BYTES
#: one entry of ``ShareKeys``/``SharesDelivery``: the AES-GCM ciphertext of the share bundle
SHARE_CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + SHARE_CIPHERTEXT_OVERHEAD
#: share kinds in an UnmaskResponse
SELF_MASK_SHARE = 1
MASK_KEY_SHARE = 2
_FIELD_BYTES = 32


def _header(w: Writer, type_: int, round_id: bytes, party: int) -> Writer:
    if len(round_id) != ROUND_ID_BYTES:
        raise ValueError("round_id: expected 16 bytes")
    if not 1 <= party <= MAX_CLIENTS:
        raise ValueError(f"party: expected 1..{MAX_CLIENTS}, got {party}")
    return w.raw(MAGIC).u8(VERSION).u8(type_).raw(round_id).u16(party)


def _read_header(r: Reader, type_: int) -> tuple[bytes, int]:
    if r.remaining < HEADER_BYTES:
        r.raw(HEADER_BYTES)  # raises TruncatedMessage
    if r.raw(3) != MAGIC:
        raise MalformedMessage("bad magic")
    if (v := r.u8()) != VERSION:
        raise MalformedMessage(f"unsupported version {v}")
    if (t := r.u8()) != type_:
        raise MalformedMessage(f"expected message type {type_}, got {t}")
    round_id = r.raw(ROUND_ID_BYTES)
    party = r.u16()
    if party == 0:
        raise MalformedMessage("party id 0 is not a client")
    return round_id, party


def _write_sig(w: Writer, sig: bytes) -> None:
    if sig and len(sig) != SIGNATURE_BYTES:
        raise ValueError("signature: expected 0 or 64 bytes")
    w.u8(1 if sig else 0).raw(sig)


def _read_sig(r: Reader) -> bytes:
    flag = r.u8()
    if flag == 0:
        return b""
    if flag != 1:
        raise NonCanonicalEncoding("signature flag must be 0 or 1")
    return r.raw(SIGNATURE_BYTES)


def _write_ids(w: Writer, ids: tuple[int, ...], what: str) -> None:
    check_ids(tuple(ids), what)
    w.u16(len(ids))
    for i in ids:
        w.u16(i)


def _write_commitments(w: Writer, c: Commitments) -> None:
    if not isinstance(c, Commitments):
        raise ValueError("commitments: expected a secagg.vss.Commitments")
    w.u16(c.threshold).raw(c.encoded)


def _read_commitments(r: Reader, threshold: int | None = None) -> Commitments:
    """``u16 t | 2t x 33``: every point checked (canonical compressed, on the curve, not the identity).

    With ``threshold`` (the round's t) a vector of any other length is refused from its count,
    before a single point is read: decoding a point costs a square root, so an oversized vector
    would cost its receiver CPU time in proportion to its length.
    """
    t = r.count(2, MAX_CLIENTS, 2 * POINT_BYTES, "commitments")
    if threshold is not None and t != threshold:
        raise MalformedMessage(f"commitments: {t} points per polynomial, the round's threshold is {threshold}")
    return Commitments.decode(r.raw(2 * t * POINT_BYTES), t)


def _write_blobs(w: Writer, items: tuple[tuple[int, bytes], ...], size: int, what: str) -> None:
    """``u16 n | n x (id u16, blob of `size` bytes)``, ids strictly increasing."""
    check_ids(tuple(i for i, _ in items), what)
    w.u16(len(items))
    for i, blob in items:
        if len(blob) != size:
            raise ValueError(f"{what}: expected {size}-byte entries")
        w.u16(i).raw(blob)


def _read_blobs(r: Reader, size: int, what: str) -> tuple[tuple[int, bytes], ...]:
    """Inverse of :func:`_write_blobs` (count checked before anything is read)."""
    n = r.count(2, MAX_CLIENTS, 2 + size, what)
    items = tuple((r.u16(), r.raw(size)) for _ in range(n))
    check_ids(tuple(i for i, _ in items), what)
    return items


class _Message:
    TYPE: ClassVar[int]

    def encode(self) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def size(self) -> int:
        """Bytes of the encoding (what this message costs on the wire)."""
        return len(self.encode())


@dataclasses.dataclass(frozen=True)
class AdvertiseKeys(_Message):
    """Step 0, client -> server: the round's X25519 ``c_pk`` and P-256 ``s_pk`` (and, active, a signature)."""

    TYPE: ClassVar[int] = 1
    round_id: bytes
    sender: int
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.sender).raw(self.c_pk).raw(self.s_pk)
        _write_sig(w, self.signature)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "AdvertiseKeys":
        r = Reader(data)
        round_id, sender = _read_header(r, cls.TYPE)
        c_pk, s_pk = _read_public_key(r), _read_mask_public_key(r)
        sig = _read_sig(r)
        r.finish()
        return cls(round_id, sender, c_pk, s_pk, sig)


def _read_public_key(r: Reader) -> bytes:
    """An X25519 public key in its canonical encoding (u < p, so bit 255 clear), else refused."""
    pk = r.raw(PUBLIC_KEY_BYTES)
    if not is_canonical_public_key(pk):
        raise NonCanonicalEncoding("X25519 public key: bit 255 set or u >= p")
    return pk


def _read_mask_public_key(r: Reader) -> bytes:
    """A P-256 public key in its one accepted form (33-byte compressed, x < p), else refused.
    Whether it is a curve point is checked where it is used (:func:`secagg.keys.check_mask_public_key`)."""
    pk = r.raw(MASK_PUBLIC_KEY_BYTES)
    if not is_canonical_mask_public_key(pk):
        raise NonCanonicalEncoding("P-256 public key: not a compressed point (prefix 0x02/0x03) with x < p")
    return pk


@dataclasses.dataclass(frozen=True)
class PeerKeys:
    """One client's advertised keys, as forwarded by the server."""

    client: int
    c_pk: bytes
    s_pk: bytes
    signature: bytes = b""


@dataclasses.dataclass(frozen=True)
class KeysBroadcast(_Message):
    """Step 0, server -> client: the keys of the client's neighbours that advertised (U1)."""

    TYPE: ClassVar[int] = 2
    round_id: bytes
    receiver: int
    peers: tuple[PeerKeys, ...]

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.receiver)
        check_ids(tuple(p.client for p in self.peers), "peers")
        w.u16(len(self.peers))
        for p in self.peers:
            w.u16(p.client).raw(p.c_pk).raw(p.s_pk)
            _write_sig(w, p.signature)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "KeysBroadcast":
        r = Reader(data)
        round_id, receiver = _read_header(r, cls.TYPE)
        n = r.count(2, MAX_CLIENTS, 2 + PUBLIC_KEY_BYTES + MASK_PUBLIC_KEY_BYTES + 1, "peers")
        peers = []
        for _ in range(n):
            client = r.u16()
            c_pk, s_pk = _read_public_key(r), _read_mask_public_key(r)
            peers.append(PeerKeys(client, c_pk, s_pk, _read_sig(r)))
        r.finish()
        check_ids(tuple(p.client for p in peers), "peers")
        return cls(round_id, receiver, tuple(peers))


@dataclasses.dataclass(frozen=True)
class ShareKeys(_Message):
    """Step 1, client -> server: the dealer's Feldman commitments (signed in the active variant)
    and an encrypted share bundle for each neighbour.

    ``commitments`` holds ``t`` points for the polynomial of ``s^SK`` (its constant term must be
    the advertised ``s_pk``) and ``t`` for that of the self-mask seed ``b``; the server checks the
    reconstructed secrets against the constant terms, each holder its shares against all of them.
    """

    TYPE: ClassVar[int] = 3
    round_id: bytes
    sender: int
    commitments: Commitments
    ciphertexts: tuple[tuple[int, bytes], ...]
    signature: bytes = b""

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.sender)
        _write_commitments(w, self.commitments)
        _write_sig(w, self.signature)
        _write_blobs(w, self.ciphertexts, SHARE_CIPHERTEXT_BYTES, "ciphertexts")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes, threshold: int | None = None) -> "ShareKeys":
        """``threshold``: the round's t, checked before any commitment is decoded."""
        r = Reader(data)
        round_id, sender = _read_header(r, cls.TYPE)
        commitments = _read_commitments(r, threshold)
        sig = _read_sig(r)
        cts = _read_blobs(r, SHARE_CIPHERTEXT_BYTES, "ciphertexts")
        r.finish()
        return cls(round_id, sender, commitments, cts, sig)


@dataclasses.dataclass(frozen=True)
class DealerCommitments:
    """One dealer's commitments and signature, as forwarded by the server in ``SharesDelivery``."""

    dealer: int
    commitments: Commitments
    signature: bytes = b""


@dataclasses.dataclass(frozen=True)
class SharesDelivery(_Message):
    """Step 1, server -> client: the ciphertexts addressed to the client, by sender (U2), each
    with its sender's commitments (``dealers``, in the same order)."""

    TYPE: ClassVar[int] = 4
    round_id: bytes
    receiver: int
    ciphertexts: tuple[tuple[int, bytes], ...]
    dealers: tuple[DealerCommitments, ...] = ()

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.receiver)
        ids = tuple(i for i, _ in self.ciphertexts)
        check_ids(ids, "ciphertexts")
        if tuple(d.dealer for d in self.dealers) != ids:
            raise ValueError("dealers: expected one entry per ciphertext, in the same order")
        w.u16(len(ids))
        for (i, ct), d in zip(self.ciphertexts, self.dealers):
            if len(ct) != SHARE_CIPHERTEXT_BYTES:
                raise ValueError(f"ciphertexts: expected {SHARE_CIPHERTEXT_BYTES}-byte entries")
            w.u16(i).raw(ct)
            _write_commitments(w, d.commitments)
            _write_sig(w, d.signature)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes, threshold: int | None = None) -> "SharesDelivery":
        """``threshold``: the round's t, checked before any commitment is decoded."""
        r = Reader(data)
        round_id, receiver = _read_header(r, cls.TYPE)
        n = r.count(2, MAX_CLIENTS, 2 + SHARE_CIPHERTEXT_BYTES + 2 + 1, "ciphertexts")
        cts, dealers = [], []
        for _ in range(n):
            i, ct = r.u16(), r.raw(SHARE_CIPHERTEXT_BYTES)
            cts.append((i, ct))
            dealers.append(DealerCommitments(i, _read_commitments(r, threshold), _read_sig(r)))
        r.finish()
        check_ids(tuple(i for i, _ in cts), "ciphertexts")
        return cls(round_id, receiver, tuple(cts), tuple(dealers))


@dataclasses.dataclass(frozen=True, eq=False)
class MaskedInput(_Message):
    """Step 2, client -> server: the masked vector over Z_(2^k) and the masked side vector."""

    TYPE: ClassVar[int] = 5
    round_id: bytes
    sender: int
    mask_bits: int
    vector: np.ndarray
    field_vector: tuple[int, ...] = ()

    def encode(self) -> bytes:
        dtype = ring_dtype(self.mask_bits)
        v = np.ascontiguousarray(self.vector, dtype=dtype)
        if v.ndim != 1 or v.size > MAX_DIM:
            raise ValueError("vector: expected a 1-D array within MAX_DIM")
        w = _header(Writer(), self.TYPE, self.round_id, self.sender).u8(self.mask_bits).u32(v.size).raw(v.data)
        w.u16(len(self.field_vector))
        for x in self.field_vector:
            w.uint(x, _FIELD_BYTES)
        return w.getvalue()

    @property
    def size(self) -> int:
        return HEADER_BYTES + 1 + 4 + self.vector.size * ring_dtype(self.mask_bits).itemsize + 2 + _FIELD_BYTES * len(self.field_vector)

    @classmethod
    def decode(cls, data: bytes) -> "MaskedInput":
        r = Reader(data)
        round_id, sender = _read_header(r, cls.TYPE)
        k = r.u8()
        if not 1 <= k <= 64:
            raise MalformedMessage(f"mask_bits {k} out of range")
        dtype = ring_dtype(k)
        d = r.count(4, MAX_DIM, dtype.itemsize, "vector")
        vec = r.words(d, dtype, k)
        m = r.count(2, MAX_FIELD_DIM, _FIELD_BYTES, "field_vector")
        field = tuple(r.uint(_FIELD_BYTES, 1 << 256, "field element") for _ in range(m))
        r.finish()
        return cls(round_id, sender, k, vec, field)


@dataclasses.dataclass(frozen=True)
class ConsistencyRequest(_Message):
    """Step 3 (active), server -> client: the set U3 of clients whose masked inputs arrived."""

    TYPE: ClassVar[int] = 6
    round_id: bytes
    receiver: int
    survivors: tuple[int, ...]

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.receiver)
        _write_ids(w, self.survivors, "survivors")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "ConsistencyRequest":
        r = Reader(data)
        round_id, receiver = _read_header(r, cls.TYPE)
        ids = r.ids(MAX_CLIENTS, "survivors")
        r.finish()
        return cls(round_id, receiver, ids)


@dataclasses.dataclass(frozen=True)
class ConsistencySignature(_Message):
    """Step 3 (active), client -> server: the client's signature over (round id, U3)."""

    TYPE: ClassVar[int] = 7
    round_id: bytes
    sender: int
    signature: bytes

    def encode(self) -> bytes:
        if len(self.signature) != SIGNATURE_BYTES:
            raise ValueError("signature: expected 64 bytes")
        return _header(Writer(), self.TYPE, self.round_id, self.sender).raw(self.signature).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "ConsistencySignature":
        r = Reader(data)
        round_id, sender = _read_header(r, cls.TYPE)
        sig = r.raw(SIGNATURE_BYTES)
        r.finish()
        return cls(round_id, sender, sig)


@dataclasses.dataclass(frozen=True)
class UnmaskRequest(_Message):
    """Step 4, server -> client: survivors (send self-mask shares) and dropped (mask-key shares).

    In the active variant ``signatures`` holds the consistency signatures of U4 over U3.
    """

    TYPE: ClassVar[int] = 8
    round_id: bytes
    receiver: int
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    signatures: tuple[tuple[int, bytes], ...] = ()

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.receiver)
        _write_ids(w, self.survivors, "survivors")
        _write_ids(w, self.dropped, "dropped")
        _write_blobs(w, self.signatures, SIGNATURE_BYTES, "signatures")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "UnmaskRequest":
        r = Reader(data)
        round_id, receiver = _read_header(r, cls.TYPE)
        survivors = r.ids(MAX_CLIENTS, "survivors")
        dropped = r.ids(MAX_CLIENTS, "dropped")
        sigs = _read_blobs(r, SIGNATURE_BYTES, "signatures")
        r.finish()
        return cls(round_id, receiver, survivors, dropped, sigs)


@dataclasses.dataclass(frozen=True)
class UnmaskResponse(_Message):
    """Step 4, client -> server: one share per requested peer, ``(peer, kind, value)``.

    ``kind`` is :data:`SELF_MASK_SHARE` (a share of ``b_peer``) or :data:`MASK_KEY_SHARE` (a
    share of the peer's P-256 mask key). Peers are strictly increasing, so a peer appears once.
    """

    TYPE: ClassVar[int] = 9
    round_id: bytes
    sender: int
    shares: tuple[tuple[int, int, int], ...]

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.sender)
        check_ids(tuple(p for p, _, _ in self.shares), "shares")
        w.u16(len(self.shares))
        for peer, kind, value in self.shares:
            w.u16(peer).u8(kind).uint(value, SHARE_BYTES)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "UnmaskResponse":
        r = Reader(data)
        round_id, sender = _read_header(r, cls.TYPE)
        n = r.count(2, MAX_CLIENTS, 3 + SHARE_BYTES, "shares")
        shares = []
        for _ in range(n):
            peer, kind = r.u16(), r.u8()
            if kind not in (SELF_MASK_SHARE, MASK_KEY_SHARE):
                raise MalformedMessage(f"unknown share kind {kind}")
            shares.append((peer, kind, r.uint(SHARE_BYTES, SHARE_PRIME, "share")))
        r.finish()
        check_ids(tuple(p for p, _, _ in shares), "shares")
        return cls(round_id, sender, tuple(shares))


@dataclasses.dataclass(frozen=True)
class SharesReceipt(_Message):
    """Step 2a, client -> server: the dealers whose share bundles failed this client's checks.

    Sent after the client has opened its ``SharesDelivery`` and before it masks anything, so that
    the server can leave out a dealer with fewer than t undisputed holders before anyone masks
    with it (``docs/secagg.md``, "Exclude, don't abort").
    """

    TYPE: ClassVar[int] = 10
    round_id: bytes
    sender: int
    disputed: tuple[int, ...]

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.sender)
        _write_ids(w, self.disputed, "disputed")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "SharesReceipt":
        r = Reader(data)
        round_id, sender = _read_header(r, cls.TYPE)
        ids = r.ids(MAX_CLIENTS, "disputed")
        r.finish()
        return cls(round_id, sender, ids)


@dataclasses.dataclass(frozen=True)
class MaskRequest(_Message):
    """Step 2b, server -> client: mask now, leaving out these dealers (excluded before masking)."""

    TYPE: ClassVar[int] = 11
    round_id: bytes
    receiver: int
    excluded: tuple[int, ...]

    def encode(self) -> bytes:
        w = _header(Writer(), self.TYPE, self.round_id, self.receiver)
        _write_ids(w, self.excluded, "excluded")
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> "MaskRequest":
        r = Reader(data)
        round_id, receiver = _read_header(r, cls.TYPE)
        ids = r.ids(MAX_CLIENTS, "excluded")
        r.finish()
        return cls(round_id, receiver, ids)


MESSAGE_TYPES: dict[int, type] = {
    c.TYPE: c
    for c in (
        AdvertiseKeys,
        KeysBroadcast,
        ShareKeys,
        SharesDelivery,
        MaskedInput,
        ConsistencyRequest,
        ConsistencySignature,
        UnmaskRequest,
        UnmaskResponse,
        SharesReceipt,
        MaskRequest,
    )
}


def decode_message(data: bytes, max_bytes: int | None = None, *, threshold: int | None = None):
    """Decode any message by its type tag.

    Args:
      data: the encoding.
      max_bytes: reject longer input before parsing (:class:`OversizedMessage`); a transport
        passes the step's bound (:func:`secagg.protocol.max_frame_bytes`).
      threshold: the round's t: a commitment vector of another length is refused
        (:class:`MalformedMessage`) before any of its points is decoded.

    Raises:
      DecodeError: see :mod:`secagg.errors`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"expected bytes, got {type(data).__name__}")
    if max_bytes is not None and len(data) > max_bytes:
        raise OversizedMessage(f"{len(data)} bytes exceed the limit of {max_bytes}")
    if len(data) < HEADER_BYTES:
        Reader(data).raw(HEADER_BYTES)
    if bytes(data[:3]) != MAGIC:
        raise MalformedMessage("bad magic")
    cls = MESSAGE_TYPES.get(data[4])
    if cls is None:
        raise MalformedMessage(f"unknown message type {data[4]}")
    if threshold is not None and cls in (ShareKeys, SharesDelivery):
        return cls.decode(data, threshold)
    return cls.decode(data)
