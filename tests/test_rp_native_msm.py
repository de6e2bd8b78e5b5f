"""The C bucket multi-exponentiation (rangeproof/_p256msm.c) against OpenSSL, the reference.

Every result is compared with :func:`rangeproof.group.msm` (OpenSSL's ``EC_POINTs_mul``), on
inputs built to reach the formulas' exceptional cases: the same point twice in one bucket (a
doubling), a point and its negative in one bucket (the identity), scalars 0, 1, q - 1 and
above q, the identity among the points, and every window width.
"""
from __future__ import annotations

import random
import shutil
import sysconfig

import numpy as np
import pytest

from rangeproof import native_msm
from rangeproof.generators import generators, pedersen_bases
from rangeproof.group import ORDER, curve, msm
from rangeproof.native_msm import affine_bytes, generator_table, msm_public

P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1

native = pytest.mark.skipif(native_msm._native is None, reason="the C module is not built")


def test_the_module_is_built_where_a_compiler_is():
    # a silent fallback would keep every result right and lose the speed the docs report
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip("no C compiler here")
    assert native_msm._native is not None


@native
def test_field_multiplication_matches_integers():
    rnd = random.Random(11)
    edges = [0, 1, 2, P256_P - 1, P256_P - 2, 2**255, 2**224, 2**64 - 1, 2**192]
    for _ in range(3000):
        a = rnd.choice(edges + [rnd.randrange(P256_P)] * 4)
        b = rnd.choice(edges + [rnd.randrange(P256_P)] * 4)
        got = native_msm._native.field_mul(a.to_bytes(32, "big"), b.to_bytes(32, "big"))
        assert int.from_bytes(got, "big") == a * b % P256_P
    with pytest.raises(ValueError):
        native_msm._native.field_mul(P256_P.to_bytes(32, "big"), (1).to_bytes(32, "big"))
    with pytest.raises(ValueError):
        native_msm._native.field_mul(b"\x01" * 31, b"\x01" * 32)


def _check(scalars, points, windows=(0, 1, 2, 3, 4, 7, 12)):
    want = msm(scalars, points) if scalars else curve().infinite()
    for w in windows:
        assert msm_public(scalars, points, window=w) == want, w


@native
def test_random_sums_match_openssl():
    rnd = random.Random(12)
    G = generators(b"sabre/test/native-msm/v1", 600)
    for n in [0, 1, 2, 3, 31, 32, 33, 200, 600]:
        pts = G[:n]
        sc = [rnd.randrange(ORDER) for _ in range(n)]
        _check(sc, pts)


@native
def test_scalar_edges_and_encodings():
    rnd = random.Random(13)
    G = generators(b"sabre/test/native-msm/v1", 64)
    edges = [0, 1, 2, ORDER - 1, ORDER, ORDER + 1, 2**256 - 1, -1, -(ORDER - 1), 2**255,
             (1 << 128) - 1, 1 << 200, 2**512 + 7]
    for _ in range(20):
        sc = [rnd.choice(edges) for _ in range(64)]
        _check(sc, G)
    _check([0] * 64, G)  # the identity
    _check([1, ORDER - 1], [G[0], G[0]])  # P + (-P) = identity


@native
def test_exceptional_cases_in_buckets_and_running_sums():
    """Equal points and opposite points meeting in one bucket, and a point meeting its
    negative in the running sums: each takes a branch the random tests almost never reach."""
    G = generators(b"sabre/test/native-msm/v1", 8)
    P, Q = G[0], G[1]
    negP = -P
    cases = [
        ([5, 5, 5, 5], [P, P, P, P]),                # doubling in one bucket, again and again
        ([5, 5], [P, negP]),                         # P + (-P) in one bucket
        ([3, ORDER - 3], [P, P]),                    # opposite digits: P and -P in opposite buckets
        ([1, 2, 3, 4, 5, 6], [P, P, P, negP, negP, Q]),
        ([7, 7, 9], [P, negP, P]),
        ([2**255, 2**255, 1], [P, P, Q]),            # top-window carries
        ([1, 1], [P, P + P]),                        # 2P next to P in the running sums
    ]
    for sc, pts in cases:
        _check(sc, pts, windows=(0, 1, 2, 3, 4, 5, 8, 16))
    # a batch that uses every generator twice with random scalars (pairs collide in buckets)
    rnd = random.Random(14)
    pts = [G[i % 8] for i in range(64)] + [-G[i % 8] for i in range(64)]
    sc = [rnd.choice([1, 2, 3, ORDER - 1, ORDER - 2]) for _ in pts]
    _check(sc, pts)


