"""Transcripts: every absorbed byte, label and framing choice changes the challenges."""
import pytest

from rangeproof import ORDER, Transcript, VerificationError
from rangeproof.group import curve, identity


def _challenge(build):
    t = Transcript(b"test")
    build(t)
    return t.challenge_scalar(b"c")


def test_same_calls_same_challenges():
    def build(t):
        t.domain_sep(b"proto v1", n=64, m=8, round_id=b"r1")
        t.append_message(b"msg", b"hello")
        t.append_u64(b"k", 7)
        t.append_point(b"P", curve().generator())
        t.append_scalar(b"s", 12345)
    assert _challenge(build) == _challenge(build)


def test_any_flipped_bit_in_a_message_changes_the_challenge():
    data = bytes(range(16))
    base = _challenge(lambda t: t.append_message(b"m", data))
    seen = {base}
    for i in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[i] ^= 1 << bit
            seen.add(_challenge(lambda t: t.append_message(b"m", bytes(flipped))))
    assert len(seen) == 1 + 8 * len(data)


def test_appended_byte_label_and_framing_matter():
    base = _challenge(lambda t: t.append_message(b"m", b"abc"))
    variants = [
        lambda t: t.append_message(b"m", b"abc\x00"),
        lambda t: t.append_message(b"m", b"ab"),
        lambda t: t.append_message(b"n", b"abc"),
        lambda t: (t.append_message(b"m", b"ab"), t.append_message(b"m", b"c")),
        lambda t: t.append_message(b"ma", b"bc"),
        lambda t: None,
    ]
    values = [base] + [_challenge(v) for v in variants]
    assert len(set(values)) == len(values)


def test_outer_label_and_domain_parameters_bind():
    def with_label(label):
        t = Transcript(label)
        return t.challenge_scalar(b"c")
    assert with_label(b"a") != with_label(b"b")
    c1 = _challenge(lambda t: t.domain_sep(b"p", n=8, m=1))
    c2 = _challenge(lambda t: t.domain_sep(b"p", m=1, n=8))   # order of keywords is irrelevant
    c3 = _challenge(lambda t: t.domain_sep(b"p", n=8, m=2))
    c4 = _challenge(lambda t: t.domain_sep(b"p", n=8, k=1))
    c5 = _challenge(lambda t: t.domain_sep(b"p", n=-8, m=1))
    c6 = _challenge(lambda t: t.domain_sep(b"p", n=b"\x08", m=1))
    assert c1 == c2
    assert len({c1, c3, c4, c5, c6}) == 5
    with pytest.raises(TypeError):
        Transcript(b"x").domain_sep(b"p", flag=True)


def test_consecutive_challenges_differ_and_fork_is_independent():
    t = Transcript(b"x")
    t.append_message(b"m", b"data")
    f = t.fork()
    c1 = t.challenge_scalar(b"c")
    c2 = t.challenge_scalar(b"c")
    assert c1 != c2
    assert f.challenge_scalar(b"c") == c1       # fork saw the same history
    f.append_message(b"extra", b"")
    assert f.challenge_scalar(b"c") != t.challenge_scalar(b"c")


def test_challenge_ranges():
    t = Transcript(b"x")
    assert all(0 < t.challenge_scalar(b"c") < ORDER for _ in range(50))
    assert len(t.challenge_bytes(b"b", 100)) == 100
    with pytest.raises(ValueError):
        t.challenge_bytes(b"b", 0)


def test_identity_rejected_by_validating_append():
    t = Transcript(b"x")
    with pytest.raises(VerificationError):
        t.validate_and_append_point(b"P", identity())
    t.append_point(b"P", identity())  # the plain appender accepts it


def test_u64_bounds_and_types():
    t = Transcript(b"x")
    t.append_u64(b"n", 2**64 - 1)
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            t.append_u64(b"n", bad)
    with pytest.raises(TypeError):
        t.append_message("label", b"x")
    with pytest.raises(TypeError):
        t.append_message(b"label", "text")
