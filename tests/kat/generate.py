"""Writes ``tests/kat/derivations.json``: known-answer vectors of every derivation of randomness.

Run from the repository root::

    python tests/kat/generate.py          # rewrite the file
    python tests/kat/generate.py --check  # exit 1 (and name the sections) if it is out of date

Each section is computed by calling the packages' real public functions on fixed inputs, so the
file changes exactly where a derivation changes: a label, an encoding, a key schedule, a keystream
position, a transcript record, a prover's order of operations. ``tests/test_kat.py`` checks that
the code still reproduces the file, and checks the transcript and the projection against their
written specifications independently of the code.

Sections:

* ``labels``: the label registry (:mod:`rangeproof.labels`).
* ``transcript``: a fixed sequence of :class:`rangeproof.Transcript` operations with the exact
  bytes each one absorbed and every challenge it squeezed.
* ``generators``: the first points of every generator list.
* ``projection``: keys and entries of the L2 proof's ternary projection matrix.
* ``secagg``: HKDF outputs, mask keys, ring and field masks, signed transcripts, the P-256 mask
  key and its ECDH, a Feldman dealing (shares and commitments), the seeded random source, share
  encryption and the SecAgg+ graph.
* ``l2_proof``, ``linf_proof``: one seeded norm proof of each kind, with its statement, vector,
  commitment, the bytes its statement transcript absorbed and the proof bytes.
* ``range_proof``: one seeded aggregated range proof.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import rangeproof.transcript as transcript_module  # noqa: E402
from rangeproof import RangeProof, Transcript  # noqa: E402
from rangeproof.generators import generators, pedersen_bases  # noqa: E402
from rangeproof.group import ORDER, curve, identity, point_to_bytes, point_to_bytes_compact  # noqa: E402
import rangeproof.labels as labels  # noqa: E402
from rangeproof.labels import RANGE_G, RANGE_H, registry  # noqa: E402
from rangeproof.norm import NormStatement, commit_vector, prove  # noqa: E402
from rangeproof.norm.commitment import vector_generators  # noqa: E402
from rangeproof.norm.projection import BLOCK, Projection, projection_key  # noqa: E402
from secagg.graph import neighbours  # noqa: E402
from secagg.keys import MaskKey, encrypt_share, hkdf  # noqa: E402
from secagg.masking import pairwise_mask_keys, self_mask_keys  # noqa: E402
from secagg.params import SecAggParams  # noqa: E402
from secagg.prg import expand_field, expand_ring  # noqa: E402
from secagg.randomness import SeededRandom, randbelow  # noqa: E402
from secagg.shamir import deal  # noqa: E402
from secagg.transcripts import advertise_transcript, commitments_transcript, consistency_transcript  # noqa: E402
from secagg.vss import Commitments, commit_polynomial  # noqa: E402

PATH = Path(__file__).with_name("derivations.json")

HEX_LINE = 64
"""Bytes per line of long hex strings (so a diff shows where in a proof the bytes moved)."""


def hexlines(data: bytes) -> str | list[str]:
    """Hex of ``data``: one string when short, else a list of lines of :data:`HEX_LINE` bytes."""
    data = bytes(data)
    if len(data) <= HEX_LINE:
        return data.hex()
    return [data[i:i + HEX_LINE].hex() for i in range(0, len(data), HEX_LINE)]


def unhex(value: str | list[str]) -> bytes:
    """Inverse of :func:`hexlines`."""
    return bytes.fromhex(value if isinstance(value, str) else "".join(value))


# --- recording what a transcript absorbs ----------------------------------------------------------

class RecordingState:
    """Stands in for a transcript's SHAKE-256 state: logs every absorbed byte string and forwards it.

    ``copy()`` (which the transcript calls to squeeze a challenge) returns a copy of the real
    state, and notes how many bytes had been absorbed when it was called.
    """

    def __init__(self) -> None:
        self.real = hashlib.shake_256()
        self.absorbed = bytearray()
        self.squeezes: list[int] = []

    def update(self, data: bytes) -> None:
        self.absorbed += bytes(data)
        self.real.update(data)

    def copy(self):
        self.squeezes.append(len(self.absorbed))
        return self.real.copy()


def recording_transcript(label: bytes) -> tuple[Transcript, RecordingState]:
    """A real :class:`Transcript` whose state is a :class:`RecordingState` from its first byte on."""
    state = RecordingState()
    fake = types.SimpleNamespace(shake_256=lambda: state)
    with mock.patch.object(transcript_module, "hashlib", fake):
        t = Transcript(label)
    if t._state is not state:
        raise RuntimeError("Transcript no longer takes its state from hashlib.shake_256(): "
                           "update RecordingState's hook in tests/kat/generate.py")
    return t, state


# --- 1. transcript --------------------------------------------------------------------------------

TRANSCRIPT_LABEL = b"kat transcript"
TRANSCRIPT_OPS: list[dict] = [
    {"op": "domain_sep", "protocol": "kat protocol",
     "params": [["n", "int", 64], ["neg", "int", -129], ["zero", "int", 0], ["big", "int", 2 ** 256 + 1],
                ["blob", "bytes", "0001ff"], ["empty", "bytes", ""]]},
    {"op": "append_message", "label": "msg", "data": b"hello, transcript".hex()},
    {"op": "append_message", "label": "", "data": ""},
    {"op": "append_u64", "label": "u64", "value": 2 ** 64 - 1},
    {"op": "append_u64", "label": "u64", "value": 0},
    {"op": "append_point", "label": "G", "point": point_to_bytes(curve().generator()).hex()},
    {"op": "append_point", "label": "O", "point": point_to_bytes(identity()).hex()},
    {"op": "append_scalar", "label": "s", "value": ORDER + 5},
    {"op": "challenge_bytes", "label": "c32", "n": 32},
    {"op": "challenge_scalar", "label": "x"},
    {"op": "challenge_bytes", "label": "c1", "n": 1},
    {"op": "challenge_bytes", "label": "c200", "n": 200},
    {"op": "append_message", "label": "after", "data": bytes(range(40)).hex()},
    {"op": "challenge_scalar", "label": "y"},
]
"""The operations, as data (labels and protocol names as ASCII text, other byte strings in hex);
the test replays them."""


def run_transcript_op(t: Transcript, op: dict):
    """Applies one operation of :data:`TRANSCRIPT_OPS` to ``t``; returns a challenge or None."""
    from rangeproof.group import point_from_bytes
    kind = op["op"]
    if kind == "domain_sep":
        params = {name: (value if typ == "int" else bytes.fromhex(value)) for name, typ, value in op["params"]}
        t.domain_sep(op["protocol"].encode(), **params)
    elif kind == "append_message":
        t.append_message(op["label"].encode(), bytes.fromhex(op["data"]))
    elif kind == "append_u64":
        t.append_u64(op["label"].encode(), op["value"])
    elif kind == "append_point":
        t.append_point(op["label"].encode(), point_from_bytes(bytes.fromhex(op["point"]), allow_identity=True))
    elif kind == "append_scalar":
        t.append_scalar(op["label"].encode(), op["value"])
    elif kind == "challenge_bytes":
        return t.challenge_bytes(op["label"].encode(), op["n"]).hex()
    elif kind == "challenge_scalar":
        return t.challenge_scalar(op["label"].encode())
    else:
        raise ValueError(f"unknown transcript operation {kind!r}")
    return None


def transcript_section() -> dict:
    t, state = recording_transcript(TRANSCRIPT_LABEL)
    steps = [{"op": "new", "label": TRANSCRIPT_LABEL.decode(), "absorbed": state.absorbed.hex()}]
    for op in TRANSCRIPT_OPS:
        before, squeezes = len(state.absorbed), len(state.squeezes)
        out = run_transcript_op(t, op)
        step = dict(op, absorbed=bytes(state.absorbed[before:]).hex())
        if out is not None:
            step["squeezed_after"] = state.squeezes[squeezes:]  # absorbed length at each squeeze
            step["output"] = out
        steps.append(step)
    return {
        "record_format": "op (1 byte: 'M' message, 'C' challenge) || u32 BE len(label) || label "
                         "|| u64 BE len(data) || data; a challenge of n bytes absorbs data = u64 BE n, "
                         "then returns SHAKE-256(everything absorbed).digest(n); challenge_scalar "
                         "= int(challenge_bytes(label, 64)) mod q (redrawn if 0)",
        "steps": steps,
        "absorbed_total": len(state.absorbed),
        "absorbed_sha256": hashlib.sha256(state.absorbed).hexdigest(),
    }


# --- 2. generators --------------------------------------------------------------------------------

def generators_section() -> dict:
    B, Bt = pedersen_bases()
    lists = {
        "pedersen B, B~": [B, Bt],
        "range G": generators(RANGE_G, 2),
        "range H": generators(RANGE_H, 2),
        "norm vector G": vector_generators(2),
    }
    return {name: [point_to_bytes_compact(P).hex() for P in pts] for name, pts in lists.items()}


# --- 3. projection --------------------------------------------------------------------------------

PROJECTION_CASES = [
    {"name": "small", "seed": hashlib.sha256(b"kat projection small").hexdigest(), "rows": 16, "dim": BLOCK + 37},
    {"name": "large", "seed": hashlib.sha256(b"kat projection large").hexdigest(), "rows": 512, "dim": 33000},
]


def _signs(entries) -> str:
    """Ternary entries as a string of ``+``, ``-`` and ``0``."""
    return "".join("+" if v > 0 else "-" if v < 0 else "0" for v in entries)


def projection_case(case: dict) -> dict:
    seed, K, d = bytes.fromhex(case["seed"]), case["rows"], case["dim"]
    P = Projection(seed, K, d)
    first = P.block(0)  # shape (cols, K)
    second = P.block(1)
    last_b = (d - 1) // BLOCK
    last = P.block(last_b)
    dense = P.dense()
    assert dense.shape == (K, d) and dense.dtype == np.int8
    cross = list(first[BLOCK - 6:, 0]) + list(second[:5, 0])  # row 0, columns 4090..4100
    return {
        "name": case["name"], "seed": case["seed"], "rows": K, "dim": d,
        "key": projection_key(seed, K, d).hex(),
        "row0_cols_0_63": _signs(first[:64, 0]),
        "row1_cols_0_63": _signs(first[:64, 1]),
        f"row0_cols_{BLOCK - 6}_{BLOCK + 4}": _signs(cross),
        f"row{K - 1}_cols_{d - 8}_{d - 1}": _signs(last[(d - 8) - last_b * BLOCK:, K - 1]),
        "dense_int8_sha256": hashlib.sha256(dense.tobytes()).hexdigest(),
    }


def projection_section() -> dict:
    return {
        "entry_format": "'+' = 1, '-' = -1, '0' = 0; dense_int8_sha256 is over the (rows, dim) "
                        "int8 matrix in row-major order",
        "cases": [projection_case(c) for c in PROJECTION_CASES],
    }


# --- 4. secagg ------------------------------------------------------------------------------------

SA_IKM = hashlib.sha256(b"kat secagg ikm").digest()
SA_ROUND = bytes(range(16))
SA_KEY16 = bytes(range(0x40, 0x50))
SA_KEY32 = bytes(range(0x60, 0x80))


def secagg_section() -> dict:
    hk = {}
    purposes = (("pairwise-mask", labels.SECAGG_PAIRWISE_MASK, (3, 7)),
                ("self-mask", labels.SECAGG_SELF_MASK, (3,)),
                ("share-encryption", labels.SECAGG_SHARE_ENCRYPTION, (3, 7)))
    for name, purpose, ids in purposes:
        hk[f"{name} {list(ids)}"] = hkdf(SA_IKM, SA_ROUND, purpose, *ids).hex()
    hk["self-mask [3] length 64"] = hexlines(hkdf(SA_IKM, SA_ROUND, labels.SECAGG_SELF_MASK, 3, length=64))
    pw = pairwise_mask_keys(SA_IKM, SA_ROUND, 3, 7)
    pw_rev = pairwise_mask_keys(SA_IKM, SA_ROUND, 7, 3)
    sm = self_mask_keys(SA_IKM, SA_ROUND, 3)
    params = SecAggParams(num_clients=10, threshold=3, degree=4)
    graph = neighbours(params, SA_ROUND)
    rng = SeededRandom(2024)
    key_a = MaskKey(int.from_bytes(bytes(range(1, 33)), "big"))
    key_b = MaskKey(int.from_bytes(bytes(range(0x21, 0x41)), "big"))
    shares, coefficients = deal(key_a.private_scalar, [1, 2, 5], 3, SeededRandom(b"kat deal"))
    b_shares, b_coefficients = deal(12345, [1, 2, 5], 3, SeededRandom(b"kat deal b"))
    commitments = Commitments.from_points(commit_polynomial(coefficients), commit_polynomial(b_coefficients))
    return {
        "inputs": {"ikm": SA_IKM.hex(), "round_id": SA_ROUND.hex(), "key16": SA_KEY16.hex(),
                   "key32": SA_KEY32.hex()},
        "hkdf": hk,
        "pairwise_mask_keys u=3 v=7": {"ring": pw.ring.hex(), "field": pw.field.hex()},
        "pairwise_mask_keys u=7 v=3": {"ring": pw_rev.ring.hex(), "field": pw_rev.field.hex()},
        "self_mask_keys u=3": {"ring": sm.ring.hex(), "field": sm.field.hex()},
        "expand_ring key16 dim 8 bits 32": [int(v) for v in expand_ring(SA_KEY16, 8, 32)],
        "expand_ring key16 dim 4 bits 64": [int(v) for v in expand_ring(SA_KEY16, 4, 64)],
        "expand_field key16 count 3 mod P-256 order": [str(v) for v in expand_field(SA_KEY16, 3, ORDER)],
        "expand_field key16 count 3 mod 65537": expand_field(SA_KEY16, 3, 65537),
        "advertise_transcript": hexlines(advertise_transcript(SA_ROUND, 3, bytes(32), key_a.public_bytes)),
        "consistency_transcript": hexlines(consistency_transcript(SA_ROUND, SA_KEY32, (1, 3, 7))),
        "P-256 mask key 0x0123...20 public (compressed)": key_a.public_bytes.hex(),
        "P-256 ECDH of the two mask keys": key_a.agree(key_b.public_bytes).hex(),
        "deal t=3 holders 1,2,5 secret 0x0123...20, SeededRandom(b'kat deal')": {
            "coefficients": [str(a) for a in coefficients],
            "shares": {str(h): str(v) for h, v in sorted(shares.items())},
            "commitments": hexlines(commitments.encoded),
        },
        "commitments_transcript dealer 3": hexlines(commitments_transcript(SA_ROUND, 3, commitments.encoded)),
        "encrypt_share key32 3->7": hexlines(encrypt_share(SA_KEY32, SA_ROUND, 3, 7, b"kat share bundle")),
        "SeededRandom(0) first 32 bytes": SeededRandom(0).bytes(32).hex(),
        "SeededRandom(2024) first 48 bytes": rng.bytes(48).hex(),
        "SeededRandom(2024) next randbelow(1000) x4": [randbelow(rng, 1000) for _ in range(4)],
        "SeededRandom(b'kat') first 32 bytes": SeededRandom(b"kat").bytes(32).hex(),
        "neighbours n=10 degree=4": {str(u): sorted(vs) for u, vs in sorted(graph.items())},
    }


# --- 5. norm proofs -------------------------------------------------------------------------------

L2_CASE = {"seed": 7, "round_id": 3, "client_id": 5, "dim": 700, "bound": 1024, "scale": 1024.0}
LINF_CASE = {"seed": 8, "round_id": 3, "client_id": 5, "dim": 8, "bound": 100, "scale": 256.0,
             "x": [100, -100, 0, 1, -1, 37, -58, 99]}


def l2_vector(case: dict) -> list[int]:
    """A fixed in-bound vector (norm about 0.9 M), from numpy's seeded generator."""
    v = np.random.default_rng(case["seed"]).normal(size=case["dim"])
    return np.trunc(v * (0.9 * case["bound"] / np.linalg.norm(v))).astype(np.int64).tolist()


