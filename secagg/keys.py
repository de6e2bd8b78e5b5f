"""Key agreement, key derivation, share encryption and signatures (all from ``cryptography``).

* X25519 for the two per-round key pairs of each client: ``c`` (encrypts shares in transit) and
  ``s`` (agrees the pairwise mask seeds).
* HKDF-SHA256 with the round id as salt and, as info, a versioned purpose label from
  :mod:`rangeproof.labels` (length-prefixed), the output length and the ids (count-prefixed), so
  no derived key is ever used for two purposes, pairs, lengths or rounds.
* AES-256-GCM for shares in transit; the associated data binds round, step, sender and
  receiver, and the nonce is unique per (sender, receiver) under a key used in one round only.
* Ed25519 for the active variant's signatures over domain-separated transcripts.
"""
from __future__ import annotations

import struct

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rangeproof.labels import SECAGG_SHARE_AD

from .errors import AuthenticationFailed, ProtocolViolation
from .randomness import RandomSource

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "AgreementKey",
    "SigningKey",
    "verify_signature",
    "hkdf",
    "encrypt_share",
    "decrypt_share",
    "SHARE_CIPHERTEXT_OVERHEAD",
]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
#: AES-GCM tag length
SHARE_CIPHERTEXT_OVERHEAD = 16


def hkdf(ikm: bytes, round_id: bytes, purpose: bytes, *ids: int, length: int = 32) -> bytes:
    """HKDF-SHA256 with ``salt = round_id`` and ::

        info = u16 len(purpose) || purpose || u16 length || u16 len(ids) || ids as u16 big-endian

    Args:
      ikm: the input key material (an X25519 secret or a seed).
      round_id: the round's 16-byte id.
      purpose: a purpose label of :mod:`rangeproof.labels` (``SECAGG_PAIRWISE_MASK``, ...).
      ids: the client ids the key belongs to.
      length: output bytes.
    """
    if len(round_id) != 16:
        raise ValueError("hkdf: the round id must be 16 bytes")
    info = (struct.pack(">H", len(purpose)) + bytes(purpose) + struct.pack(">HH", length, len(ids))
            + b"".join(struct.pack(">H", i) for i in ids))
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=round_id, info=info).derive(ikm)


class AgreementKey:
    """An X25519 key pair used for one round.

    Args:
      private: the raw 32-byte private key.
    """

    def __init__(self, private: bytes):
        self._key = X25519PrivateKey.from_private_bytes(private)
        self.private_bytes = bytes(private)
        self.public_bytes = self._key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, rng: RandomSource) -> "AgreementKey":
        return cls(rng.bytes(32))

    def agree(self, peer_public: bytes) -> bytes:
        """The X25519 shared secret with ``peer_public``.

        Raises:
          ProtocolViolation: the peer key is malformed or of small order (all-zero secret).
        """
        try:
            return self._key.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as exc:
            raise ProtocolViolation(f"unusable X25519 public key: {exc}") from None


class SigningKey:
    """An Ed25519 signing key (a client's long-term identity in the active variant)."""

    def __init__(self, private: bytes):
        self._key = Ed25519PrivateKey.from_private_bytes(private)
        self.verify_key = self._key.public_key().public_bytes_raw()

    @classmethod
    def generate(cls, rng: RandomSource) -> "SigningKey":
        return cls(rng.bytes(32))

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def verify_signature(verify_key: bytes, signature: bytes, message: bytes, who: str) -> None:
    """Check an Ed25519 signature; returns None or raises.

    Raises:
      AuthenticationFailed: the signature (or the key) is not valid.
    """
    try:
        Ed25519PublicKey.from_public_bytes(verify_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise AuthenticationFailed(f"bad signature from {who}") from None


def _share_nonce_and_ad(round_id: bytes, sender: int, receiver: int) -> tuple[bytes, bytes]:
    nonce = struct.pack(">BHH", 1, sender, receiver) + bytes(7)
    if len(round_id) != 16:
        raise ValueError("share encryption: the round id must be 16 bytes")
    ad = SECAGG_SHARE_AD + round_id + struct.pack(">HH", sender, receiver)
    return nonce, ad


def encrypt_share(key: bytes, round_id: bytes, sender: int, receiver: int, plaintext: bytes) -> bytes:
    """AES-256-GCM encryption of a share bundle from ``sender`` to ``receiver``."""
    nonce, ad = _share_nonce_and_ad(round_id, sender, receiver)
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def decrypt_share(key: bytes, round_id: bytes, sender: int, receiver: int, ciphertext: bytes) -> bytes:
    """Inverse of :func:`encrypt_share`.

    Raises:
      AuthenticationFailed: the tag does not verify (tampered, misrouted, or wrong key).
    """
    nonce, ad = _share_nonce_and_ad(round_id, sender, receiver)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag:
        raise AuthenticationFailed(f"share ciphertext from client {sender} to {receiver} does not verify") from None
