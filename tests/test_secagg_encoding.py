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
    SHARE_BLOB_BYTES,
    SHARE_CIPHERTEXT_BYTES,
    AdvertiseKeys,
    ConsistencyRequest,
    ConsistencySignature,
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
from secagg.shamir import SHARE_PRIME

R = bytes(range(16))
K1, K2, SIG = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 64
CT = bytes([4]) * SHARE_BLOB_BYTES

SAMPLES = {
    "advertise": AdvertiseKeys(R, 3, K1, K2, SIG),
    "advertise-unsigned": AdvertiseKeys(R, 3, K1, K2),
    "broadcast": KeysBroadcast(R, 2, (PeerKeys(1, K1, K2, SIG), PeerKeys(2, K2, K1, SIG), PeerKeys(7, K1, K1))),
    "share-keys": ShareKeys(R, 1, bytes(32), ((2, CT), (5, CT))),
    "delivery": SharesDelivery(R, 2, ((1, CT), (3, CT))),
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
    for pos, value, exc in [(0, ord("X"), MalformedMessage), (3, 2, MalformedMessage), (4, 99, MalformedMessage)]:
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
    bad = good[:2] + good[2:5] + SHARE_PRIME.to_bytes(33, "big") + good[5 + 33 :]
    with pytest.raises(NonCanonicalEncoding):
        decode_message(_with_body(resp, bad))
    bad = good[:4] + b"\x07" + good[5:]
    with pytest.raises(MalformedMessage):
        decode_message(_with_body(resp, bad))
    # unmask response naming one peer twice (both kinds)
    body = struct.pack(">H", 2) + struct.pack(">HB", 3, 1) + bytes(33) + struct.pack(">HB", 3, 2) + bytes(33)
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
