"""The wire codec: round trips, byte counts, and every decoder rejecting bad input."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.encoding import HEADER_BYTES
from secagg.errors import (
    DecodeError,
    MalformedMessage,
    NonCanonicalEncoding,
    OversizedMessage,
    TruncatedMessage,
)
from secagg.messages import (
    MASK_KEY_SHARE,
    MESSAGE_TYPES,
    SELF_MASK_SHARE,
    SHARE_CIPHERTEXT_BYTES,
    AdvertiseKeys,
    ConsistencyRequest,
    ConsistencySignature,
    DealerCommitments,
    KeysBroadcast,
    MaskedInput,
    PeerKeys,
    MaskRequest,
    SharesDelivery,
    SharesReceipt,
    ShareKeys,
    UnmaskRequest,
    UnmaskResponse,
    decode_message,
)
from secagg.keys import MaskKey
from secagg.shamir import SHARE_PRIME
from secagg.vss import Commitments, commit_polynomial

R = bytes(range(16))
K1, K2, SIG = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 64
S1, S2 = MaskKey(5).public_bytes, MaskKey(7).public_bytes  # P-256 mask keys (33 bytes, compressed)
CT = bytes([4]) * SHARE_CIPHERTEXT_BYTES
COMMITS = Commitments.from_points(commit_polynomial([5, 11]), commit_polynomial([9, 13]))  # t = 2

SAMPLES = {
    "advertise": AdvertiseKeys(R, 3, K1, S1, SIG),
    "advertise-unsigned": AdvertiseKeys(R, 3, K1, S1),
    "broadcast": KeysBroadcast(R, 2, (PeerKeys(1, K1, S2, SIG), PeerKeys(2, K2, S1, SIG), PeerKeys(7, K1, S1))),
    "share-keys": ShareKeys(R, 1, COMMITS, ((2, CT), (5, CT)), SIG),
    "share-keys-unsigned": ShareKeys(R, 1, COMMITS, ((2, CT), (5, CT))),
    "delivery": SharesDelivery(R, 2, ((1, CT), (3, CT)), (DealerCommitments(1, COMMITS, SIG), DealerCommitments(3, COMMITS))),
    "masked-k32": MaskedInput(R, 4, 32, np.arange(10, dtype=np.uint32), (5, 2**255)),
    "masked-k12": MaskedInput(R, 4, 12, np.arange(10, dtype=np.uint32) * 400),
    "masked-k64": MaskedInput(R, 4, 64, np.array([2**64 - 1, 0], dtype=np.uint64)),
    "consistency-req": ConsistencyRequest(R, 2, (1, 2, 5)),
    "consistency-sig": ConsistencySignature(R, 2, SIG),
    "unmask-req": UnmaskRequest(R, 2, (1, 2, 5), (3,), ((1, SIG), (2, SIG))),
    "unmask-resp": UnmaskResponse(R, 2, ((1, SELF_MASK_SHARE, 7), (3, MASK_KEY_SHARE, SHARE_PRIME - 1))),
    "receipt": SharesReceipt(R, 4, (1, 3)),
    "receipt-empty": SharesReceipt(R, 4, ()),
    "mask-req": MaskRequest(R, 2, (5,)),
}


def _eq(a, b):
    if isinstance(a, MaskedInput):
        return (a.round_id, a.sender, a.mask_bits, a.field_vector) == (b.round_id, b.sender, b.mask_bits, b.field_vector) \
            and np.array_equal(a.vector, b.vector)
    return a == b


@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip_and_size(name):
    msg = SAMPLES[name]
    data = msg.encode()
    assert _eq(type(msg).decode(data), msg) and _eq(decode_message(data), msg)
    assert msg.size == len(data)
    assert decode_message(data).encode() == data  # canonical: one encoding per message


@pytest.mark.parametrize("name", SAMPLES)
def test_every_truncation_rejected(name):
    data = SAMPLES[name].encode()
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode_message(data[:cut])
    with pytest.raises(TruncatedMessage):
        decode_message(data[: len(data) - 1])


@pytest.mark.parametrize("name", SAMPLES)
def test_trailing_bytes_and_limits_rejected(name):
    data = SAMPLES[name].encode()
    with pytest.raises(OversizedMessage):
        decode_message(data + b"\x00")
    with pytest.raises(OversizedMessage):
        decode_message(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize("name", SAMPLES)
def test_header_checked(name):
    data = bytearray(SAMPLES[name].encode())
    for pos, value, exc in [(0, ord("X"), MalformedMessage), (3, 1, MalformedMessage), (3, 3, MalformedMessage), (4, 99, MalformedMessage)]:
        bad = bytearray(data)
        bad[pos] = value
        with pytest.raises(exc):
            decode_message(bytes(bad))
    # the wrong decoder for the type tag
    other = next(c for t, c in MESSAGE_TYPES.items() if t != data[4])
    with pytest.raises(MalformedMessage):
        other.decode(bytes(data))
    # party id 0
    bad = bytearray(data)
    bad[HEADER_BYTES - 2 : HEADER_BYTES] = b"\x00\x00"
    with pytest.raises(MalformedMessage):
        decode_message(bytes(bad))


def _body(msg) -> bytes:
    return msg.encode()[HEADER_BYTES:]


def _with_body(msg, body: bytes) -> bytes:
    return msg.encode()[:HEADER_BYTES] + body


def test_non_canonical_inputs_rejected():
    # unsorted / repeated ids
    req = SAMPLES["consistency-req"]
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(req, struct.pack(">H3H", 3, 1, 5, 2)))
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(req, struct.pack(">H2H", 2, 4, 4)))
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(req, struct.pack(">H2H", 2, 0, 4)))
    # signature flag other than 0/1
    adv = SAMPLES["advertise-unsigned"]
    body = bytearray(_body(adv))
    body[-1] = 2
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(adv, bytes(body)))
    # a coordinate >= 2^k
    m = SAMPLES["masked-k12"]
    body = bytearray(_body(m))
    body[1 + 4 : 1 + 4 + 4] = struct.pack("<I", 1 << 12)
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(m, bytes(body)))
    # k out of range
    body = bytearray(_body(m))
    body[0] = 65
    with pytest.raises(MalformedMessage):
        decode_message(_with_body(m, bytes(body)))
    # share value >= p and unknown share kind
    resp = SAMPLES["unmask-resp"]
    good = _body(resp)
    bad = good[:2] + good[2:5] + SHARE_PRIME.to_bytes(32, "big") + good[5 + 32 :]
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(resp, bad))
    bad = good[:4] + b"\x07" + good[5:]
    with pytest.raises(MalformedMessage):
        decode_message(_with_body(resp, bad))
    # unmask response naming one peer twice (both kinds)
    body = struct.pack(">H", 2) + struct.pack(">HB", 3, 1) + bytes(32) + struct.pack(">HB", 3, 2) + bytes(32)
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(resp, body))


def test_oversized_counts_rejected_before_allocation():
    m = SAMPLES["masked-k32"]
    body = bytearray(_body(m))
    body[1:5] = struct.pack(">I", (1 << 28) + 1)
    with pytest.raises(OversizedMessage):
        decode_message(_with_body(m, bytes(body)))
    body[1:5] = struct.pack(">I", 1 << 27)  # within the limit but longer than the input
    with pytest.raises(TruncatedMessage):
        decode_message(_with_body(m, bytes(body)))
    d = SAMPLES["delivery"]
    with pytest.raises(TruncatedMessage):
        decode_message(_with_body(d, struct.pack(">H", 65535) + _body(d)[2:]))


def test_encoder_refuses_non_canonical_values():
    with pytest.raises(NonCanonicalEncoding):
        ConsistencyRequest(R, 1, (2, 1)).encode()
    with pytest.raises(ValueError):
        AdvertiseKeys(R, 0, K1, K2).encode()


@settings(max_examples=20, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data):
    try:
        decode_message(data)
    except DecodeError:
        pass


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_bit_flips_never_crash_the_decoder(name, data):
    raw = bytearray(SAMPLES[name].encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    try:
        msg = decode_message(bytes(raw))
    except DecodeError:
        return
    assert msg.encode() == bytes(raw)  # whatever decodes re-encodes to the same bytes


# -- Feldman commitments and P-256 keys on the wire (issue 11, dealer fault) ----------------------

_P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF


def _share_keys_with(commit_bytes: bytes, t: int) -> bytes:
    """A ShareKeys encoding whose commitments section is ``u16 t | commit_bytes``."""
    m = SAMPLES["share-keys-unsigned"]
    body = _body(m)
    rest = body[2 + len(COMMITS.encoded):]
    return _with_body(m, struct.pack(">H", t) + commit_bytes + rest)


def test_commitment_encodings_refused_with_typed_errors():
    good = COMMITS.encoded
    assert ShareKeys.decode(_share_keys_with(good, 2)) == SAMPLES["share-keys-unsigned"]
    x_not_on_curve = next(bytes([2]) + x.to_bytes(32, "big") for x in range(1, 100)
                          if _invalid_x(x))
    cases = {
        "wrong length (one point short)": (good[:-33], 2, DecodeError),
        "t = 0": (b"", 0, MalformedMessage),
        "uncompressed prefix": (bytes([4]) + good[1:], 2, NonCanonicalEncoding),
        "hybrid prefix": (bytes([6]) + good[1:], 2, NonCanonicalEncoding),
        "identity (all zero)": (bytes(33) + good[33:], 2, NonCanonicalEncoding),
        "x >= p": (bytes([2]) + _P256_P.to_bytes(32, "big") + good[33:], 2, NonCanonicalEncoding),
        "x + p does not fit": (bytes([3]) + (2**256 - 1).to_bytes(32, "big") + good[33:], 2, NonCanonicalEncoding),
        "not a curve point": (x_not_on_curve + good[33:], 2, MalformedMessage),
    }
    for name, (data, t, exc) in cases.items():
        with pytest.raises(exc):
            decode_message(_share_keys_with(data, t))
    # a wrong count: more points announced than sent (the reader runs into the ciphertexts), or
    # more than the whole input holds
    with pytest.raises(DecodeError):
        decode_message(_share_keys_with(good, 3))
    with pytest.raises(TruncatedMessage):
        decode_message(_share_keys_with(good, 200))


def _invalid_x(x: int) -> bool:
    rhs = (x ** 3 - 3 * x + 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B) % _P256_P
    return pow(rhs, (_P256_P - 1) // 2, _P256_P) == _P256_P - 1  # a non-residue: no y


def test_p256_mask_key_encodings_refused():
    adv = SAMPLES["advertise-unsigned"]
    body = _body(adv)
    wide = MaskKey(5)._key.public_key().public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.X962,
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["PublicFormat"]).PublicFormat.UncompressedPoint)
    for bad_key in (bytes(33), bytes([4]) + S1[1:], bytes([2]) + _P256_P.to_bytes(32, "big")):
        with pytest.raises(NonCanonicalEncoding):
            decode_message(_with_body(adv, body[:32] + bad_key + body[65:]))
    # the uncompressed form (65 bytes) does not fit the field: the message does not parse
    with pytest.raises(DecodeError):
        decode_message(_with_body(adv, body[:32] + wide + body[65:]))
