"""Cheating clients built on the real :class:`~secagg.client.SecAggClient`: each plays the
protocol honestly except for one step, so a test exercises the server's checks, not a mock.

Use them through ``run_round(..., client_types={id: cls})`` or instantiate them directly.
"""
from __future__ import annotations

import dataclasses
import types

from secagg.client import SecAggClient
from secagg.keys import decrypt_share, encrypt_share
from secagg.messages import SELF_MASK_SHARE, SHARE_PLAINTEXT_BYTES
from secagg.shamir import SHARE_BYTES, SHARE_PRIME


class LyingHolder(SecAggClient):
    """Answers the unmasking request with every share off by one."""

    def unmask(self, msg):
        resp = super().unmask(msg)
        return dataclasses.replace(resp, shares=tuple((p, k, (v + 1) % SHARE_PRIME) for p, k, v in resp.shares))


def garbage_dealer(victims):
    """A class whose share bundles to ``victims`` do not decrypt (a flipped ciphertext byte)."""

    class GarbageDealer(SecAggClient):
        def share_keys(self, msg):
            out = super().share_keys(msg)
            cts = tuple((v, bytes([blob[0] ^ 1]) + blob[1:] if v in victims else blob) for v, blob in out.ciphertexts)
            return dataclasses.replace(out, ciphertexts=cts)

    return GarbageDealer


def off_polynomial_dealer(victims, kind=SELF_MASK_SHARE):
    """A class that gives ``victims`` shares of ``kind`` off its committed polynomial (the share
    plus one, in a bundle that decrypts and names the right parties): a dealer fault that only the
    Feldman check at receipt can see. ``victims="all"`` cheats every holder."""

    class OffPolynomialDealer(SecAggClient):
        def share_keys(self, msg):
            out = super().share_keys(msg)
            cts = []
            for v, ct in out.ciphertexts:
                if victims == "all" or v in victims:
                    pt = decrypt_share(self._enc_keys[v], self.round_id, self.id, v, ct)
                    assert len(pt) == SHARE_PLAINTEXT_BYTES
                    s = int.from_bytes(pt[4:4 + SHARE_BYTES], "big")
                    b = int.from_bytes(pt[4 + SHARE_BYTES:], "big")
                    if kind == SELF_MASK_SHARE:
                        b = (b + 1) % SHARE_PRIME
                    else:
                        s = (s + 1) % SHARE_PRIME
                    pt = pt[:4] + s.to_bytes(SHARE_BYTES, "big") + b.to_bytes(SHARE_BYTES, "big")
                    ct = encrypt_share(self._enc_keys[v], self.round_id, self.id, v, pt)
                cts.append((v, ct))
            return dataclasses.replace(out, ciphertexts=tuple(cts))

    return OffPolynomialDealer


class ForeignSecretDealer(SecAggClient):
    """Shares a mask key other than the one it advertised, consistently: its commitments are
    those of the polynomial it really used, so their constant term ``C_0`` is not its advertised
    ``s^PK`` (signed, in the active variant). Refused by the server at share-keys time."""

    def share_keys(self, msg):
        real = self._s_key
        # the advertised public key stays (so the client's own checks pass), the secret shared is another
        self._s_key = types.SimpleNamespace(public_bytes=real.public_bytes, private_scalar=real.private_scalar + 1)
        try:
            return super().share_keys(msg)
        finally:
            self._s_key = real


def false_disputer(dealers):
    """A class whose share receipt disputes ``dealers`` although their bundles were fine."""

    class FalseDisputer(SecAggClient):
        def receipt(self, msg):
            out = super().receipt(msg)
            return dataclasses.replace(out, disputed=tuple(sorted(set(out.disputed) | set(dealers))))

    return FalseDisputer


def resender(kind: str, how: str = "same"):
    """A class that sends a second message with its ``kind`` message (a message class name):
    ``how = "same"`` the same bytes again, ``"other"`` a different message of the same step (an
    equivocation: one byte of its payload changed), ``"stale"`` the message of another round."""

    def altered(msg):
        if how == "same":
            return msg
        if how == "stale":
            return dataclasses.replace(msg, round_id=bytes(len(msg.round_id)))
        for name in ("signature", "c_pk", "vector", "shares", "disputed", "ciphertexts"):
            value = getattr(msg, name, None)
            if isinstance(value, bytes) and value:
                return dataclasses.replace(msg, **{name: bytes([value[0] ^ 1]) + value[1:]})
            if name == "vector" and value is not None:
                return dataclasses.replace(msg, vector=value + value.dtype.type(1))
            if name in ("shares", "ciphertexts", "disputed") and value is not None:
                return dataclasses.replace(msg, **{name: tuple(value)[1:]})
        raise AssertionError(f"no field of {type(msg).__name__} to change")

    class Resender(SecAggClient):
        def extra_messages(self, step, msg):
            return (altered(msg),) if type(msg).__name__ == kind else ()

    Resender.__name__ = f"Resender[{kind}, {how}]"
    return Resender
