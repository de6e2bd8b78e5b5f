"""Cheating clients built on the real :class:`~secagg.client.SecAggClient`: each plays the
protocol honestly except for one step, so a test exercises the server's checks, not a mock.

Use them through ``run_round(..., client_types={id: cls})`` or instantiate them directly.
"""
from __future__ import annotations

import dataclasses

from secagg.client import SecAggClient
from secagg.keys import decrypt_share, encrypt_share
from secagg.messages import MASK_KEY_SHARE, SELF_MASK_SHARE, SHARE_PLAINTEXT_BYTES
from secagg.shamir import SHARE_BYTES, SHARE_PRIME
from secagg.transcripts import SHARE_COMMITMENT_BYTES, share_commitment


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
    """A class that gives ``victims`` shares of ``kind`` off its polynomial, each with a matching
    commitment (so the holders accept them and the server finds the fault at reconstruction)."""

    class OffPolynomialDealer(SecAggClient):
        def share_keys(self, msg):
            out = super().share_keys(msg)
            cts = []
            for v, blob in out.ciphertexts:
                if v in victims:
                    ct = blob[:-2 * SHARE_COMMITMENT_BYTES]
                    pt = decrypt_share(self._enc_keys[v], self.round_id, self.id, v, ct)
                    assert len(pt) == SHARE_PLAINTEXT_BYTES
                    s = int.from_bytes(pt[4:4 + SHARE_BYTES], "big")
                    b = int.from_bytes(pt[4 + SHARE_BYTES:], "big")
                    if kind == SELF_MASK_SHARE:
                        b = (b + 1) % SHARE_PRIME
                    else:
                        s = (s + 1) % SHARE_PRIME
                    pt = pt[:4] + s.to_bytes(SHARE_BYTES, "big") + b.to_bytes(SHARE_BYTES, "big")
                    blob = (encrypt_share(self._enc_keys[v], self.round_id, self.id, v, pt)
                            + share_commitment(self.round_id, self.id, v, MASK_KEY_SHARE, s)
                            + share_commitment(self.round_id, self.id, v, SELF_MASK_SHARE, b))
                cts.append((v, blob))
            return dataclasses.replace(out, ciphertexts=tuple(cts))

    return OffPolynomialDealer
