"""The federated run's own messages between a ``sabre serve`` server and its clients.

Explicit, serializable messages (no pickle: a peer's bytes never become code or arbitrary
objects). One frame (:mod:`secagg.net.framing`, length-prefixed, bounded before it is read)
holds one message::

    kind u8 | header length u32 big-endian | header (UTF-8 JSON object) | blob

The header's keys and their types are fixed per kind and checked exactly on decode; bytes
inside ``extras`` travel as ``{"$b": base64}``. The blob carries the model (float32,
little-endian) in :class:`RoundStart` and nothing elsewhere.

Flow of one round (the SecAgg protocol itself runs on its own connection, :mod:`secagg.net`)::

    server -> client   Challenge(nonce)                   once, on connecting
    client -> server   Hello(writer, proof)               the writer and its proof (fl.net.auth)
    server -> client   Setup(config)                      once: the run's config (TOML), or Refused(reason)
    server -> client   RoundStart(round, message_id, ..)  the model; the client trains and runs
    client -> server   Update(message_id, weight, ..)       its pipeline halves, keeping the vector
    server -> client   SecAggStart(pid, n, ..)            join the SecAgg round on port ``port``
    server -> client   RoundEnd(round)                    the round is over for this client
    server -> client   Bye()                              the run is over
"""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import struct
from typing import Any, ClassVar

import numpy as np

from rangeproof.blame import SabreError

__all__ = ["MalformedFrame", "Challenge", "Refused", "Hello", "Setup", "RoundStart", "Update", "SecAggStart", "RoundEnd", "Bye",
           "encode", "decode", "SMALL_BOUND", "SETUP_BOUND", "round_bound", "update_bound"]

#: the largest frame of a message without a vector (Hello, SecAggStart, RoundEnd, Bye)
SMALL_BOUND = 1 << 16
#: the largest Setup frame (a config file)
SETUP_BOUND = 1 << 20
_MAX_DEPTH = 8


def round_bound(dim: int) -> int:
    """The largest :class:`RoundStart` frame for a model of ``dim`` parameters."""
    return 4 * dim + SMALL_BOUND


def update_bound(dim: int) -> int:
    """The largest :class:`Update` frame: proofs and commitments (logarithmic in ``dim``) plus
    room for per-coordinate side data of up to 8 bytes each."""
    return (1 << 22) + 8 * dim


class MalformedFrame(SabreError, ValueError):
    """A frame that is not a well-formed message of the kind expected."""