def norm_statement(case: dict, norm: str) -> NormStatement:
    return NormStatement(round_id=case["round_id"], client_id=case["client_id"], dim=case["dim"], norm=norm,
                         bound=case["bound"], scale=case["scale"])


def seeded_norm_proof(st: NormStatement, x: list[int], seed: int):
    """``(C, r, proof)`` from ``random.Random(seed).getrandbits``, commitment first (as the tests do)."""
    rnd = random.Random(seed)
    xa = np.array(x, dtype=np.int64)
    C, r = commit_vector(xa, rng=rnd.getrandbits)
    return C, r, prove(st, xa, C, r, rng=rnd.getrandbits)


def _statement_transcript(st: NormStatement, C) -> tuple[Transcript, RecordingState]:
    """``st.transcript(C)``, recorded from its first byte."""
    state = RecordingState()
    fake = types.SimpleNamespace(shake_256=lambda: state)
    with mock.patch.object(transcript_module, "hashlib", fake):
        t = st.transcript(C)
    if t._state is not state:
        raise RuntimeError("the statement transcript was not recorded: update tests/kat/generate.py")
    return t, state


def norm_section(case: dict, norm: str) -> dict:
    st = norm_statement(case, norm)
    x = l2_vector(case) if norm == "l2" else list(case["x"])
    C, r, proof = seeded_norm_proof(st, x, case["seed"])
    t, state = _statement_transcript(st, C)
    out = {
        "rng": f"random.Random({case['seed']}).getrandbits: commit_vector, then prove",
        "statement": {"round_id": st.round_id, "client_id": st.client_id, "dim": st.dim, "norm": st.norm,
                      "bound": st.bound, "scale": st.scale},
        "public_parameters": {k: (v.hex() if isinstance(v, bytes) else v)
                              for k, v in sorted(st.public_parameters().items())},
        "x": x,
        "commitment": point_to_bytes_compact(C).hex(),
        "blinding": hex(r),
        "statement_transcript_absorbed": hexlines(state.absorbed),
    }
    if norm == "l2":
        out["projection_seed"] = t.challenge_bytes(b"projection seed", 32).hex()
        out["projection_seed_absorbed_len"] = state.squeezes[-1]
    data = proof.to_bytes()
    out["proof_len"] = len(data)
    out["proof"] = hexlines(data)
    return out


