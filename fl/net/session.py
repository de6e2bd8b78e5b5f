"""The server's side of a networked run: connected clients, one round's exchanges, the SecAgg transport.

:class:`ServerSession` owns an asyncio event loop on a thread of its own; the federated loop
(:class:`fl.simulation.Simulation`, synchronous) calls its blocking methods, which run
coroutines on that loop. Each client holds one control connection (the messages of
:mod:`fl.net.messages`); the SecAgg round of :class:`NetworkTransport` runs the tested TCP
server of :mod:`secagg.net.server` on a port of its own, which every participant joins.

Every read is bounded (:mod:`fl.net.messages` bounds) and has a deadline; a client whose
connection fails, times out or sends a malformed frame is dropped from the round and named in
the round's events, and the round goes on.
"""
from __future__ import annotations

import asyncio
import dataclasses
import secrets
import ssl
import threading
from typing import Callable, Mapping

import numpy as np

from fl.aggregation import RoundFailed
from rangeproof.blame import SabreError
from secagg.driver import RoundReport
from secagg.errors import SecAggError
from secagg.net.framing import ClosedInFrame, ConnectionClosed, DeadlineExceeded, read_frame, write_frame
from secagg.net.server import JOIN_TOKEN_BYTES, serve_round

from .auth import NONCE_BYTES, check_hello_proof, server_binding
from .messages import (SMALL_BOUND, Bye, Challenge, Hello, MalformedFrame, Refused, RoundEnd, RoundStart, SecAggStart,
                       Setup, Update, decode, encode, update_bound)

__all__ = ["ServerSession", "NetworkTransport", "Link"]

_FAILURES = (SecAggError, OSError, MalformedFrame, asyncio.TimeoutError)
#: what a client that vanished looks like (not a refused message)
_DROPOUTS = (ConnectionClosed, ClosedInFrame, DeadlineExceeded)


class _Refusal(SabreError):
    """A joining connection refused for a reason its client is told (it is final)."""


@dataclasses.dataclass
class Link:
    """One client's control connection."""

    writer_id: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str

    def abort(self) -> None:
        self.writer.transport.abort()


