"""Decoders fail closed on arbitrary bytes: EncodingError or a valid object, nothing else."""
from hypothesis import given, settings
from hypothesis import strategies as st

from rangeproof import EncodingError, InnerProductProof, RangeProof
from rangeproof.group import (
    point_from_bytes,
    point_from_bytes_compact,
    point_to_bytes,
    point_to_bytes_compact,
    scalar_from_bytes,
    scalar_to_bytes,
)

DECODERS = [
    (point_from_bytes, point_to_bytes),
    (point_from_bytes_compact, point_to_bytes_compact),
    (scalar_from_bytes, scalar_to_bytes),
    (RangeProof.from_bytes, RangeProof.to_bytes),
    (RangeProof.from_bytes_compact, RangeProof.to_bytes_compact),
    (InnerProductProof.from_bytes, InnerProductProof.to_bytes),
    (InnerProductProof.from_bytes_compact, InnerProductProof.to_bytes_compact),
]

# Lengths near the valid ones make the decoders reach their inner checks.
_LENGTHS = st.sampled_from([0, 1, 31, 32, 33, 64, 65, 66, 130, 194, 420, 490, 810, 1000])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), which=st.integers(0, len(DECODERS) - 1))
def test_random_bytes_fail_closed(data, which):
    length = data.draw(_LENGTHS)
    prefix = data.draw(st.sampled_from([b"", b"\x02", b"\x03", b"\x04"]))
    blob = (prefix + data.draw(st.binary(min_size=length, max_size=length)))[:max(length, 1)]
    decode, encode = DECODERS[which]
    try:
        obj = decode(blob)
    except EncodingError:
        return
    # Whatever decodes must re-encode to the same bytes (one encoding per object).
    assert encode(obj) == blob
