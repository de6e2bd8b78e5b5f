"""Writer identities on the control port: one secret per writer, proven in each ``Hello``.

A writer's identity is what the server samples, sends models to, invites to SecAgg (with a join
token) and blames; the TLS of :mod:`fl.net.tls` authenticates only the server. So each writer
holds a secret of :data:`SECRET_BYTES` random bytes that the server also holds, and proves it
on every connection by answering the server's fresh challenge::

    server -> client   Challenge(nonce)                       32 fresh random bytes
    client -> server   Hello(writer, proof)
                       proof = HMAC-SHA256(secret_writer, HELLO_LABEL || u64(writer) || nonce || server)

where ``server`` is the SHA-256 of the server's TLS certificate (DER) as the client received it,
or 32 zero bytes over plain TCP. The server compares in constant time and refuses a writer
without a valid proof (a proof for another nonce, another writer, another secret or another
server). A proof is good for one connection: the nonce is new each time, so a recorded
``Hello`` cannot be replayed; and it names the server the client reached, so a server the
client dials cannot relay the real server's challenge and pass the answer on as its own (under
TLS; over plain TCP anyone on the path can read and change everything anyway). The proof says
nothing of the secret (HMAC is a PRF), and each writer's secret is independent of the others',
so a client holding the secrets of its own writers cannot claim anyone else's.

The secrets file is JSON: ``{"format": 1, "writers": {"<id>": "<64 hex digits>", ...}}``; the
server's file holds every writer's secret, a client machine's only those of its own writers
(``sabre writer-secrets`` makes the one and cuts the others from it).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import struct
from pathlib import Path
from typing import Iterable, Mapping

from rangeproof.blame import ConfigError

__all__ = ["SECRET_BYTES", "NONCE_BYTES", "HELLO_LABEL", "NO_SERVER", "server_binding", "hello_proof", "check_hello_proof", "make_secrets",
           "load_secrets", "write_secrets"]

#: the size of a writer's secret and of the server's challenge
SECRET_BYTES = 32
NONCE_BYTES = 32
#: domain separation of the Hello proof (no other MAC in the project uses these keys)
HELLO_LABEL = b"sabre/net/hello/v1"
_FORMAT = 1
_ID = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)
_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)


#: the server binding over plain TCP (no certificate to name)
NO_SERVER = bytes(32)


def server_binding(certificate_der: bytes | None) -> bytes:
    """What a proof binds of the server: SHA-256 of its TLS certificate, or :data:`NO_SERVER`."""
    return NO_SERVER if certificate_der is None else hashlib.sha256(certificate_der).digest()


def hello_proof(secret: bytes, writer: int, nonce: bytes, server: bytes = NO_SERVER) -> bytes:
    """``HMAC-SHA256(secret, HELLO_LABEL || u64(writer) || nonce || server)``: 32 bytes."""
    if len(secret) != SECRET_BYTES or len(nonce) != NONCE_BYTES or len(server) != 32 or not 0 <= writer < 1 << 64:
        raise ValueError("hello_proof: a 32-byte secret, nonce and server binding, and a writer id in [0, 2^64)")
    return hmac.new(secret, HELLO_LABEL + struct.pack(">Q", writer) + nonce + server, hashlib.sha256).digest()


def check_hello_proof(secret: bytes, writer: int, nonce: bytes, proof: bytes, server: bytes = NO_SERVER) -> bool:
    """Whether ``proof`` is :func:`hello_proof` of ``(secret, writer, nonce, server)`` (constant time)."""
    return hmac.compare_digest(hello_proof(secret, writer, nonce, server), proof)


def make_secrets(writers: Iterable[int]) -> dict[int, bytes]:
    """A fresh secret for each writer (the OS CSPRNG)."""
    return {int(w): secrets.token_bytes(SECRET_BYTES) for w in writers}


def write_secrets(path: str | os.PathLike, table: Mapping[int, bytes]) -> Path:
    """Write ``table`` to ``path`` (created readable by its owner only; an existing file is refused).

    Raises:
      ConfigError: the file exists.
    """
    path = Path(path)
    body = json.dumps({"format": _FORMAT, "writers": {str(w): table[w].hex() for w in sorted(table)}}, indent=1)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"writer secrets: {path} exists; choose another file") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body + "\n")
    return path


def load_secrets(path: str | os.PathLike) -> dict[int, bytes]:
    """The writer secrets of a file :func:`write_secrets` wrote.

    Raises:
      ConfigError: unreadable, not the format, an id that is not a non-negative integer, or a
        secret that is not 64 hex digits.
    """
    try:
        mode = os.stat(path).st_mode
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"writer secrets: cannot read {path}: {e}") from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(f"writer secrets: {path} is readable by others (mode {mode & 0o777:o}); "
                          f"`chmod 600` it: whoever reads it can join as its writers")
    if not (isinstance(table, dict) and table.get("format") == _FORMAT and isinstance(table.get("writers"), dict)
            and set(table) == {"format", "writers"}):
        raise ConfigError(f"writer secrets: {path} is not a writer-secrets file (format {_FORMAT})")
    out: dict[int, bytes] = {}
    for key, value in table["writers"].items():
        # canonical ASCII ids below 2^64 ("03" or a non-ASCII digit would alias another entry)
        if not (_ID.fullmatch(key) and int(key) < 1 << 64 and isinstance(value, str) and _HEX.fullmatch(value)):
            raise ConfigError(f"writer secrets: {path}: entry {key[:24]!r} is not an id and 64 hex digits")
        out[int(key)] = bytes.fromhex(value)
    if not out:
        raise ConfigError(f"writer secrets: {path} holds no writer")
    return out
