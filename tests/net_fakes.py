"""A stand-in for the server's session (fl.net.session.ServerSession) in tests of
fl.net.server.NetworkSimulation: twelve connected writers, each round's uploads given."""
from __future__ import annotations


class FakeSession:
    """``updates`` returns ``ups`` (``{message id: Update or reason}``) every round; ``lines``
    holds what the simulation logged."""

    dim = 14410  # small_cnn

    def __init__(self, ups=None):
        self.ups = {} if ups is None else ups
        self.lines: list[str] = []

    def connected(self):
        return list(range(12))

    def updates(self, r, slots, k, params):
        return self.ups

    def log(self, text):
        self.lines.append(text)
