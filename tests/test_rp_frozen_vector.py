"""A frozen proof: the protocol (transcript, generators, encoding) must not drift silently.

The vector below was made by this package's first version with a seeded random source. If a
change to the transcript, the generators, the prover or the encoding alters it, this test fails:
such a change breaks every proof already sent and needs a new protocol version label.
"""
import random

from rangeproof import ORDER, RangeProof, Transcript
from rangeproof.group import point_from_bytes_compact

FROZEN_COMMITMENT = bytes.fromhex(
    "0356e767ae8757a9e15942bf006948db83729b219d42cd79ada285bed64abb19ad")
FROZEN_PROOF = bytes.fromhex(
    "038a8ea5403e3c267b233c9ed86742ef5c942a74c64928b0522cb5ad86d42d26ea03840dd55ca16bcee50b58"
    "57166f5c4037034a4ba2bddd63ab4be21929a6b6ae8002006903fd674995e7935cb52a2624cad74764fc65cb"
    "f763efdb6556e79262f2740302e249d4383a995b337b5549b399918380cd568edaf33c2b50a90ecdb4388567"
    "ac77b0374f62a94e4afb8936e4f4c0fb7baf318657a0790af8be4a78d0fb524757d3d6e481681aba1d768fc1"
    "249dc8e3ac4b185cc46bdffdd9b480c7f68f0d924e45e3960208db7b04effb806fed3f57d1dd35d1303bda61"
    "253c6f8d5899e70e02a0ac7eb17f7df9a26abdcb963196908d6760842d77c378b804950c0643f3b17002ba49"
    "13b6d41e1fdc9f47b31e291ace3e2277119b4e50ce545ab27e6c4630f4be02809c529da4c79d3beed6d55722"
    "75208fac851c19b444ceb00056e7e40b51ba2a02e55e8d9e822b6cf152b2026953e2520252f28fd2486f9312"
    "3cc8bcc205a6254702e3539c9d74cc1469a215834acabb44c44cbaaaf5d38b6d76f45eab7c270c77410394c2"
    "9df3fe46e420c3f42919943279869f7e04c931bf704c6d4c6c23c385f73c11cf86c53d7475064299eb207d8f"
    "a93e178ea577ce3834fd5fb709ed7e4ec3aba569f077d6f08719c08ed11b8691dafe2680ccc619172b9a57e7"
    "11dd7e06f20b")


def _transcript():
    t = Transcript(b"sabre frozen vector")
    t.domain_sep(b"frozen v1", round=1)
    return t


def test_frozen_proof_still_verifies():
    proof = RangeProof.from_bytes_compact(FROZEN_PROOF)
    proof.verify(_transcript(), [point_from_bytes_compact(FROZEN_COMMITMENT)], 8)


def test_seeded_prover_reproduces_the_frozen_proof():
    rng = random.Random(2024)
    proof, V = RangeProof.prove(_transcript(), [200], [rng.randrange(ORDER)], 8,
                                rng=rng.getrandbits)
    assert proof.to_bytes_compact() == FROZEN_PROOF
    assert V == [point_from_bytes_compact(FROZEN_COMMITMENT)]