#: the most digits of an integer in a header (a message id, a count; 2^256 has 78)
MAX_INT_DIGITS = 80
#: the most JSON containers (``{`` or ``[``) and the most separators (``,`` and ``:``) in one
#: header, counted on its bytes before it is parsed: an honest header has a few dozen of each,
#: and within the frame bound millions of tiny objects would cost the reader seconds and
#: hundreds of MB (bytes inside strings count too, so the count only over-estimates)
MAX_CONTAINERS = 1 << 10
MAX_SEPARATORS = 1 << 14


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _is_key(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _pack(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise MalformedFrame("extras nested too deeply")
    if isinstance(value, (bytes, bytearray)):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("$") for k in value):
            raise MalformedFrame("extras keys must be strings not starting with '$'")
        return {k: _pack(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, depth + 1) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise MalformedFrame(f"cannot send a {type(value).__name__} in extras")


def _unpack(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise MalformedFrame("extras nested too deeply")
    if isinstance(value, dict):
        if set(value) == {"$b"} and isinstance(value["$b"], str):
            try:
                return base64.b64decode(value["$b"].encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError):
                raise MalformedFrame("bad base64 in extras") from None
        if any(k.startswith("$") for k in value):
            raise MalformedFrame("unknown tagged value in extras")
        return {k: _unpack(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, depth + 1) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class _Message:
    KIND: ClassVar[int] = 0
    #: header field -> accepted JSON types
    FIELDS: ClassVar[dict[str, tuple[type, ...]]] = {}

    def header(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.FIELDS}

    def blob(self) -> bytes:
        return b""

    @classmethod
    def build(cls, header: dict[str, Any], blob: bytes) -> "_Message":
        if blob:
            raise MalformedFrame(f"{cls.__name__} carries no blob")
        cls.check(header)
        return cls(**header)

    @classmethod
    def check(cls, header: dict[str, Any]) -> None:
        """Refuse field values a well-formed message cannot have (types are already checked)."""


@dataclasses.dataclass(frozen=True)
class Challenge(_Message):
    """The server's first frame on a control connection: a fresh nonce the Hello must answer."""

    KIND: ClassVar[int] = 8
    FIELDS: ClassVar = {"nonce": (str,)}
    nonce: str

    @classmethod
    def check(cls, header):
        if not _is_key(header["nonce"]):
            raise MalformedFrame("Challenge: nonce must be 64 hex digits")


@dataclasses.dataclass(frozen=True)
class Refused(_Message):
    """The server's answer to a Hello it refuses, instead of :class:`Setup` (final: no retry)."""

    KIND: ClassVar[int] = 9
    FIELDS: ClassVar = {"reason": (str,)}
    reason: str


@dataclasses.dataclass(frozen=True)
class Hello(_Message):
    """``writer`` and ``proof``: the HMAC of the server's challenge under the writer's secret
    (:func:`fl.net.auth.hello_proof`, hex), or ``""`` where the server runs an open join."""

    KIND: ClassVar[int] = 1
    FIELDS: ClassVar = {"writer": (int,), "proof": (str,)}
    writer: int
    proof: str = ""

    @classmethod
    def check(cls, header):
        if not 0 <= header["writer"] < 1 << 64:
            raise MalformedFrame("Hello: writer must be in [0, 2^64)")
        if header["proof"] and not _is_key(header["proof"]):
            raise MalformedFrame("Hello: proof must be 64 hex digits")


@dataclasses.dataclass(frozen=True)
class Setup(_Message):
    KIND: ClassVar[int] = 2
    FIELDS: ClassVar = {"config": (str,)}
    config: str


@dataclasses.dataclass(frozen=True)
class RoundStart(_Message):
    """The model ``params`` (float32) and the facts the client's round context needs."""

    KIND: ClassVar[int] = 3
    FIELDS: ClassVar = {"round": (int,), "message_id": (int,), "expected_clients": (int,), "sampled": (list,)}
    round: int
    message_id: int
    expected_clients: int
    #: the round's sampled writers in slot order (an attacker's schedule reads it)
    sampled: list = dataclasses.field(default_factory=list)
    params: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))

    def blob(self) -> bytes:
        return np.ascontiguousarray(self.params, dtype="<f4").tobytes()

    @classmethod
    def build(cls, header, blob):
        if len(blob) % 4:
            raise MalformedFrame("RoundStart: the model is not a whole number of float32")
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in header["sampled"]):
            raise MalformedFrame("RoundStart: sampled must be writer ids")
        return cls(**header, params=np.frombuffer(blob, dtype="<f4").astype(np.float32))


@dataclasses.dataclass(frozen=True)
class Update(_Message):
    """What the client's pipeline halves produced, without the vector (that goes masked to SecAgg).

    ``refused``: ``[stage, reason, text]`` when one of its halves refused the update.
    ``dtype``: the integer type of the vector it keeps (``"int64"``, ``"uint32"``, ...).
    ``verify_key``: its signature verify key for the round's SecAgg (hex of 32 bytes; ``""``
    outside the active variant).
    """

    KIND: ClassVar[int] = 4
    FIELDS: ClassVar = {"message_id": (int,), "weight": (float, int), "dtype": (str,), "extras": (dict,),
                        "measurements": (dict,), "events": (list,), "refused": (list, type(None)),
                        "verify_key": (str,)}
    message_id: int
    weight: float
    dtype: str
    extras: dict
    measurements: dict
    events: list
    refused: list | None = None
    verify_key: str = ""

    def header(self):
        h = super().header()
        h["extras"] = _pack(self.extras)
        return h

    @classmethod
    def build(cls, header, blob):
        if blob:
            raise MalformedFrame("Update carries no blob")
        header = dict(header)
        header["extras"] = _unpack(header["extras"])
        if not all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(float(v)) for k, v in header["measurements"].items()):
            raise MalformedFrame("Update: measurements must map names to finite numbers")
        header["measurements"] = {k: float(v) for k, v in header["measurements"].items()}
        if not all(isinstance(e, str) for e in header["events"]):
            raise MalformedFrame("Update: events must be strings")
        r = header["refused"]
        if r is not None and (len(r) != 3 or not all(isinstance(x, str) for x in r)):
            raise MalformedFrame("Update: refused must be [stage, reason, text]")
        try:
            dt = np.dtype(header["dtype"])
        except TypeError:
            raise MalformedFrame(f"Update: unknown dtype {header['dtype']!r}") from None
        if dt.kind not in "iu" or dt.itemsize > 8:
            raise MalformedFrame(f"Update: the vector must be integers of at most 64 bits, got {dt}")
        if header["verify_key"] and not _is_key(header["verify_key"]):
            raise MalformedFrame("Update: verify_key must be 64 hex digits")
        header["weight"] = float(header["weight"])
        if not (math.isfinite(header["weight"]) and header["weight"] >= 0):
            raise MalformedFrame("Update: weight must be a finite number >= 0")
        return cls(**header)


