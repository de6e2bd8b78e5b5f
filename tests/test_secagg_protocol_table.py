"""The protocol table (secagg.protocol): its rows name real methods, its frame bounds hold every
legitimate message (and are reached), a message over its step's bound is refused in process too,
and a commitment vector of the wrong length is refused before any point is decoded."""
from __future__ import annotations

import numpy as np
import pytest

from secagg.client import SecAggClient
from secagg.driver import run_round
from secagg.encoding import MAGIC, VERSION
from secagg.errors import MalformedMessage, OversizedMessage
from secagg.keys import SigningKey
from secagg.messages import AdvertiseKeys, ShareKeys, SharesDelivery, decode_message
from secagg.params import SecAggParams
from secagg.protocol import (
    PROTOCOL,
    client_answer,
    max_frame_bytes,
    max_request_bytes,
    protocol_steps,
    server_close,
    step_named,
)
from secagg.randomness import SeededRandom
from secagg.server import SecAggServer
from secagg.steps import STEPS
from secagg.vss import _decode_vector

RID = bytes(range(16))
DIM = 24


def test_rows_name_real_methods_in_protocol_order():
    for spec in PROTOCOL:
        assert callable(getattr(SecAggClient, spec.answer)) and callable(getattr(SecAggServer, spec.receive))
        assert callable(getattr(SecAggServer, spec.close)) and spec.dropout in STEPS
    assert [s.name for s in protocol_steps(SecAggParams(num_clients=4, threshold=3))] == [
        "advertise_keys", "share_keys", "receipt", "masked_input", "unmask"]
    assert "consistency_check" in [s.name for s in protocol_steps(SecAggParams(num_clients=6, threshold=4, active=True))]
    assert PROTOCOL[-1].close == "finish"
    with pytest.raises(KeyError):
        step_named("nope")


def _walk(params: SecAggParams, seed: int):
    """One whole round through the table with real clients and server; the sizes of every
    client message and every request, by step."""
    rng = SeededRandom(seed)
    ids = list(params.client_ids)
    signing = {u: SigningKey.generate(rng) for u in ids} if params.active else {}
    verify = {u: k.verify_key for u, k in signing.items()} if params.active else None
    clients = {u: SecAggClient(params, u, RID, signing_key=signing.get(u), verify_keys=verify, rng=rng) for u in ids}
    server = SecAggServer(params, RID, DIM, verify_keys=verify)
    xs = {u: np.arange(DIM, dtype=np.uint64).astype(np.uint32 if params.mask_bits <= 32 else np.uint64) * u for u in ids}
    fx = {u: tuple(range(u, u + params.field_dim)) for u in ids}
    sent: dict[str, list[int]] = {}
    asked: dict[str, list[int]] = {}
    requests: dict = {u: None for u in ids}
    for spec in protocol_steps(params):
        for u, req in requests.items():
            if req is not None:
                asked.setdefault(spec.name, []).append(len(req.encode()))
            data = client_answer(clients[u], spec, req, xs[u], fx[u]).encode()
            sent.setdefault(spec.name, []).append(len(data))
            getattr(server, spec.receive)(decode_message(data, max_frame_bytes(spec, params, DIM),
                                                         threshold=params.threshold))
        if spec.close == "finish":
            return server.finish(), xs, sent, asked
        requests = server_close(server, spec)
    raise AssertionError("the table ends with finish")


@pytest.mark.parametrize("params", [
    SecAggParams(num_clients=5, threshold=3),
    SecAggParams(num_clients=8, threshold=3, degree=4),
    SecAggParams(num_clients=5, threshold=3, mask_bits=64, field_dim=2),
    SecAggParams(num_clients=6, threshold=4, active=True, field_dim=1),
], ids=["complete", "sparse", "k64-field", "active"])
def test_bounds_hold_every_legitimate_message_and_are_reached(params):
    result, xs, sent, asked = _walk(params, 11)
    want = sum(x.astype(np.uint64) for x in xs.values()) & np.uint64((1 << params.mask_bits) - 1)
    assert np.array_equal(result.vector.astype(np.uint64), want)
    for spec in protocol_steps(params):
        bound = max_frame_bytes(spec, params, DIM)
        assert max(sent[spec.name]) <= bound
        if spec.name != "receipt":  # no dispute: a receipt lists nobody, its bound lists every peer
            assert max(sent[spec.name]) == bound, spec.name  # a full round reaches the bound
        if spec.request is not None:
            assert max(asked[spec.name]) <= max_request_bytes(spec, params)
    for name in ("share_keys", "receipt"):  # the key broadcast and the share delivery reach theirs
        assert max(asked[name]) == max_request_bytes(name, params)


class _PaddedAdvertiser(SecAggClient):
    """Sends a signature in the semi-honest variant: a legal encoding 65 bytes over the step's bound."""

    def advertise_keys(self) -> AdvertiseKeys:
        msg = super().advertise_keys()
        return AdvertiseKeys(msg.round_id, msg.sender, msg.c_pk, msg.s_pk, b"\x01" * 64)


def test_driver_refuses_a_message_over_its_step_bound():
    params = SecAggParams(num_clients=4, threshold=3)
    xs = {u: np.full(8, u, dtype=np.uint32) for u in params.client_ids}
    report = run_round(params, xs, seed=3, client_types={2: _PaddedAdvertiser})
    assert isinstance(report.server_refusals[2], OversizedMessage)
    assert report.result.dropped == {2: "advertise_keys"}
    assert np.array_equal(report.result.vector, xs[1] + xs[3] + xs[4])


#: the P-256 generator, compressed (a valid point: decoding it costs a square root)
_G = bytes.fromhex("036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296")


def _share_keys_bytes(t: int) -> bytes:
    """A ShareKeys encoding whose commitment vector holds ``2t`` valid points."""
    return (MAGIC + bytes([VERSION, ShareKeys.TYPE]) + RID + (1).to_bytes(2, "big") + t.to_bytes(2, "big")
            + _G * (2 * t) + b"\x00" + (0).to_bytes(2, "big"))


def test_commitment_vector_length_is_checked_against_t_before_decoding():
    """A review found a 4 MiB commitment vector cost the server seconds of point decoding
    before the t check; with the round's t the count alone refuses it."""
    big = _share_keys_bytes(16000)  # 32000 points, about 1 MiB
    _decode_vector.cache_clear()
    with pytest.raises(MalformedMessage, match="threshold"):
        decode_message(big, threshold=3)
    with pytest.raises(MalformedMessage, match="threshold"):
        ShareKeys.decode(big, threshold=3)
    assert _decode_vector.cache_info().misses == 0  # not one point was decoded
    small = _share_keys_bytes(3)
    assert decode_message(small, threshold=3).commitments.threshold == 3  # the right length decodes
    with pytest.raises(MalformedMessage, match="threshold"):
        decode_message(_share_keys_bytes(4), threshold=3)
    # the same rule on the client side: a delivery whose dealer committed to another t
    delivery = (MAGIC + bytes([VERSION, SharesDelivery.TYPE]) + RID + (2).to_bytes(2, "big") + (1).to_bytes(2, "big")
                + (1).to_bytes(2, "big") + b"\x00" * 84 + (5000).to_bytes(2, "big") + _G * 10000 + b"\x00")
    _decode_vector.cache_clear()
    with pytest.raises(MalformedMessage, match="threshold"):
        decode_message(delivery, threshold=3)
    assert _decode_vector.cache_info().misses == 0
