"""Known-answer vectors: every derivation of randomness and every challenge, pinned in a file.

``tests/kat/derivations.json`` (written by ``tests/kat/generate.py``) holds fixed inputs and what the
code derives from them: the label registry, a Fiat-Shamir transcript's absorbed bytes and challenges,
the generators, the L2 proof's projection matrix, the SecAgg key derivations, masks, signed and
hashed transcripts and seeded randomness, one seeded L2 proof, one L-infinity proof and one
aggregated range proof.

A FAILING TEST HERE MEANS A DERIVATION CHANGED (a label, an encoding, a key schedule, a keystream
position, a transcript record, or the order in which a prover draws its randomness). Such a change
invalidates every proof, mask and key made before it. If it is a bug, fix the code. If it is
intended:

1. bump the version of the affected label in ``rangeproof/labels.py`` (or the norm proofs'
   ``PROTOCOL_VERSION`` and proof magic, for a change of proof format), so that old and new
   outputs can never be mistaken for one another;
2. regenerate the file: ``python tests/kat/generate.py``;
3. commit the regenerated file with the change: its diff shows exactly which derivations moved,
   and a reviewer checks that nothing else did.

Never regenerate only to make this test pass. The transcript, the projection and the SecAgg masks
are also checked here against their written specifications, independently of the code, so that a
change of encoding must change this file's spec too.
"""
import hashlib
import importlib.util
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rangeproof import RangeProof
from rangeproof.errors import EncodingError, VerificationError
from rangeproof.group import ORDER, point_from_bytes_compact
from rangeproof.norm import proof_from_bytes, verify, verify_batch