def l2_section() -> dict:
    return norm_section(L2_CASE, "l2")


def linf_section() -> dict:
    return norm_section(LINF_CASE, "linf")


# --- 6. range proof -------------------------------------------------------------------------------

RANGE_CASE = {"seed": 2024, "label": "kat range proof", "protocol": "kat v1", "round": 1, "values": [200, 7],
              "bits": 8}


def range_transcript(case: dict) -> Transcript:
    t = Transcript(case["label"].encode())
    t.domain_sep(case["protocol"].encode(), round=case["round"])
    return t


def seeded_range_proof(case: dict):
    rng = random.Random(case["seed"])
    blindings = [rng.randrange(ORDER) for _ in case["values"]]
    return RangeProof.prove(range_transcript(case), case["values"], blindings, case["bits"], rng=rng.getrandbits)


def range_section() -> dict:
    proof, V = seeded_range_proof(RANGE_CASE)
    data = proof.to_bytes_compact()
    return dict(RANGE_CASE,
                rng=f"random.Random({RANGE_CASE['seed']}): randrange(q) per blinding, then getrandbits",
                commitments=[point_to_bytes_compact(P).hex() for P in V],
                proof_len=len(data), proof_compact=hexlines(data))


# --- the file -------------------------------------------------------------------------------------

