"""One error tree with blame: every error the project raises on purpose is a ``SabreError``;
protocol faults name the clients at fault in ``blamed`` and say why in ``reason``."""
from __future__ import annotations

import ast
import dataclasses
import pathlib

import pytest

from fl.cli import main
from rangeproof.blame import AggregationError, ConfigError, InvalidUpdate, RoundFailed, SabreError
from secagg.client import SecAggClient
from secagg.errors import AuthenticationFailed, NonFiniteInput, ProtocolViolation, ReplayedMessage, SecAggError
from secagg.keys import SigningKey
from secagg.messages import decode_message
from secagg.params import SecAggParams
from secagg.randomness import SeededRandom
from secagg.server import SecAggServer

ROOT = pathlib.Path(__file__).resolve().parents[1]
ROUND = bytes(range(16))


def _exception_classes():
    """Every class the project's packages define that derives (syntactically) from an exception."""
    found = []
    for package in ("fl", "secagg", "rangeproof", "attacks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                        isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception")) or b.id in
                                                     {"RoundFailed", "ProofError", "SecAggError"})
                        for b in node.bases):
                    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    found.append((module, node.name))
    return found


def test_one_root_for_every_project_error():
    import importlib

    classes = _exception_classes()
    assert len(classes) >= 30
    for module, name in classes:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, SabreError), f"{module}.{name} is not a SabreError"


def test_one_config_error_and_the_families():
    import attacks.errors
    import fl.config
    import fl.data.errors
    import rangeproof.errors
    import secagg.errors

    assert fl.config.ConfigError is secagg.errors.ConfigError is ConfigError
    for family in (SecAggError, rangeproof.errors.ProofError, fl.data.errors.DataError, attacks.errors.AttackError,
                   AggregationError, InvalidUpdate):
        assert issubclass(family, SabreError)
    assert issubclass(RoundFailed, AggregationError) and issubclass(NonFiniteInput, InvalidUpdate)


def test_blamed_is_sorted_distinct_ints_and_reason_defaults_to_the_class():
    e = ReplayedMessage("x", blamed=[5, 2, 5])
    assert e.blamed == (2, 5) and e.reason == "replayed_message"
    assert ProtocolViolation("x", reason="reused_public_key").reason == "reused_public_key"
    assert SabreError("x").blamed == ()
    with pytest.raises(TypeError):
        SabreError("x", blamed=[True])
    r = RoundFailed("too_few", "text", blamed=(3,))
    assert (r.reason, r.blamed, str(r)) == ("too_few", (3,), "text")


def _round(active=False):
    params = SecAggParams(num_clients=4, threshold=3, active=active)
    signing = {u: SigningKey.generate(SeededRandom(u + 50)) for u in params.client_ids}
    verify = {u: k.verify_key for u, k in signing.items()} if active else None
    clients = {u: SecAggClient(params, u, ROUND, signing_key=signing[u] if active else None, verify_keys=verify,
                               rng=SeededRandom(u)) for u in params.client_ids}
    return params, clients, SecAggServer(params, ROUND, 3, verify_keys=verify)


def _wire(m):
    return decode_message(m.encode())


def test_server_refusals_blame_the_sender():
    params, clients, server = _round()
    ads = {u: c.advertise_keys() for u, c in clients.items()}
    server.receive_advertise(_wire(ads[1]))
    with pytest.raises(ReplayedMessage) as info:
        server.receive_advertise(_wire(ads[1]))
    assert info.value.blamed == (1,)
    with pytest.raises(ProtocolViolation) as info:  # client 2 advertises client 1's keys
        server.receive_advertise(dataclasses.replace(ads[1], sender=2))
    assert info.value.blamed == (2,) and info.value.reason == "reused_public_key"


def test_bad_signature_blames_the_signer():
    params, clients, server = _round(active=True)
    ad = clients[3].advertise_keys()
    with pytest.raises(AuthenticationFailed) as info:
        server.receive_advertise(dataclasses.replace(ad, signature=bytes(64)))
    assert info.value.blamed == (3,) and info.value.reason == "bad_signature"


def test_cli_catches_the_root_and_prints_the_blame(capsys, monkeypatch):
    import secagg.bench

    def boom(argv):
        raise ProtocolViolation("server: client 7 reuses a public key", blamed=(7,))

    monkeypatch.setattr(secagg.bench, "main", boom)
    assert main(["bench", "secagg"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "client 7 reuses" in err and "(blamed: 7)" in err
