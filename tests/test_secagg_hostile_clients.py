"""Issue 11, item 6: faults a hostile client can cause, each refused with a typed error."""
import importlib

import numpy as np
import pytest

from rangeproof.generators import clear_memory_cache, disable_disk_cache, enable_disk_cache, generators
from secagg.errors import DecodeError, MalformedMessage, NonCanonicalEncoding, NonFiniteInput
from secagg.messages import decode_message
from secagg.params import SecAggParams
from secagg.quantize import QuantizationSpec, quantize, quantize_counting_clipped

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