SECTIONS = {
    "labels": lambda: {name: value.decode("ascii") for name, value in sorted(registry().items())},
    "transcript": transcript_section,
    "generators": generators_section,
    "projection": projection_section,
    "secagg": secagg_section,
    "l2_proof": l2_section,
    "linf_proof": linf_section,
    "range_proof": range_section,
}


def normalized(value):
    """``value`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


def build(names=None) -> dict:
    """Every section (or those named), freshly computed, JSON-normalized."""
    return {name: normalized(SECTIONS[name]()) for name in (names or SECTIONS)}


def _dump(value, indent: int = 0) -> str:
    """JSON with one line per dict entry and per hex line; short lists of scalars on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {_dump(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if all(isinstance(v, (int, float)) for v in value) or \
                (all(not isinstance(v, (dict, list)) for v in value) and len(json.dumps(value)) <= 200):
            return json.dumps(value)
        items = [f"{inner}{_dump(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)


def render(data: dict) -> str:
    head = {"about": "Known-answer vectors of sabre's derivations; written by tests/kat/generate.py, "
                     "checked by tests/test_kat.py. Bytes are hex; long ones are lists of 64-byte lines."}
    return _dump({**head, **data}) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = ap.parse_args(argv)
    data = build()
    text = render(data)
    if args.check:
        stored = json.loads(PATH.read_text()) if PATH.exists() else {}
        stale = [name for name in data if stored.get(name) != data[name]]
        if stale:
            print("out of date: " + ", ".join(stale))
            return 1
        print(f"{PATH.name} is up to date")
        return 0
    PATH.write_text(text)
    print(f"wrote {PATH.relative_to(ROOT)} ({len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
