"""The networked transport: a server process and client processes over TCP (asyncio).

The processes run the same :class:`~secagg.client.SecAggClient` and
:class:`~secagg.server.SecAggServer` state machines as the in-process driver; messages travel
as length-prefixed frames (:mod:`secagg.net.framing`) carrying the same canonical encodings.
"""
