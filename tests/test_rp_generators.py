"""Generators: deterministic, prefix-stable, independent across labels; the disk cache."""
import importlib

import pytest

from rangeproof.generators import (
    clear_memory_cache,
    disable_disk_cache,
    enable_disk_cache,
    generators,
    pedersen_bases,
)
from rangeproof.group import curve, point_to_bytes

# ``rangeproof.generators`` as an attribute is the function; the module holds the cache helpers.
gens_mod = importlib.import_module("rangeproof.generators")


def test_deterministic_and_prefix_stable():
    a = generators(b"test-gens", 16)
    clear_memory_cache()
    b = generators(b"test-gens", 8)
    c = generators(b"test-gens", 32)
    assert a[:8] == b
    assert c[:16] == a
    assert generators(b"test-gens", 0) == []


def test_points_are_valid_distinct_and_label_separated():
    a = generators(b"label-a", 32)
    b = generators(b"label-b", 32)
    B, B_blinding = pedersen_bases()
    encoded = {point_to_bytes(P) for P in a + b + [B, B_blinding]}
    assert len(encoded) == 66
    G = curve()
    assert all(G.check_point(P) and not P.is_infinite() for P in a + b)
    assert G.generator() not in a + b + [B, B_blinding]


def test_label_framing_is_unambiguous():
    # Labels are length-prefixed: b"ab" index 0 is not b"a" with some shifted index.
    assert generators(b"ab", 1)[0] != generators(b"a", 1)[0]
    assert generators(b"", 1)[0] != generators(b"\x00", 1)[0]


def test_bad_arguments():
    with pytest.raises(TypeError):
        generators("text", 1)
    with pytest.raises(ValueError):
        generators(b"x", -1)


def test_returned_list_is_a_copy():
    a = generators(b"copy-test", 4)
    a.clear()
    assert len(generators(b"copy-test", 4)) == 4


def test_disk_cache_round_trip_and_tamper_detection(tmp_path):
    try:
        enable_disk_cache(tmp_path)
        clear_memory_cache()
        fresh = generators(b"disk-test", 40)
        files = list(tmp_path.iterdir())
        assert len(files) == 1
        clear_memory_cache()
        assert generators(b"disk-test", 40) == fresh        # loaded from disk
        assert generators(b"disk-test", 50)[:40] == fresh   # extended and rewritten

        # A corrupted file (digest mismatch) is ignored and replaced by derivation.
        blob = bytearray(files[0].read_bytes())
        blob[100] ^= 1
        files[0].write_bytes(bytes(blob))
        clear_memory_cache()
        assert generators(b"disk-test", 50)[:40] == fresh

        # A file with valid digest but wrong points fails the spot checks.
        gens_mod._store_to_disk(b"disk-test", generators(b"disk-other", 50))
        clear_memory_cache()
        assert generators(b"disk-test", 50)[:40] == fresh
        # ... and the file now holds the right points again.
        assert gens_mod._load_from_disk(b"disk-test")[:40] == fresh
    finally:
        disable_disk_cache()
        clear_memory_cache()


def test_deriving_generators_leaves_no_openssl_errors_in_the_thread():
    """petlib's try-and-increment leaves an OpenSSL error per rejected x in the thread's queue; a
    TLS handshake later on the same thread read them as its own failure ("invalid compressed
    point"). Derivation drains them."""
    from petlib.bindings import _C

    from rangeproof.generators import generators

    generators(b"test: the OpenSSL error queue", 64)
    assert _C.ERR_get_error() == 0