@dataclasses.dataclass(frozen=True)
class SecAggStart(_Message):
    """Join the SecAgg round as protocol id ``pid`` of ``n`` on the server's port ``port``."""

    KIND: ClassVar[int] = 5
    FIELDS: ClassVar = {"message_id": (int,), "pid": (int,), "n": (int,), "field_dim": (int,),
                        "round_id": (str,), "port": (int,), "verify_keys": (list,), "join_token": (str,)}
    message_id: int
    pid: int
    n: int
    field_dim: int
    round_id: str
    port: int
    #: the active variant's registry: protocol id ``i + 1``'s verify key (hex) at ``i``; empty otherwise
    verify_keys: list = dataclasses.field(default_factory=list)
    #: the secret (hex) this client presents first on the SecAgg port: the server lets a connection
    #: join only as the client it invited with that token
    join_token: str = ""

    @classmethod
    def check(cls, header):
        if not _is_key(header["join_token"]):
            raise MalformedFrame("SecAggStart: join_token must be 64 hex digits")
        keys = header["verify_keys"]
        if keys and (len(keys) != header["n"] or not all(isinstance(k, str) and _is_key(k) for k in keys)):
            raise MalformedFrame("SecAggStart: verify_keys must be n keys of 64 hex digits")
        try:
            if len(bytes.fromhex(header["round_id"])) != 16:
                raise ValueError
        except ValueError:
            raise MalformedFrame("SecAggStart: round_id must be 32 hex digits") from None


@dataclasses.dataclass(frozen=True)
class RoundEnd(_Message):
    KIND: ClassVar[int] = 6
    FIELDS: ClassVar = {"round": (int,)}
    round: int


@dataclasses.dataclass(frozen=True)
class Bye(_Message):
    KIND: ClassVar[int] = 7
    FIELDS: ClassVar = {}


_KINDS = {c.KIND: c for c in (Hello, Setup, RoundStart, Update, SecAggStart, RoundEnd, Bye, Challenge, Refused)}


def encode(message: _Message) -> bytes:
    """The frame payload of ``message``."""
    head = json.dumps(message.header(), separators=(",", ":"), allow_nan=False).encode()
    return struct.pack(">BI", message.KIND, len(head)) + head + message.blob()


def decode(data: bytes, *expected: type) -> _Message:
    """The message in ``data``, which must be one of the ``expected`` kinds.

    Raises:
      MalformedFrame: truncated, an unknown or unexpected kind, a header that is not a JSON
        object with exactly the kind's fields and types.
    """
    if len(data) < 5:
        raise MalformedFrame("frame shorter than its header")
    kind, n = struct.unpack(">BI", data[:5])
    cls = _KINDS.get(kind)
    if cls is None:
        raise MalformedFrame(f"unknown message kind {kind}")
    if expected and cls not in expected:
        raise MalformedFrame(f"expected {' or '.join(c.__name__ for c in expected)}, got {cls.__name__}")
    if 5 + n > len(data):
        raise MalformedFrame(f"{cls.__name__}: header runs past the frame")
    head = data[5:5 + n]
    if (head.count(b"{") + head.count(b"[") > MAX_CONTAINERS
            or head.count(b",") + head.count(b":") > MAX_SEPARATORS):
        raise MalformedFrame(f"{cls.__name__}: the header holds more JSON values than any message has")
    try:
        header = json.loads(head.decode("utf-8"), parse_constant=_no_constant, parse_int=_bounded_int)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting too deep to parse
        raise MalformedFrame(f"{cls.__name__}: the header is not JSON within its bounds") from None
    if not isinstance(header, dict) or set(header) != set(cls.FIELDS):
        raise MalformedFrame(f"{cls.__name__}: expected the fields {sorted(cls.FIELDS)}")
    for key, types in cls.FIELDS.items():
        v = header[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise MalformedFrame(f"{cls.__name__}.{key}: wrong type {type(v).__name__}")
    try:
        return cls.build(header, data[5 + n:])
    except MalformedFrame:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # whatever a crafted field raises
        raise MalformedFrame(f"{cls.__name__}: {type(exc).__name__} in a field") from None
