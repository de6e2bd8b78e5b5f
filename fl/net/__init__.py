"""A federated run across processes: ``sabre serve`` and ``sabre client`` (docs/simulation.md)."""