@native
def test_the_identity_among_the_points_adds_nothing():
    G = generators(b"sabre/test/native-msm/v1", 4)
    inf = curve().infinite()
    assert msm_public([3, 4, 5], [G[0], inf, G[1]]) == msm([3, 5], [G[0], G[1]])
    assert msm_public([3], [inf]).is_infinite()
    with pytest.raises(ValueError):
        affine_bytes([inf])


@native
def test_tables_and_prefixes_give_the_same_sum():
    rnd = random.Random(15)
    label = b"sabre/test/native-msm/v1"
    G = generators(label, 300)
    B, Bt = pedersen_bases()
    sc = [rnd.randrange(ORDER) for _ in range(302)]
    pts = G + [B, Bt]
    want = msm(sc, pts)
    table = generator_table(label, 300)
    assert msm_public(sc, pts, table=table) == want
    prefix = b"".join(s.to_bytes(32, "big") for s in sc[:250])
    assert msm_public(sc[250:], pts, table=table, scalar_prefix=prefix) == want
    # a table shorter than the prefix, a ragged prefix, a table longer than the points
    with pytest.raises(ValueError):
        msm_public(sc[250:], pts, table=table[:64 * 100], scalar_prefix=prefix)
    with pytest.raises(ValueError):
        msm_public(sc[250:], pts, table=table, scalar_prefix=prefix + b"\x00")
    with pytest.raises(ValueError):
        msm_public(sc[:10], pts[:10], table=table)


@native
def test_a_table_is_derived_from_its_label_alone():
    """A table is made from the label's own generators, whatever was asked before (a caller
    cannot fill the cache with other points), and grows consistently."""
    label = b"sabre/test/native-msm/table-check/v1"
    assert generator_table(label, 5) == affine_bytes(generators(label, 5))
    assert generator_table(label, 40) == affine_bytes(generators(label, 40))
    assert generator_table(label, 7) == affine_bytes(generators(label, 7))
    assert generator_table(label, 0) == b""


@native
def test_the_pedersen_table_is_the_pedersen_bases():
    """The verifier tables B and B~ under their label: the bases must be that label's first two
    generators, or every check would fail."""
    from rangeproof.labels import PEDERSEN_BASES
    assert generator_table(PEDERSEN_BASES, 2) == affine_bytes(list(pedersen_bases()))


@native
def test_points_of_other_curves_and_bad_scalars_are_refused():
    from petlib.ec import EcGroup
    other = EcGroup(713)  # P-224
    Q = other.generator()
    G = generators(b"sabre/test/native-msm/v1", 2)
    with pytest.raises(TypeError):
        msm_public([1, 2], [G[0], Q])
    with pytest.raises(TypeError):
        affine_bytes([Q])
    inf = curve().infinite()
    with pytest.raises(TypeError):
        msm_public([1, 1.5], [G[0], inf])  # a float, even on the identity
    with pytest.raises(TypeError):
        msm_public([1, None], [G[0], inf])


@native
def test_malformed_input_to_the_module_is_refused():
    m = native_msm._native
    G = generators(b"sabre/test/native-msm/v1", 2)
    pts = affine_bytes(G)
    one = (1).to_bytes(32, "big")
    with pytest.raises(ValueError):
        m.msm(pts[:-1], one + one)           # ragged points
    with pytest.raises(ValueError):
        m.msm(pts, one)                      # one scalar for two points
    with pytest.raises(ValueError):
        m.msm(pts, one + one, 21)            # window out of range
    bad = bytearray(pts)
    bad[0:32] = P256_P.to_bytes(32, "big")   # a coordinate not below p
    with pytest.raises(ValueError):
        m.msm(bytes(bad), one + one)
    assert m.msm(b"", b"") is None