class ServerSession:
    """Accepts clients, runs the control exchanges of each round, and the SecAgg rounds.

    Args:
      config_text: the run's config (TOML), sent to every client in :class:`Setup`.
      dim: the model's number of parameters (bounds the updates).
      host, port: where to listen (port 0: any free port; see :attr:`port`).
      ssl_context: a server-side TLS context, or ``None`` for plain TCP.
      secagg_port: the port of each SecAgg round (0: a free one each round).
      timeout: seconds a client may take for any one answer (its training included).
      writers: the writer ids that may connect (``None``: any); another id is refused at once.
      hello_timeout: seconds a new connection has for each step of its join (the TLS handshake,
        taking the challenge, sending its :class:`Hello`); at most ``max(64, 4 * len(writers))``
        connections may be joining at a time, counted from the TCP accept: a newcomer beyond that
        closes one of them drawn at random (:meth:`_make_room`).
      writer_secrets: ``{writer: secret}`` (:mod:`fl.net.auth`): a connection joins as a writer
        only with a proof of that writer's secret. ``None``: an open join, where any connection
        may claim any writer id (only between processes that trust each other).
      log: where to write what happens.
    """

    def __init__(self, config_text: str, dim: int, *, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None, secagg_port: int = 0, timeout: float = 600.0,
                 secagg_timeout: float = 60.0, writers: set[int] | None = None, hello_timeout: float = 30.0,
                 writer_secrets: Mapping[int, bytes] | None = None, log: Callable[[str], None] = lambda s: None):
        self.config_text = config_text
        self.writer_secrets = None if writer_secrets is None else dict(writer_secrets)
        self.writers = None if writers is None else frozenset(writers)
        self.hello_timeout = hello_timeout
        # connections still joining, with the task handling each
        self._waiting: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._closing: set[asyncio.Task] = set()  # handlers of evicted connections, still ending
        self._max_pending = max(64, 4 * len(writers or ()))
        #: connections closed to make room for newer ones before they sent their Hello
        self.evicted = 0
        self.dim = dim
        self.host = host
        self.ssl_context = ssl_context
        if ssl_context is not None and not hasattr(ssl_context, "sabre_certificate"):
            raise ValueError("ServerSession: make the TLS context with fl.net.tls.server_context (the writers' "
                             "proofs bind its certificate)")
        #: what each writer's proof binds of this server (fl.net.auth)
        self._binding = server_binding(getattr(ssl_context, "sabre_certificate", None))
        self._evicted_logged = 0
        self.secagg_port = secagg_port
        self.timeout = timeout
        self.secagg_timeout = secagg_timeout
        self.log = log
        self.links: dict[int, Link] = {}
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sabre-serve", daemon=True)
        self._thread.start()
        # TLS starts inside _accept, so that a connection in its handshake counts among the joining
        self._listener = self._call(asyncio.start_server(self._accept, host, port))
        self.port: int = self._listener.sockets[0].getsockname()[1]
        #: message id -> writer of the round in progress
        self.round_writers: dict[int, int] = {}
        #: message id -> the verify key its client sent with its update (active variant)
        self.verify_keys: dict[int, bytes] = {}

    # ------------------------------------------------------------------ plumbing
    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _make_room(self) -> None:
        """Close one joining connection, drawn uniformly at random.

        The longest waiter would let anyone opening connections faster than a client's TLS
        handshake close every client's; the longest waiter of the busiest address would let
        anyone holding many addresses aim at a client joining several writers at once. Drawn at
        random, a client's connection survives a flood of ``R`` connections a second with
        probability about ``exp(-R T / cap)`` over its ``T`` seconds of joining, and the client
        tries again until its timeout.
        """
        victims = list(self._waiting)
        victim = victims[secrets.randbelow(len(victims))]
        self.evicted += 1
        # cancel its handler (which closes it): aborting the socket under a TLS handshake in
        # progress would leave asyncio's stream writer without a transport
        task = self._waiting.pop(victim)
        task.cancel()
        self._closing.add(task)  # until it has run its cancellation (close() waits for it)
        task.add_done_callback(self._closing.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        if len(self._waiting) >= self._max_pending:
            self._make_room()
        self._waiting[writer] = asyncio.current_task()
        hello = None
        try:
            if self.ssl_context is not None:
                await writer.start_tls(self.ssl_context, ssl_handshake_timeout=self.hello_timeout)
            nonce = secrets.token_bytes(NONCE_BYTES)
            await write_frame(writer, encode(Challenge(nonce.hex())), timeout=self.hello_timeout)
            hello = decode(await read_frame(reader, SMALL_BOUND, timeout=self.hello_timeout), Hello)
            if self.writer_secrets is not None:  # first: one answer for an unknown and a known writer
                secret = self.writer_secrets.get(hello.writer)
                if secret is None or not hello.proof or not check_hello_proof(
                        secret, hello.writer, nonce, bytes.fromhex(hello.proof), self._binding):
                    raise _Refusal(f"no valid proof of writer {hello.writer}'s secret (for this server)")
            if self.writers is not None and hello.writer not in self.writers:
                raise _Refusal(f"writer {hello.writer} has no training data in this run")
            with self._changed:
                if hello.writer in self.links:
                    raise _Refusal(f"a second connection for writer {hello.writer}")
            await write_frame(writer, encode(Setup(self.config_text)), timeout=self.timeout)
        except _Refusal as exc:  # final: the client is told why, and does not try again
            self._waiting.pop(writer, None)  # (no longer joining: nothing can evict it while it is told)
            self.log(f"connection from {peer} refused: {exc}")
            try:
                await write_frame(writer, encode(Refused(str(exc))), timeout=1.0)
            except Exception:  # noqa: BLE001 - it is being closed anyway
                pass
            writer.transport.abort()
            return
        except asyncio.CancelledError:  # evicted (_make_room), or the session closes
            if writer.transport is not None:
                writer.transport.abort()
            return
        except Exception as exc:  # noqa: BLE001 - a joining connection that fails in any way is closed
            if writer in self._waiting:  # (an evicted connection is only counted, not logged)
                self.log(f"connection from {peer} refused: {type(exc).__name__}: {exc}")
            if writer.transport is not None:
                writer.transport.abort()
            return
        finally:
            self._waiting.pop(writer, None)
        with self._changed:
            if hello.writer in self.links:  # a twin registered while this one was being set up
                writer.transport.abort()
                return
            self.links[hello.writer] = Link(hello.writer, reader, writer, peer)
            self._changed.notify_all()
        self.log(f"writer {hello.writer} connected from {peer}")

    def wait_for(self, writers: set[int], timeout: float) -> set[int]:
        """Block until every writer in ``writers`` is connected or ``timeout`` passes; the connected ones."""
        with self._changed:
            self._changed.wait_for(lambda: writers <= set(self.links), timeout)
            return writers & set(self.links)

    def connected(self) -> list[int]:
        with self._changed:
            return sorted(self.links)

    def _drop(self, writer_id: int, why: str) -> None:
        with self._changed:
            link = self.links.pop(writer_id, None)
        if link is not None:
            link.abort()
            self.log(f"writer {writer_id} dropped: {why}")

    # ------------------------------------------------------------------ one round
    def updates(self, round_index: int, slots: list[tuple[int, int]], expected_clients: int,
                params: np.ndarray) -> dict[int, Update | str]:
        """Send the model to each slot's writer and collect its :class:`Update`.

        Args:
          slots: ``(writer, message id)`` in slot order (a writer may fill several slots).

        Returns:
          ``{message id: Update}``, or the reason (a string) for a slot whose client failed.
        """
        if self.evicted > self._evicted_logged:
            self.log(f"{self.evicted - self._evicted_logged} joining connection(s) closed to make room for newer "
                     f"ones since the last round (a flood of connections from {self.evicted} in all)")
            self._evicted_logged = self.evicted
        self.round_writers = {mid: w for w, mid in slots}
        self.verify_keys = {}
        return self._call(self._updates(round_index, slots, expected_clients, params))

    async def _updates(self, round_index, slots, expected_clients, params):
        by_writer: dict[int, list[int]] = {}
        for w, mid in slots:
            by_writer.setdefault(w, []).append(mid)
        out: dict[int, Update | str] = {}

        async def one(w: int, mids: list[int]) -> None:
            link = self.links.get(w)
            for mid in mids:
                if link is None:
                    out[mid] = "not_connected"
                    continue
                try:
                    await write_frame(link.writer, encode(RoundStart(round_index, mid, expected_clients, [w for w, _ in slots], params)),
                                      timeout=self.timeout)
                    up = decode(await read_frame(link.reader, update_bound(self.dim), timeout=self.timeout), Update)
                    if up.message_id != mid:
                        raise MalformedFrame(f"Update for message {up.message_id}, expected {mid}")
                    out[mid] = up
                    if up.verify_key:
                        self.verify_keys[mid] = bytes.fromhex(up.verify_key)
                except _FAILURES as exc:
                    out[mid] = f"dropped: {type(exc).__name__}"
                    self._drop(w, f"{type(exc).__name__}: {exc}")
                    link = None

        await asyncio.gather(*(one(w, mids) for w, mids in by_writer.items()))
        return out

    def end_round(self, round_index: int) -> None:
        """Tell every client of the round that it is over."""
        writers = sorted(set(self.round_writers.values()))
        self.round_writers = {}
        self._call(self._send_all(writers, RoundEnd(round_index)))

    async def _send_all(self, writers, message) -> None:
        async def one(w):
            link = self.links.get(w)
            if link is None:
                return
            try:
                await write_frame(link.writer, encode(message), timeout=self.timeout)
            except _FAILURES as exc:
                self._drop(w, f"{type(exc).__name__}: {exc}")
        await asyncio.gather(*(one(w) for w in writers))

    def secagg(self, params, pids: Mapping[int, int], round_id: bytes, dim: int,
               exclude: Callable[[tuple[int, ...]], Mapping[int, str]]):
        """Run one SecAgg round with the clients of ``pids`` (``{pid: message id}``); the server's result."""
        return self._call(self._secagg(params, pids, round_id, dim, exclude))

    async def _secagg(self, params, pids, round_id, dim, exclude):
        faults: dict[int, Exception] = {}
        # the active variant's registry, published to every participant with its invitation: the
        # keys the clients sent with their updates (the server is trusted to relay them; see
        # docs/secagg.md, "Running a federated run over the network")
        registry = {p: self.verify_keys[m] for p, m in sorted(pids.items())} if params.active else {}
        invited = asyncio.get_running_loop().create_future()
        # one secret per invited client, sent on its (authenticated) control connection: the SecAgg
        # port lets a connection join only as the client whose token it presents
        tokens = {p: secrets.token_bytes(JOIN_TOKEN_BYTES) for p in pids}

        def listening(port: int) -> None:
            async def invite():
                async def one(pid, mid):
                    w = self.round_writers.get(mid)
                    link = self.links.get(w) if w is not None else None
                    if link is None:
                        return
                    start = SecAggStart(mid, pid, params.num_clients, params.field_dim, round_id.hex(), port,
                                        [registry[p].hex() for p in sorted(registry)], tokens[pid].hex())
                    try:
                        await write_frame(link.writer, encode(start), timeout=self.timeout)
                    except _FAILURES as exc:
                        self._drop(w, f"{type(exc).__name__}: {exc}")
                await asyncio.gather(*(one(p, m) for p, m in pids.items()))
                invited.set_result(None)
            asyncio.ensure_future(invite())

        traffic: dict[int, list[int]] = {}
        try:
            result = await serve_round(params, round_id, dim, host=self.host, port=self.secagg_port,
                                       join_timeout=self.secagg_timeout, step_timeout=self.secagg_timeout,
                                       on_listening=listening, faults=faults, exclude=exclude, ssl=self.ssl_context,
                                       log=self.log, verify_keys=registry if params.active else None,
                                       join_tokens=tokens, traffic=traffic)
        except OSError as exc:  # only the listener's bind raises this: no client was invited yet
            if invited.done():  # pragma: no cover - serve_round catches every connection's OSError
                raise
            raise RoundFailed("secagg_port_unavailable",
                              f"secure aggregation could not listen on port {self.secagg_port}: {exc}") from None
        await invited
        return result, faults, traffic

    def close(self) -> None:
        """Say goodbye to every client, close the connections still joining, stop listening."""
        try:
            self._call(self._send_all(self.connected(), Bye()))
            self._call(self._stop_serving())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()

    async def _stop_serving(self) -> None:
        # On the loop's own thread: asyncio's streams and servers are not thread-safe, and
        # closing the listener from another thread races the loop's own bookkeeping of it.
        for w in self.connected():
            self.links[w].writer.close()
        self._listener.close()
        await self._end_joining()
        await self._listener.wait_closed()

    async def _end_joining(self) -> None:
        tasks = list(self._waiting.values()) + list(self._closing)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class NetworkTransport:
    """The :class:`~fl.aggregation.secure_sum.SecAggTransport` over TCP: the server's side runs
    here, each client plays its own side with its own input in its own process."""

    def __init__(self, session: ServerSession):
        self.session = session

    def run(self, params, messages, inputs, *, field_inputs, dropout, exclude, round_id, seed, client_types):
        if client_types:
            raise ValueError("the network transport runs each client's own SecAgg code; no client_types here")
        dim = len(next(iter(inputs.values())))
        pids = {p: m.client_id for p, m in messages.items()}
        result, faults, traffic = self.session.secagg(params, pids, round_id, dim, exclude)
        for p, exc in sorted(faults.items()):
            self.session.log(f"secagg: client {pids.get(p)} (protocol id {p}) dropped: {type(exc).__name__}: {exc}")
        # a message the server refused names its client with the reason, as in process; a closed
        # connection or a missed deadline is a dropout (a crashed or cut-off client looks like that)
        refusals = {p: exc for p, exc in faults.items()
                    if isinstance(exc, SecAggError) and not isinstance(exc, _DROPOUTS)}
        return RoundReport(result=result, upload_bytes={p: t[0] for p, t in traffic.items()},
                           download_bytes={p: t[1] for p, t in traffic.items()}, client_seconds={},
                           server_seconds=0.0, client_errors={}, server_refusals=refusals)

    def __repr__(self) -> str:
        return f"NetworkTransport(port={self.session.port})"
