"""Issue 11, item 6: faults a hostile client can cause, each refused with a typed error."""
import dataclasses
import importlib

import numpy as np
import pytest

from rangeproof.generators import clear_memory_cache, disable_disk_cache, enable_disk_cache, generators
from secagg.client import ClientStage, SecAggClient
from secagg.driver import DropoutPlan, run_round
from secagg.errors import (
    DecodeError,
    MalformedMessage,
    NonCanonicalEncoding,
    NonFiniteInput,
    ProtocolViolation,
    UnusableKey,
)
from secagg.messages import KeysBroadcast, PeerKeys, decode_message
from secagg.randomness import SeededRandom
from secagg.server import SecAggServer
from secagg.params import SecAggParams
from secagg.quantize import QuantizationSpec, quantize, quantize_counting_clipped

ROUND = bytes(range(16))
gens_mod = importlib.import_module("rangeproof.generators")


# --- (f) typed decoding errors ------------------------------------------------------------------

@pytest.mark.parametrize("data", ["SAB\x01\x01" + "x" * 64, "", None, 12, [1, 2, 3]])
def test_decode_message_of_non_bytes_is_a_decode_error(data):
    with pytest.raises(MalformedMessage):
        decode_message(data)
    with pytest.raises(DecodeError):
        decode_message(data, max_bytes=4)


def test_generator_cache_with_zero_entries_is_an_encoding_error(tmp_path):
    from rangeproof.errors import EncodingError
    try:
        enable_disk_cache(tmp_path)
        clear_memory_cache()
        fresh = generators(b"zero-test", 3)
        gens_mod._store_to_disk(b"zero-test", [])
        blob = gens_mod._cache_file(b"zero-test").read_bytes()
        with pytest.raises(EncodingError):
            gens_mod._parse_cache(b"zero-test", blob)
        assert gens_mod._load_from_disk(b"zero-test") == []
        clear_memory_cache()
        assert generators(b"zero-test", 3) == fresh      # the empty file is ignored, rederived
    finally:
        disable_disk_cache()
        clear_memory_cache()


# --- (d) non-finite input to quantization -------------------------------------------------------

