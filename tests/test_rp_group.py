"""Group layer: canonical encodings, strict decoding, multi-exponentiation, scalar helpers."""
import random

import pytest
from petlib.bn import Bn

from rangeproof import EncodingError, ProofError
from rangeproof.group import (
    ORDER,
    batch_inverse,
    curve,
    identity,
    msm,
    point_from_bytes,
    point_from_bytes_compact,
    point_to_bytes,
    point_to_bytes_compact,
    random_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
)

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1


def test_curve_is_p256():
    assert curve().nid() == 415
    assert ORDER == P256_ORDER


def _point(k):
    return msm([k], [curve().generator()])


def test_point_round_trip_both_encodings():
    for k in (1, 2, 12345, ORDER - 1):
        P = _point(k)
        wide = point_to_bytes(P)
        compact = point_to_bytes_compact(P)
        assert len(wide) == 65 and wide[0] == 4
        assert len(compact) == 33 and compact[0] in (2, 3)
        assert point_from_bytes(wide) == P
        assert point_from_bytes_compact(compact) == P


def test_identity_only_where_allowed():
    O = identity()
    assert point_to_bytes(O) == bytes(65)
    assert point_to_bytes_compact(O) == bytes(33)
    with pytest.raises(EncodingError):
        point_from_bytes(bytes(65))
    with pytest.raises(EncodingError):
        point_from_bytes_compact(bytes(33))
    assert point_from_bytes(bytes(65), allow_identity=True).is_infinite()
    assert point_from_bytes_compact(bytes(33), allow_identity=True).is_infinite()
    # OpenSSL's own one-byte identity encoding is not ours.
    with pytest.raises(EncodingError):
        point_from_bytes(b"\x00", allow_identity=True)


@pytest.mark.parametrize("mutate", [
    lambda b: b[:-1],                              # truncated
    lambda b: b + b"\x00",                         # extended
    lambda b: b"\x06" + b[1:],                     # hybrid encoding prefix
    lambda b: b"\x02" + b[1:],                     # compressed prefix on a 65-byte string
    lambda b: b[:-1] + bytes([b[-1] ^ 1]),         # y changed: off the curve
    lambda b: b"\x04" + P256_P.to_bytes(32, "big") + b[33:],   # x = p, not reduced
    lambda b: b"\x04" + bytes(64),                 # (0, 0) is not on the curve
    lambda b: "not bytes",
])
def test_wide_decoding_rejects(mutate):
    with pytest.raises(EncodingError):
        point_from_bytes(mutate(point_to_bytes(_point(7))))


def test_wide_decoding_rejects_unreduced_y():
    P = _point(99)
    b = point_to_bytes(P)
    y = int.from_bytes(b[33:], "big")
    if y + P256_P < 2**256:
        with pytest.raises(EncodingError):
            point_from_bytes(b[:33] + (y + P256_P).to_bytes(32, "big"))


@pytest.mark.parametrize("mutate", [
    lambda b: b[:-1],
    lambda b: b + b"\x00",
    lambda b: b"\x04" + b[1:],
    lambda b: b"\x05" + b[1:],
    lambda b: b[:1] + P256_P.to_bytes(32, "big"),  # x = p
    lambda b: b[:1] + (2**256 - 1).to_bytes(32, "big"),
])
def test_compact_decoding_rejects(mutate):
    with pytest.raises(EncodingError):
        point_from_bytes_compact(mutate(point_to_bytes_compact(_point(7))))


P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


def test_compact_decoding_rejects_x_not_on_curve():
    # x with x^3 - 3x + b a non-residue mod p (Euler's criterion) has no curve point.
    x = next(x for x in range(1, 100)
             if pow((x**3 - 3 * x + P256_B) % P256_P, (P256_P - 1) // 2, P256_P) == P256_P - 1)
    with pytest.raises(EncodingError):
        point_from_bytes_compact(b"\x02" + x.to_bytes(32, "big"))


def test_scalar_encoding():
    for s in (0, 1, ORDER - 1):
        assert scalar_from_bytes(scalar_to_bytes(s)) == s
    assert scalar_to_bytes(ORDER + 5) == scalar_to_bytes(5)
    assert scalar_to_bytes(-1) == scalar_to_bytes(ORDER - 1)
    for bad in (ORDER.to_bytes(32, "big"), (2**256 - 1).to_bytes(32, "big"), bytes(31),
                bytes(33), b""):
        with pytest.raises(EncodingError):
            scalar_from_bytes(bad)


def test_errors_share_the_base_class():
    with pytest.raises(ProofError):
        scalar_from_bytes(bytes(3))


def test_msm_matches_sum_of_products():
    rng = random.Random(0)
    g = curve().generator()
    ks = [rng.randrange(ORDER) for _ in range(5)]
    Ps = [_point(k) for k in ks]
    ws = [rng.randrange(-ORDER, 2 * ORDER) for _ in range(5)]
    expected = _point(sum(w * k for w, k in zip(ws, ks)) % ORDER)
    assert msm(ws, Ps) == expected
    assert msm([], []).is_infinite()
    assert msm([ORDER], [g]).is_infinite()
    with pytest.raises(ValueError):
        msm([1, 2], [g])


@pytest.mark.parametrize("k", [0, 1, 2**31 - 1, 2**31, 2**32, 2**64 + 3, -1, -(2**31), ORDER - 1])
def test_msm_scalar_conversion_paths(k):
    # Small scalars take a faster conversion route than large ones; both must agree with
    # petlib's own scalar multiplication.
    g = curve().generator()
    expected = g.pt_mul(Bn.from_binary((k % ORDER).to_bytes(32, "big")))
    assert msm([k], [g]) == expected
    assert msm([k, 1], [g, g]) == msm([(k + 1) % ORDER], [g])


def test_batch_inverse():
    rng = random.Random(1)
    vals = [rng.randrange(1, ORDER) for _ in range(20)] + [ORDER + 3, -7]
    assert batch_inverse(vals) == [pow(v, -1, ORDER) for v in vals]
    assert batch_inverse([]) == []
    with pytest.raises(ZeroDivisionError):
        batch_inverse([3, ORDER, 5])


def test_random_scalar_is_reproducible_with_a_seeded_rng():
    a = [random_scalar(random.Random(4).getrandbits) for _ in range(2)]
    assert a[0] == a[1] and 0 <= a[0] < ORDER
    assert random_scalar() != random_scalar()


def test_msm_accepts_numpy_integers_and_refuses_floats():
    import numpy as np
    g = curve().generator()
    assert msm([np.int64(-5), np.uint16(7)], [g, g]) == msm([2], [g])
    with pytest.raises(TypeError):
        msm([1.5], [g])