@native
def test_tensor_sums_match_integers():
    q = ORDER
    mont = (1 << 256) % q
    rnd = random.Random(16)
    for _ in range(100):
        n = rnd.randrange(1, 120)
        width = rnd.randrange(1, 20)
        d = rnd.randrange(0, n + 1)
        off = rnd.randrange(0, n - d + 1)
        rows = max(1, -(-d // width))
        total = [rnd.choice([0, q - 1, rnd.randrange(q)]) for _ in range(n)]
        A = [rnd.choice([0, 1, q - 1, rnd.randrange(q)]) for _ in range(rows)]
        B = [rnd.choice([0, 1, q - 1, rnd.randrange(q)]) for _ in range(width)]
        buf = bytearray(b"".join(t.to_bytes(32, "big") for t in total))
        native_msm.tensor_add(buf, b"".join((a * mont % q).to_bytes(32, "big") for a in A),
                              b"".join(b.to_bytes(32, "big") for b in B), off, d)
        for i in range(d):
            total[off + i] = (total[off + i] + A[i // width] * B[i % width]) % q
        assert [int.from_bytes(buf[32 * i:32 * i + 32], "big") for i in range(n)] == total
    buf = bytearray(64)
    with pytest.raises(ValueError):
        native_msm.tensor_add(buf, bytes(32), bytes(32), 1, 2)   # runs past the end
    with pytest.raises(ValueError):
        native_msm.tensor_add(buf, bytes(32), q.to_bytes(32, "big"), 0, 1)  # b not below q
    with pytest.raises(ValueError):
        native_msm.tensor_add(buf, bytes(32), bytes(32), 0, 2)   # a row short
    assert buf == bytearray(64)


def test_without_the_module_the_results_are_openssls(monkeypatch):
    monkeypatch.setattr(native_msm, "_native", None)
    G = generators(b"sabre/test/native-msm/v1", 10)
    sc = list(range(1, 11))
    assert not native_msm.available()
    assert msm_public(sc, G) == msm(sc, G)
    with pytest.raises(ValueError):
        msm_public(sc[1:], G, scalar_prefix=(1).to_bytes(32, "big"))
    monkeypatch.undo()
    monkeypatch.setenv("SABRE_NATIVE_MSM", "0")
    assert not native_msm.available()


def test_known_answer():
    """Pinned: sum_i (i + 1) G_i over the first 8 generators of a test label (computed by
    OpenSSL when the vector was written)."""
    G = generators(b"sabre/test/native-msm/v1", 8)
    got = msm_public([1, 2, 3, 4, 5, 6, 7, 8], G)
    assert got == msm([1, 2, 3, 4, 5, 6, 7, 8], G)
    assert got.export().hex() == KAT_SUM


KAT_SUM = "02dd22344693447648b977540899d414a341623dd9b6dcbea98b3a6578c2d929fd"


@native
def test_verifier_decisions_do_not_depend_on_the_backend(monkeypatch):
    from rangeproof.norm import NormStatement, commit_vector, prove, verify, verify_batch
    from rangeproof.errors import EncodingError, VerificationError
    d = 700
    rng = np.random.default_rng(3)
    st = NormStatement(round_id=1, client_id=2, dim=d, norm="l2", bound=1000, scale=1.0)
    x = rng.integers(-30, 31, size=d)
    C, r = commit_vector(x)
    pf = prove(st, x, C, r)
    bad = bytearray(pf.to_bytes())
    bad[-40] ^= 1
    for flag in ("1", "0"):
        monkeypatch.setenv("SABRE_NATIVE_MSM", flag)
        verify(st, C, pf)
        with pytest.raises((VerificationError, EncodingError)):
            verify(st, C, bytes(bad))
        assert verify_batch([(st, C, pf), (st, C, bytes(bad)), (st, C, pf)]) == [True, False, True]


@native
def test_switching_the_backend_off_midway_keeps_the_verdicts(monkeypatch):
    """An accumulator started with the native code and checked after it was switched off
    decodes its buffer and gives the same verdict (a review found it raised instead)."""
    from rangeproof.norm import NormStatement, commit_vector, prove
    from rangeproof.norm.terms import Accumulator
    d = 300
    st = NormStatement(round_id=1, client_id=2, dim=d, norm="l2", bound=1000, scale=1.0)
    x = np.arange(d) % 7 - 3
    C, r = commit_vector(x)
    pf = prove(st, x, C, r)
    for honest in (True, False):
        monkeypatch.setenv("SABRE_NATIVE_MSM", "1")
        acc = Accumulator()
        pf.add_to(acc, st, C if honest else C + C)
        monkeypatch.setenv("SABRE_NATIVE_MSM", "0")
        assert acc.check() is honest
    with pytest.raises(ValueError):
        acc.merge(acc)


@native
def test_small_sums_in_c_match_openssl(monkeypatch):
    """msm_small's bucket loop in C (small_sum) against the full multi-exponentiation, with
    repeated points, opposite values, zeros and the largest bucket, and with the C loop off."""
    from rangeproof.group import SMALL_SCALAR_LIMIT, msm_small
    rnd = random.Random(17)
    G = generators(b"sabre/test/native-msm/v1", 500)
    for trial in range(40):
        n = rnd.choice([1, 2, 7, 100, 500])
        pts = [rnd.choice(G[:rnd.choice([1, 2, 500])]) for _ in range(n)]
        vals = [rnd.choice([0, 1, -1, rnd.randrange(-300, 300), SMALL_SCALAR_LIMIT,
                            -SMALL_SCALAR_LIMIT]) for _ in range(n)]
        want = msm(vals, pts)
        assert msm_small(vals, pts) == want
        monkeypatch.setenv("SABRE_NATIVE_MSM", "0")
        assert msm_small(vals, pts) == want
        monkeypatch.delenv("SABRE_NATIVE_MSM")


@native
def test_small_sum_refuses_what_it_cannot_take():
    from petlib.ec import EcPt
    from rangeproof import group
    total = EcPt(curve())  # a point of its own (curve().infinite() is petlib's shared one)
    gaddr = int(group._FFI.cast("uintptr_t", group._GROUP.ecg))
    oaddr = int(group._FFI.cast("uintptr_t", total.pt))
    G = generators(b"sabre/test/native-msm/v1", 1)
    arr = group._FFI.new("EC_POINT *[]", [G[0].pt])
    addrs = np.frombuffer(group._FFI.buffer(arr), dtype=np.uint64)
    with pytest.raises(ValueError):
        group._native_small(gaddr, addrs, np.array([1 << 21], dtype=np.int64), oaddr)
    with pytest.raises(ValueError):
        group._native_small(gaddr, addrs, np.array([1, 2], dtype=np.int64), oaddr)
    with pytest.raises(ValueError):
        group._native_small(gaddr, np.zeros(1, dtype=np.uint64), np.array([1], dtype=np.int64), oaddr)
    group._native_small(gaddr, addrs, np.array([3], dtype=np.int64), oaddr)
    assert total == msm([3], G)


@native
def test_the_transpose_in_c_is_the_projection_s(monkeypatch):
    """v = P^T gamma from the C transpose (16-bit limbs) against the float32 path (8-bit limbs)
    and the dense matrix, across block boundaries, with the extreme coefficients; and <s, v>
    from both layouts."""
    from rangeproof.norm.projection import Projection
    rnd = random.Random(18)
    for d in (1, 5, 4095, 4096, 4097, 8193):
        for rows in (8, 128):
            P = Projection(bytes(rnd.randrange(256) for _ in range(32)), rows, d)
            g = [rnd.choice([0, 1, (1 << 96) - 1, rnd.randrange(1 << 96)]) for _ in range(rows)]
            fast = P.transpose(g)
            monkeypatch.setenv("SABRE_NATIVE_MSM", "0")
            slow = P.transpose(g)
            monkeypatch.delenv("SABRE_NATIVE_MSM")
            assert (fast.limb_bits, slow.limb_bits) == (16, 8)
            assert fast.residues() == slow.residues()
            if d <= 4097 and rows == 8:
                dense = P.dense()
                assert fast.residues() == [sum(int(dense[k, j]) * g[k] for k in range(rows)) % ORDER
                                           for j in range(d)]
            us = [rnd.randrange(1, ORDER) for _ in range(max(1, (d - 1).bit_length()))]
            for lo_one in (False, True):
                assert fast.dot_challenge_products(us, 7, lo_one=lo_one) == \
                    slow.dot_challenge_products(us, 7, lo_one=lo_one)
                assert fast.sliced(0, d // 2 + 1).residues() == slow.residues()[:d // 2 + 1]


@native
def test_the_transpose_refuses_what_it_cannot_take():
    from rangeproof.norm.projection import _TABLE_BYTES
    m = native_msm._native
    out = np.empty((2, 7), dtype=np.int32)
    gam = bytes(16 * 8)
    m.ternary_transpose(bytes(4), 8, gam, _TABLE_BYTES, out)       # two columns of 2 bytes
    assert not out.any()
    with pytest.raises(ValueError):
        m.ternary_transpose(bytes(5), 8, gam, _TABLE_BYTES, out)   # ragged stream
    with pytest.raises(ValueError):
        m.ternary_transpose(bytes(4), 8, gam[:-1], _TABLE_BYTES, out)
    with pytest.raises(ValueError):
        m.ternary_transpose(bytes(4), 8, b"\x00" * 12 + b"\x01" + bytes(16 * 8 - 13), _TABLE_BYTES, out)
    with pytest.raises(ValueError):
        m.ternary_transpose(bytes(4), 8, gam, b"\x02" + _TABLE_BYTES[1:], out)
    with pytest.raises(ValueError):
        m.ternary_transpose(bytes(4), 12, bytes(16 * 12), _TABLE_BYTES, out)  # rows not a multiple of 8
    with pytest.raises(ValueError):
        m.ternary_transpose(bytes(4), 8, gam, _TABLE_BYTES, np.empty((3, 7), dtype=np.int32))


class _LazyPoints:
    """A sequence that makes a new point object on every access (a review found the raw
    addresses of such points freed before the C loop read them)."""

    def __init__(self, points):
        self._points = points

    def __len__(self):
        return len(self._points)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        P = self._points[i]
        return P + curve().infinite()  # a new EcPt, equal to P


def test_points_made_on_access_stay_alive_through_the_call():
    from rangeproof.group import msm_shared, msm_small
    G = generators(b"sabre/test/native-msm/v1", 300)
    vals = [(i % 41) - 20 for i in range(300)]
    want = msm(vals, G)
    for _ in range(5):
        assert msm_small(vals, _LazyPoints(G)) == want
        assert msm(vals, _LazyPoints(G)) == want
        assert msm_shared([2, 3], [_LazyPoints(G[:2])])[0] == msm([2, 3], G[:2])


def test_identities_are_fresh_points():
    from rangeproof.group import identity
    g = curve().generator()
    P = identity()
    assert P is not curve().infinite() and P.is_infinite()
    Q = msm([], [])
    P.pt_add_inplace(g)  # changing one identity changes no other
    assert Q.is_infinite() and identity().is_infinite() and not g.is_infinite()
    assert msm_public([], []) is not curve().infinite()


def test_switched_off_by_the_usual_words(monkeypatch):
    for word in ("0", "false", "OFF", " no "):
        monkeypatch.setenv("SABRE_NATIVE_MSM", word)
        assert not native_msm.available()
    monkeypatch.setenv("SABRE_NATIVE_MSM", "1")
    assert native_msm.available() == (native_msm._native is not None)


def test_merging_a_shallow_copy_terminates():
    import copy
    from rangeproof.norm.terms import Accumulator
    G = generators(b"sabre/test/native-msm/v1", 3)
    acc = Accumulator()
    acc.add_points([1, 2, ORDER - 3], [G[0], G[0], G[0]])
    twin = copy.copy(acc)
    acc.merge(twin)  # the same lists behind both: copied before extending
    assert acc.check()


@native
def test_the_c_loop_runs_against_petlibs_openssl():
    """small_sum adds petlib's own OpenSSL points, so it is used only when the module and petlib
    run against the same OpenSSL."""
    from rangeproof import group
    assert native_msm._native.openssl_version_num() == group._C.OpenSSL_version_num()
    assert group._native_small is not None


@native
def test_sums_on_a_generator_table_match_openssl(monkeypatch):
    """label_small_sum (table_sum on the label's affine table) against the full
    multi-exponentiation on the same generators, at offsets, with zeros, +-1, the largest
    bucket, values that cancel, and with the native code switched off."""
    from rangeproof.group import SMALL_SCALAR_LIMIT
    from rangeproof.native_msm import label_small_sum
    label = b"sabre/test/native-msm/table-sum/v1"
    G = generators(label, 700)
    rnd = random.Random(23)
    for trial in range(30):
        n = rnd.choice([1, 2, 9, 300])
        off = rnd.choice([0, 1, 399, 700 - n])
        vals = [rnd.choice([0, 1, -1, rnd.randrange(-300, 301), SMALL_SCALAR_LIMIT // 64])
                for _ in range(n)]
        want = msm(vals, G[off:off + n])
        assert label_small_sum(label, off, vals) == want
        assert label_small_sum(label, off, np.array(vals, dtype=np.int32)) == want
        monkeypatch.setenv("SABRE_NATIVE_MSM", "0")
        assert label_small_sum(label, off, vals) == want
        monkeypatch.delenv("SABRE_NATIVE_MSM")
    # all values zero, or summing to the identity; values past the bucket limit (msm_small's
    # fallback to the full multi-exponentiation)
    assert label_small_sum(label, 5, [0, 0, 0]).is_infinite()
    big = [SMALL_SCALAR_LIMIT + 1, -3]
    assert label_small_sum(label, 2, big) == msm(big, G[2:4])
    assert label_small_sum(label, 0, [2**70, 1]) == msm([2**70, 1], G[:2])
    with pytest.raises(ValueError):
        label_small_sum(label, -1, [1])
    with pytest.raises(ValueError):  # a 2-D array would sum over more points than it names
        label_small_sum(label, 0, np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError):
        label_small_sum(label, 0, [1.5])


@native
def test_table_sum_exceptional_cases_and_refusals():
    """The same point twice in a bucket (a doubling), a point and its negative (the identity),
    buckets that cancel in the running sums; malformed tables, offsets and values refused."""
    from petlib.ec import EcPt
    nat = native_msm._native
    P = generators(b"sabre/test/native-msm/table-sum/v1", 2)
    row = affine_bytes([P[0]])

    def point(res):
        return None if res is None else EcPt.from_binary(b"\x04" + res, curve())

    def vals(*v):
        return np.array(v, dtype=np.int64)

    assert point(nat.table_sum(row * 2, 0, vals(1, 1))) == msm([2], [P[0]])
    assert nat.table_sum(row * 2, 0, vals(1, -1)) is None
    assert point(nat.table_sum(row * 3, 0, vals(2, -1, 3))) == msm([4], [P[0]])
    assert nat.table_sum(row * 3, 0, vals(2, -1, -1)) is None
    two = affine_bytes(P)
    assert point(nat.table_sum(two + row, 0, vals(1, 5, -1))) == msm([5], [P[1]])
    assert nat.table_sum(two, 1, vals()) is None
    assert point(nat.table_sum(two, 1, vals(7))) == msm([7], [P[1]])
    for table, start, v in ((row[:-1], 0, vals(1)), (row, 0, vals(1, 1)), (row, 1, vals(1)),
                            (row, -1, vals(1)), (row, 0, vals(1 << 21)), (row, 0, vals(-(1 << 21)))):
        with pytest.raises(ValueError):
            nat.table_sum(table, start, v)
    # only a flat buffer of int64 values: no bytes, no int32 read as pairs, no 2-D array
    for v in (b"\x01" * 8, np.array([1, 1], dtype=np.int32), np.ones((1, 1), dtype=np.int64),
              np.array([1], dtype=">i8")):
        with pytest.raises(ValueError):
            nat.table_sum(row, 0, v)
    with pytest.raises(ValueError):  # not contiguous
        nat.table_sum(two + row, 0, np.arange(6, dtype=np.int64)[::2])
    bad = (P256_P).to_bytes(32, "big") + row[32:]
    with pytest.raises(ValueError):
        nat.table_sum(bad, 0, vals(1))


@native
def test_the_folding_on_tables_is_the_folding_on_points(monkeypatch):
    """The bucket rounds' cross terms on the generators' table equal those on OpenSSL points,
    and only the label's own generator objects are taken for the table."""
    from rangeproof.generators import are_generators
    from rangeproof.norm.generator_fold import FoldedGenerators
    label = b"sabre/test/native-msm/fold/v1"
    G = generators(label, 1000)
    rnd = random.Random(29)
    x0 = [rnd.randrange(-40, 41) for _ in range(1000 - 8)]
    assert are_generators(G[8:], label, 8) and not are_generators(G[8:], label, 7)
    assert not are_generators(G[8:], b"sabre/test/native-msm/other/v1", 8)
    assert not are_generators([msm([1], [P]) for P in G[8:]], label, 8)  # equal, not the same
    tabled = FoldedGenerators(G[8:], small_x=x0, label=label, offset=8)
    plain = FoldedGenerators(G[8:], small_x=x0)
    wrong = FoldedGenerators(G[8:], small_x=x0, label=label, offset=9)
    assert tabled._table is not None and plain._table is None and wrong._table is None
    e = [1]
    while tabled.uses_buckets():
        assert tabled.small_cross_terms(e) == plain.small_cross_terms(e)
        u = rnd.randrange(1, ORDER)
        e = [c for a in e for c in (a, a * u % ORDER)]
        for f in (tabled, plain):
            f.fold_by(pow(u, -1, ORDER), 1)


def test_proofs_are_the_same_bytes_with_and_without_the_tables(monkeypatch):
    """A deterministic L2 proof (several chunks, bucket rounds) is the same byte for byte
    whether its sums run on the generators' tables in C or on OpenSSL points."""
    from rangeproof.norm import NormStatement, commit_vector, prove, verify
    d = 5000
    st = NormStatement(round_id=1, client_id=2, dim=d, norm="l2", bound=1 << 12, scale=1024.0)
    x = np.random.default_rng(3).integers(-50, 51, d)
    out = []
    for flag in (None, "0"):
        if flag:
            monkeypatch.setenv("SABRE_NATIVE_MSM", flag)
        rnd = random.Random(5)
        C, r = commit_vector(x, rng=rnd.getrandbits)
        out.append((C, prove(st, x, C, r, rng=rnd.getrandbits).to_bytes()))
    assert out[0] == out[1]
    monkeypatch.delenv("SABRE_NATIVE_MSM")
    from rangeproof.norm import proof_from_bytes
    verify(st, out[0][0], proof_from_bytes(st, out[0][1]))


def test_residues_of_hand_made_limbs():
    """The 16-bit limb layout's fast conversion and the general one agree, and a layout that
    is not the C transpose's (a low limb out of range) takes the general path."""
    from rangeproof.norm.projection import TransposedProjection
    rnd = np.random.default_rng(31)
    lim = rnd.integers(0, 1 << 16, size=(50, 7)).astype(np.int32)
    lim[:, 6] = rnd.integers(-(1 << 30), 1 << 30, size=50)
    want = [sum(int(lim[j, i]) << (16 * i) for i in range(7)) % ORDER for j in range(50)]
    assert TransposedProjection(lim, 16).residues() == want
    assert TransposedProjection(np.asfortranarray(lim), 16).residues() == want
    odd = lim.copy()
    odd[3, 2] = -5
    want[3] = sum(int(odd[3, i]) << (16 * i) for i in range(7)) % ORDER
    assert TransposedProjection(odd, 16).residues() == want


def test_clearing_the_generators_drops_their_tables():
    """clear_memory_cache() frees what was derived from the generators as well (the tables are
    64 bytes a point), and sums afterwards are the same."""
    from rangeproof.generators import clear_memory_cache
    from rangeproof.native_msm import label_small_sum
    label = b"sabre/test/native-msm/clear/v1"
    want = msm([3, -2], generators(label, 2))
    assert label_small_sum(label, 0, [3, -2]) == want
    generator_table(label, 2)
    assert label in native_msm._tables
    clear_memory_cache()
    assert not native_msm._tables
    assert label_small_sum(label, 0, [3, -2]) == want