@pytest.mark.parametrize("bits", [16, 32, 63, 64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_refuses_non_finite_input(bits, bad):
    spec = QuantizationSpec(bits=bits, clip_range=1.0, num_clients=4)
    x = np.array([0.25, bad, -0.5, bad], dtype=np.float32)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(NonFiniteInput) as info:
        quantize(x, spec, rng)
    assert info.value.count == 2
    assert rng.bit_generator.state == state          # nothing drawn, nothing changed
    with pytest.raises(NonFiniteInput):
        quantize_counting_clipped(x.astype(np.float64), spec, rng)
    # finite input still quantizes (large values are clipped, as before)
    q = quantize(np.array([0.25, 1e30, -0.5]), spec, rng)
    assert q.shape == (3,)


# --- (e) the active variant counts distinct signers -----------------------------------------------

def test_active_unmask_counts_a_repeated_signer_once():
    from secagg_adversary import MaliciousServer

    from secagg.errors import TooFewSurvivors
    from secagg.messages import UnmaskRequest

    p = SecAggParams.classic(10, active=True)
    t = p.threshold
    adv = MaliciousServer(p)
    adv.setup()
    u3 = tuple(sorted(adv.y))
    adv.sign({u: u3 for u in adv.honest})
    sigs = sorted(adv.signatures[u3].items())
    target = u3[-1]
    few = sigs[: t - 1]
    for dup in (few + [few[0]], few + [few[-1]] * 3):   # t or more entries, t - 1 distinct signers
        req = UnmaskRequest(adv.rid, target, u3, (), tuple(dup))
        with pytest.raises(TooFewSurvivors):
            adv.clients[target].unmask(req)
        with pytest.raises(NonCanonicalEncoding):      # a repeated signer is refused on the wire too
            decode_message(req.encode())
    # the client is still able to answer a proper request (the refusals changed nothing)
    resp = adv.clients[target].unmask(UnmaskRequest(adv.rid, target, u3, (), tuple(sigs[:t])))
    assert len(resp.shares) == len(u3)


# --- (a), (b) unusable and non-canonical keys ---------------------------------------------------------
# c (share encryption) is X25519; s (pairwise masks) is P-256 since the Feldman commitments of
# issue 11 (its private key is a scalar of the group the shares are committed in). The X25519
# tests run on c_pk, their P-256 equivalents (invalid points, non-canonical encodings) on s_pk.

_P = (1 << 255) - 19
# the points of small order with u < p (RFC 7748; the list libsodium refuses): 0, 1, the two
# points of order 8, and p - 1 (order 4 ... the point (-1, .)).
SMALL_ORDER_U = [0, 1, 325606250916557431795983626356110631294008115727848805560023387167927233504,
                 39382357235489614581723060781553021112529911719440698176882885853963445705823, _P - 1]


def _le(u: int) -> bytes:
    return u.to_bytes(32, "little")


_P256_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


def _off_curve(x0: int = 1) -> bytes:
    """A compressed encoding with a canonical x (< p) that is no point's x-coordinate."""
    x = next(x for x in range(x0, x0 + 200)
             if pow((x ** 3 - 3 * x + _P256_B) % _P256_P, (_P256_P - 1) // 2, _P256_P) == _P256_P - 1)
    return bytes([2]) + x.to_bytes(32, "big")


def _sum(x, ids, bits):
    return (np.sum([x[u].astype(np.uint64) for u in ids], axis=0, dtype=np.uint64) & np.uint64((1 << bits) - 1))


@pytest.mark.parametrize("u", SMALL_ORDER_U)
def test_small_order_key_refused_at_advertise(u):
    p = SecAggParams.classic(5)
    server = SecAggServer(p, ROUND, 4)
    client = SecAggClient(p, 1, ROUND, rng=SeededRandom(1))
    good = client.advertise_keys()
    for bad in (dataclasses.replace(good, c_pk=_le(u)), dataclasses.replace(good, s_pk=_off_curve(u + 1))):
        with pytest.raises(UnusableKey) as info:
            server.receive_advertise(bad)
        assert info.value.client == 1
        assert isinstance(info.value, ProtocolViolation)
    server.receive_advertise(good)   # the refusals changed nothing: the honest message is accepted


def test_p256_mask_key_encodings_refused_at_advertise():
    """The P-256 equivalents of the X25519 checks: one encoding per key (compressed, x < p), no
    identity, no uncompressed or hybrid form, no 32-byte key; refused before any state changes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    p = SecAggParams.classic(5)
    server = SecAggServer(p, ROUND, 4)
    client = SecAggClient(p, 1, ROUND, rng=SeededRandom(1))
    good = client.advertise_keys()
    wide = client._s_key._key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    for bad in (wide, bytes(33), bytes([1]), bytes([6]) + good.s_pk[1:], good.s_pk[1:],
                bytes([2]) + _P256_P.to_bytes(32, "big"), bytes([3]) + (2**256 - 1).to_bytes(32, "big")):
        with pytest.raises(NonCanonicalEncoding) as info:
            server.receive_advertise(dataclasses.replace(good, s_pk=bad))
        assert info.value.blamed == (1,)
    server.receive_advertise(good)


@pytest.mark.parametrize("active", [False, True])
@pytest.mark.parametrize("bad", [(4,), "max"])
@pytest.mark.parametrize("field", ["c_pk", "s_pk"])
def test_round_completes_without_clients_advertising_small_order_keys(monkeypatch, active, bad, field):
    n = 10
    p = SecAggParams.classic(n, active=active)
    bad = set(range(1, n - p.threshold + 1)) if bad == "max" else set(bad)
    if active:
        bad = set(list(bad)[: p.dropout_budget])
    real = SecAggClient.advertise_keys

    def hostile(self):
        msg = real(self)
        unusable = bytes(32) if field == "c_pk" else _off_curve()   # small order / not on P-256
        return dataclasses.replace(msg, **{field: unusable}) if self.id in bad else msg

    monkeypatch.setattr(SecAggClient, "advertise_keys", hostile)
    gen = np.random.default_rng(3)
    x = {u: gen.integers(0, 1 << 16, 7, dtype=np.uint64).astype(np.uint32) for u in range(1, n + 1)}
    report = run_round(p, x, seed=5)
    honest = [u for u in range(1, n + 1) if u not in bad]
    assert set(report.server_refusals) == bad
    assert all(isinstance(e, UnusableKey) for e in report.server_refusals.values())
    assert report.client_errors == {}
    assert report.result.survivors == tuple(honest)
    assert np.array_equal(report.result.vector.astype(np.uint64), _sum(x, honest, p.mask_bits))


@pytest.mark.parametrize("u", SMALL_ORDER_U[:2])
def test_client_refuses_a_broadcast_with_a_small_order_key(u):
    p = SecAggParams.classic(5)
    clients = {v: SecAggClient(p, v, ROUND, rng=SeededRandom(v)) for v in range(1, 6)}
    adv = {v: c.advertise_keys() for v, c in clients.items()}
    peers = [PeerKeys(v, m.c_pk, m.s_pk) for v, m in sorted(adv.items())]
    for bad in (PeerKeys(3, _le(u), peers[2].s_pk), PeerKeys(3, peers[2].c_pk, _off_curve(u + 1))):
        msg = KeysBroadcast(ROUND, 1, tuple(peers[:2] + [bad] + peers[3:]))
        with pytest.raises(UnusableKey) as info:
            clients[1].share_keys(msg)
        assert info.value.client == 3
        assert clients[1].stage is ClientStage.SHARE_KEYS          # nothing drawn, nothing changed


def test_key_differing_in_bit_255_is_refused():
    p = SecAggParams.classic(5)
    server = SecAggServer(p, ROUND, 4)
    c1 = SecAggClient(p, 1, ROUND, rng=SeededRandom(1))
    c2 = SecAggClient(p, 2, ROUND, rng=SeededRandom(2))
    m1, m2 = c1.advertise_keys(), c2.advertise_keys()
    server.receive_advertise(m1)
    twin = bytearray(m1.c_pk)
    twin[31] |= 0x80                                   # the same X25519 key, another encoding
    copy = dataclasses.replace(m2, c_pk=bytes(twin))
    with pytest.raises(NonCanonicalEncoding):
        server.receive_advertise(copy)
    with pytest.raises(NonCanonicalEncoding):          # refused on the wire as well
        decode_message(copy.encode())
    # u + p for u < 19 is also a second encoding (u = 9 is the base point)
    with pytest.raises(NonCanonicalEncoding):
        server.receive_advertise(dataclasses.replace(m2, c_pk=_le(9 + _P)))
    server.receive_advertise(m2)                       # nothing changed: the real message passes
    # a client refuses a broadcast that lists a non-canonical key
    c3 = SecAggClient(p, 3, ROUND, rng=SeededRandom(3))
    m3 = c3.advertise_keys()
    m4 = SecAggClient(p, 4, ROUND, rng=SeededRandom(4)).advertise_keys()
    peers = (PeerKeys(1, bytes(twin), m1.s_pk), PeerKeys(2, m2.c_pk, m2.s_pk), PeerKeys(3, m3.c_pk, m3.s_pk),
             PeerKeys(4, m4.c_pk, m4.s_pk))
    with pytest.raises(NonCanonicalEncoding):
        c3.share_keys(KeysBroadcast(ROUND, 3, peers))
    assert c3.stage is ClientStage.SHARE_KEYS


# --- (c) SecAgg+: the graph after exclusion is the graph every later step uses ------------------------

def test_sparse_rounds_with_exclusions_for_too_few_neighbours_finish():
    n = 100
    p = SecAggParams(num_clients=n, threshold=6, degree=10, mask_bits=16)
    gen = np.random.default_rng(0)
    x = {u: gen.integers(0, 1 << 16, 3, dtype=np.uint64).astype(np.uint32) for u in range(1, n + 1)}
    excluded_rounds = 0
    for trial in range(12):
        plan = DropoutPlan.random(list(range(1, n + 1)), 0.3, np.random.default_rng(trial),
                                  steps=("advertise_keys", "share_keys"))
        report = run_round(p, x, dropout=plan, seed=trial)
        res = report.result
        assert report.client_errors == {}
        assert np.array_equal(res.vector.astype(np.uint64), _sum(x, res.survivors, p.mask_bits))
        assert set(res.survivors) == set(range(1, n + 1)) - set(res.dropped)
        excluded_rounds += any("too few neighbours" in why for why in res.dropped.values())
    assert excluded_rounds >= 6          # the trials do exercise the exclusion


def test_excluded_clients_are_not_in_any_broadcast():
    n = 100
    p = SecAggParams(num_clients=n, threshold=6, degree=10, mask_bits=16)
    server = SecAggServer(p, ROUND, 3)
    present = [u for u in range(1, n + 1) if np.random.default_rng(u).random() > 0.45]
    for u in present:
        server.receive_advertise(SecAggClient(p, u, ROUND, rng=SeededRandom(u)).advertise_keys())
    out = server.close_advertise()
    weak = {u for u, why in server.dropped.items() if "too few" in why}
    assert weak                                           # this draw has exclusions
    for u, msg in out.items():
        listed = {pk.client for pk in msg.peers}
        assert not listed & weak
        assert len(listed) >= p.threshold
