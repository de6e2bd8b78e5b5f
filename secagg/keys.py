"""Key agreement, key derivation, share encryption and signatures (all from ``cryptography``).

* X25519 for the per-round key pair ``c`` of each client (encrypts shares in transit).
* P-256 ECDH for the per-round key pair ``s`` (agrees the pairwise mask seeds): its private key
  is a scalar of the group in which the shares of it are committed to (:mod:`secagg.vss`), so
  the constant term of the dealer's commitments must equal the advertised public key.
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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rangeproof.labels import SECAGG_SHARE_AD

from .errors import AuthenticationFailed, NonCanonicalEncoding, ProtocolViolation, UnusableKey
from .randomness import RandomSource
from .shamir import SHARE_PRIME, random_scalar

__all__ = [
    "PUBLIC_KEY_BYTES",
    "check_public_key",
    "is_canonical_public_key",
    "SIGNATURE_BYTES",
    "AgreementKey",
    "MASK_PUBLIC_KEY_BYTES",
    "MaskKey",
    "check_mask_public_key",
    "is_canonical_mask_public_key",
    "SigningKey",
    "verify_signature",
    "hkdf",
    "encrypt_share",
    "decrypt_share",
    "SHARE_CIPHERTEXT_OVERHEAD",
]

PUBLIC_KEY_BYTES = 32
#: a P-256 public key, compressed SEC 1 (``0x02``/``0x03 || x``)
MASK_PUBLIC_KEY_BYTES = 33
SIGNATURE_BYTES = 64
#: AES-GCM tag length
SHARE_CIPHERTEXT_OVERHEAD = 16


#: p = 2^255 - 19, the field of Curve25519
_FIELD_PRIME = (1 << 255) - 19
# Any clamped X25519 scalar is a multiple of the cofactor 8, so its exchange with a point of
# small order (order 1, 2, 4 or 8) gives the all-zero secret, which ``cryptography`` refuses with
# ValueError; the exchange with any other canonical point does not (its order has a prime factor
# of about 2^252 that the clamped scalar below is not a multiple of). The key is public and fixed:
# the check is on public data only.
_TRIAL_KEY = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def is_canonical_public_key(public: bytes) -> bool:
    """Whether ``public`` is the canonical encoding of an X25519 u-coordinate: 32 bytes,
    little-endian, ``u < p`` (so bit 255 is clear). RFC 7748 decoders ignore bit 255 and reduce
    mod p, so one key has several encodings; only this one is accepted."""
    return (isinstance(public, (bytes, bytearray)) and len(public) == PUBLIC_KEY_BYTES
            and int.from_bytes(public, "little") < _FIELD_PRIME)


def check_public_key(public: bytes, client: int) -> None:
    """Refuse an X25519 public key that cannot serve in the round; returns None or raises.

    Raises:
      NonCanonicalEncoding: not the canonical encoding (bit 255 set, or ``u >= p``): a second
        encoding of another key would pass the key-reuse checks.
      UnusableKey: a point of small order (RFC 7748 section 6.1: the shared secret with every
        peer would be all zero), found by a trial exchange.
    """
    if not is_canonical_public_key(public):
        raise NonCanonicalEncoding(f"client {client}: X25519 public key is not canonically encoded (bit 255 set or u >= p)",
                                   blamed=(client,))
    try:
        _TRIAL_KEY.exchange(X25519PublicKey.from_public_bytes(bytes(public)))
    except ValueError:
        raise UnusableKey(client) from None


#: p of P-256 (the field of the coordinates)
_P256_FIELD = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF


def is_canonical_mask_public_key(public: bytes) -> bool:
    """Whether ``public`` has the one accepted form of a P-256 mask public key: 33 bytes,
    compressed SEC 1 (prefix 0x02 or 0x03), ``x < p``. The uncompressed (0x04), hybrid (0x06,
    0x07) and identity (0x00) encodings are refused, so one key has one encoding."""
    return (isinstance(public, (bytes, bytearray)) and len(public) == MASK_PUBLIC_KEY_BYTES
            and public[0] in (2, 3) and int.from_bytes(public[1:], "big") < _P256_FIELD)


def check_mask_public_key(public: bytes, client: int) -> None:
    """Refuse a P-256 mask public key that cannot serve in the round; returns None or raises.

    Raises:
      NonCanonicalEncoding: not the canonical compressed encoding (see
        :func:`is_canonical_mask_public_key`).
      UnusableKey: ``x`` is not the x-coordinate of a curve point (an invalid point, the P-256
        counterpart of an X25519 key of small order: P-256 has cofactor 1, so every other point
        but the identity, which has no compressed encoding, has order q).
    """
    if not is_canonical_mask_public_key(public):
        raise NonCanonicalEncoding(f"client {client}: P-256 public key is not a canonical compressed point",
                                   blamed=(client,))
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(public))
    except ValueError:
        raise UnusableKey(client, "not a point of P-256") from None


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


class MaskKey:
    """A P-256 ECDH key pair used for one round (the pairwise mask key ``s``).

    Args:
      private: the private scalar, ``1 <= private < q``.
    """

    def __init__(self, private: int):
        if not 0 < private < SHARE_PRIME:
            raise ValueError("a P-256 private key is a scalar in [1, q)")
        self._key = ec.derive_private_key(private, ec.SECP256R1())
        self.private_scalar = private
        self.public_bytes = self._key.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)

    @classmethod
    def generate(cls, rng: RandomSource) -> "MaskKey":
        return cls(random_scalar(rng))

    def agree(self, peer_public: bytes) -> bytes:
        """The P-256 ECDH shared secret (the x-coordinate, 32 bytes) with ``peer_public``.

        Raises:
          ProtocolViolation: the peer key is not a canonical compressed point of P-256.
        """
        if not is_canonical_mask_public_key(peer_public):
            raise ProtocolViolation("unusable P-256 public key: not a canonical compressed point")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(peer_public))
        except ValueError as exc:
            raise ProtocolViolation(f"unusable P-256 public key: {exc}") from None
        return self._key.exchange(ec.ECDH(), peer)


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


def verify_signature(verify_key: bytes, signature: bytes, message: bytes, who: str, *, blamed=()) -> None:
    """Check an Ed25519 signature; returns None or raises.

    Args:
      who: the signer, for the message.
      blamed: the client ids the failure blames (the signer's, where it is a client).

    Raises:
      AuthenticationFailed: the signature (or the key) is not valid (reason ``bad_signature``).
    """
    try:
        Ed25519PublicKey.from_public_bytes(verify_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise AuthenticationFailed(f"bad signature from {who}", blamed=blamed, reason="bad_signature") from None


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
        raise AuthenticationFailed(f"share ciphertext from client {sender} to {receiver} does not verify",
                                   blamed=(sender,), reason="share_ciphertext_invalid") from None