KAT_DIR = Path(__file__).with_name("kat")
_spec = importlib.util.spec_from_file_location("kat_generate", KAT_DIR / "generate.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

STORED = json.loads((KAT_DIR / "derivations.json").read_text())
unhex = gen.unhex


@pytest.fixture(scope="module")
def fresh():
    """Every section recomputed by the current code (about 2 s)."""
    return gen.build()


def _first_difference(a, b, path="") -> str:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}/{k}: only in {'the code' if k in a else 'the file'}"
            if a[k] != b[k]:
                return _first_difference(a[k], b[k], f"{path}/{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: code gives {a!r}, file has {b!r}"


# --- the code reproduces the file -------------------------------------------------------------------

def test_file_lists_every_section():
    assert set(STORED) - {"about"} == set(gen.SECTIONS)
    assert (KAT_DIR / "derivations.json").stat().st_size < 100_000


@pytest.mark.parametrize("section", list(gen.SECTIONS))
def test_code_reproduces_the_known_answers(fresh, section):
    if fresh[section] != STORED[section]:
        pytest.fail(f"derivation changed in {section}{_first_difference(fresh[section], STORED[section])}\n"
                    "(see this file's docstring: bump the label version, then regenerate)")


# --- the transcript against its specification ---------------------------------------------------------

def _record(op: bytes, label: bytes, data: bytes) -> bytes:
    """The documented record: op || u32 BE len(label) || label || u64 BE len(data) || data."""
    return op + len(label).to_bytes(4, "big") + label + len(data).to_bytes(8, "big") + data


def _param(typ: str, value) -> bytes:
    if typ == "int":
        return b"i" + value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return b"b" + bytes.fromhex(value)


def _spec_absorbed(step: dict) -> bytes:
    """What one transcript operation absorbs, from the written format alone."""
    op, lab = step["op"], step["label"].encode() if "label" in step else b""
    if op == "new":
        return STORED["labels"]["TRANSCRIPT"].encode() + _record(b"M", b"transcript-label", lab)
    if op == "domain_sep":
        out = _record(b"M", b"dom-sep", step["protocol"].encode())
        for name, typ, value in sorted(step["params"]):
            out += _record(b"M", b"param:" + name.encode(), _param(typ, value))
        return out
    if op == "append_message":
        return _record(b"M", lab, bytes.fromhex(step["data"]))
    if op == "append_u64":
        return _record(b"M", lab, step["value"].to_bytes(8, "big"))
    if op == "append_point":
        return _record(b"M", lab, bytes.fromhex(step["point"]))
    if op == "append_scalar":
        return _record(b"M", lab, (step["value"] % ORDER).to_bytes(32, "big"))
    if op == "challenge_bytes":
        return _record(b"C", lab, step["n"].to_bytes(8, "big"))
    if op == "challenge_scalar":
        return _record(b"C", lab, (64).to_bytes(8, "big")) * len(step["squeezed_after"])
    raise AssertionError(f"unknown operation {op}")


def test_transcript_records_follow_the_written_format():
    for step in STORED["transcript"]["steps"]:
        assert bytes.fromhex(step["absorbed"]) == _spec_absorbed(step), step["op"]


def test_transcript_challenges_are_shake256_of_everything_absorbed():
    absorbed = b""
    seen = 0
    for step in STORED["transcript"]["steps"]:
        absorbed += bytes.fromhex(step["absorbed"])
        if "output" not in step:
            continue
        seen += 1
        squeezes = step["squeezed_after"]
        assert squeezes[-1] == len(absorbed)  # the request record is absorbed before squeezing
        shake = hashlib.shake_256(absorbed)
        if step["op"] == "challenge_bytes":
            assert shake.digest(step["n"]).hex() == step["output"]
        else:
            assert int.from_bytes(shake.digest(64), "big") % ORDER == step["output"]
    assert seen == 5
    assert len(absorbed) == STORED["transcript"]["absorbed_total"]
    assert hashlib.sha256(absorbed).hexdigest() == STORED["transcript"]["absorbed_sha256"]


def test_projection_seed_is_the_challenge_over_the_bound_statement():
    case = STORED["l2_proof"]
    absorbed = unhex(case["statement_transcript_absorbed"])
    assert absorbed.startswith(STORED["labels"]["TRANSCRIPT"].encode())
    for name in ("NORM_TRANSCRIPT", "NORM_STATEMENT"):
        assert STORED["labels"][name].encode() in absorbed
    absorbed += _record(b"C", b"projection seed", (32).to_bytes(8, "big"))
    assert case["projection_seed_absorbed_len"] == len(absorbed)
    assert hashlib.shake_256(absorbed).digest(32).hex() == case["projection_seed"]


# --- the projection against its specification ------------------------------------------------------

def _spec_matrix(seed: bytes, K: int, d: int, label: bytes) -> tuple[bytes, np.ndarray]:
    """key = HKDF-SHA256(seed, no salt, label || u32 K || u64 d); one AES-256-CTR keystream from
    counter block 0; P[k, j] from the two bits at bit offset 2 (j K + k), low bit first: low bit 0
    gives 0, else the high bit gives +1 (set) or -1 (clear)."""
    info = label + K.to_bytes(4, "big") + d.to_bytes(8, "big")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(seed)
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    bits = np.unpackbits(np.frombuffer(enc.update(bytes(K * d // 4)), dtype=np.uint8), bitorder="little")
    low, high = bits[0::2].astype(np.int8), bits[1::2].astype(np.int8)
    entries = low * (2 * high - 1)  # index j K + k
    return key, np.ascontiguousarray(entries.reshape(d, K).T)


@pytest.mark.parametrize("index", [0, 1])
def test_projection_follows_the_written_derivation(index):
    case = STORED["projection"]["cases"][index]
    K, d = case["rows"], case["dim"]
    key, P = _spec_matrix(bytes.fromhex(case["seed"]), K, d, STORED["labels"]["NORM_PROJECTION_KEY"].encode())
    assert key.hex() == case["key"]
    assert hashlib.sha256(P.tobytes()).hexdigest() == case["dense_int8_sha256"]
    signs = {"+": 1, "-": -1, "0": 0}
    sampled = 0
    for name, value in case.items():
        m = re.fullmatch(r"row(\d+)_cols_(\d+)_(\d+)", name)  # e.g. row0_cols_4090_4100
        if m:
            row, lo, hi = map(int, m.groups())
            assert P[row, lo:hi + 1].tolist() == [signs[c] for c in value], name
            sampled += 1
    assert sampled == 4


def test_projection_columns_do_not_repeat_across_blocks():
    """The version-1 flaw in known-answer form: column j equalled column j + 64 K - 1."""
    case = STORED["projection"]["cases"][1]
    K, d = case["rows"], case["dim"]
    assert d > 64 * K - 1
    _, P = _spec_matrix(bytes.fromhex(case["seed"]), K, d, STORED["labels"]["NORM_PROJECTION_KEY"].encode())
    shift = 64 * K - 1
    same = (P[:, :d - shift] == P[:, shift:]).all(axis=0)
    assert not same.any()


# --- secagg against its specification ----------------------------------------------------------------

def _aes_ctr0(key: bytes, n: int) -> bytes:
    return Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor().update(bytes(n))


def test_secagg_masks_are_aes_ctr_keystreams_of_the_derived_keys():
    sa = STORED["secagg"]
    key = bytes.fromhex(sa["inputs"]["key16"])
    ring32 = sa["expand_ring key16 dim 8 bits 32"]
    assert np.frombuffer(_aes_ctr0(key, 4 * len(ring32)), dtype="<u4").tolist() == ring32
    ring64 = sa["expand_ring key16 dim 4 bits 64"]
    assert np.frombuffer(_aes_ctr0(key, 8 * len(ring64)), dtype="<u8").tolist() == ring64
    stream = _aes_ctr0(key, 48 * 3)
    draws = [int.from_bytes(stream[i:i + 48], "big") for i in range(0, 144, 48)]
    assert [str(v % ORDER) for v in draws] == sa["expand_field key16 count 3 mod P-256 order"]
    assert [v % 65537 for v in draws] == sa["expand_field key16 count 3 mod 65537"]
    # mask keys are the two halves of one HKDF output; the pair's keys do not depend on the order
    pair, own = sa["pairwise_mask_keys u=3 v=7"], sa["self_mask_keys u=3"]
    assert pair == sa["pairwise_mask_keys u=7 v=3"]
    assert pair["ring"] + pair["field"] == sa["hkdf"]["pairwise-mask [3, 7]"]
    assert own["ring"] + own["field"] == sa["hkdf"]["self-mask [3]"]
    assert len({pair["ring"], pair["field"], own["ring"], own["field"]}) == 4


def test_secagg_feldman_dealing_against_its_specification():
    """The stored dealing, checked with plain integers and petlib's P-256 (not the code under
    test): the shares are the polynomial at the holders' ids mod q, ``C_i = a_i G`` compressed,
    ``C_0`` is the mask key that ``cryptography`` derived from the same scalar, each share
    satisfies ``s_j G = sum_i j^i C_i``, and the signed transcript is label | rid | u16 dealer |
    u32 length | commitments."""
    from petlib.bn import Bn

    from rangeproof.labels import SECAGG_SHARE_COMMITMENTS

    def bn(v: int) -> Bn:
        return Bn.from_decimal(str(v))

    sa = STORED["secagg"]
    d = sa["deal t=3 holders 1,2,5 secret 0x0123...20, SeededRandom(b'kat deal')"]
    coeffs = [int(a) for a in d["coefficients"]]
    assert coeffs[0] == int.from_bytes(bytes(range(1, 33)), "big")
    for j, share in d["shares"].items():
        assert int(share) == sum(a * int(j) ** i for i, a in enumerate(coeffs)) % ORDER
    enc = unhex(d["commitments"])
    assert len(enc) == 6 * 33
    pts = [point_from_bytes_compact(enc[i:i + 33]) for i in range(0, 6 * 33, 33)]
    G = pts[0].group.generator()
    assert [p.export() for p in pts[:3]] == [(bn(a) * G).export() for a in coeffs]
    assert enc[:33].hex() == sa["P-256 mask key 0x0123...20 public (compressed)"]
    for j, share in d["shares"].items():
        rhs = pts[0] + bn(int(j)) * pts[1] + bn(int(j) ** 2) * pts[2]
        assert (bn(int(share)) * G).export() == rhs.export()
    rid = bytes.fromhex(sa["inputs"]["round_id"])
    want = SECAGG_SHARE_COMMITMENTS + rid + (3).to_bytes(2, "big") + len(enc).to_bytes(4, "big") + enc
    assert unhex(sa["commitments_transcript dealer 3"]) == want


# --- proofs: the stored bytes verify, the seeded prover reproduces them, one changed byte fails ------

def _norm_case(name):
    case = STORED[name]
    st = gen.norm_statement(case["statement"], case["statement"]["norm"])
    return st, point_from_bytes_compact(bytes.fromhex(case["commitment"])), unhex(case["proof"])


@pytest.mark.parametrize("name", ["l2_proof", "linf_proof"])
def test_stored_norm_proof_verifies(name):
    st, C, data = _norm_case(name)
    assert len(data) == STORED[name]["proof_len"]
    verify(st, C, data)
    assert verify_batch([(st, C, data)], rng=random.Random(0).getrandbits) == [True]


@pytest.mark.parametrize("name", ["l2_proof", "linf_proof"])
def test_seeded_prover_reproduces_the_stored_norm_proof(fresh, name):
    assert fresh[name]["commitment"] == STORED[name]["commitment"]
    assert unhex(fresh[name]["proof"]) == unhex(STORED[name]["proof"])


@pytest.mark.parametrize("name", ["l2_proof", "linf_proof"])
def test_one_changed_byte_of_the_stored_norm_proof_is_rejected(name):
    st, C, data = _norm_case(name)
    for pos in (len(data) // 3, len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        with pytest.raises((EncodingError, VerificationError)):
            verify(st, C, proof_from_bytes(st, bytes(bad)))
    st_other = gen.norm_statement(dict(STORED[name]["statement"], round_id=st.round_id + 1), st.norm)
    with pytest.raises(VerificationError):
        verify(st_other, C, data)


def _range_case():
    case = STORED["range_proof"]
    V = [point_from_bytes_compact(bytes.fromhex(h)) for h in case["commitments"]]
    return case, V, unhex(case["proof_compact"])


def test_stored_range_proof_verifies_and_one_changed_byte_fails():
    case, V, data = _range_case()
    RangeProof.from_bytes_compact(data).verify(gen.range_transcript(case), V, case["bits"])
    for pos in (len(data) // 2, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        with pytest.raises((EncodingError, VerificationError)):
            RangeProof.from_bytes_compact(bytes(bad)).verify(gen.range_transcript(case), V, case["bits"])


def test_seeded_prover_reproduces_the_stored_range_proof(fresh):
    assert fresh["range_proof"]["commitments"] == STORED["range_proof"]["commitments"]
    assert unhex(fresh["range_proof"]["proof_compact"]) == unhex(STORED["range_proof"]["proof_compact"])
