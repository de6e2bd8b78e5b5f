"""Local training of federated clients: plain SGD from the global weights, returning updates.

Public API:

* :class:`LocalConfig` - epochs, batch size, learning rate, shuffling;
* :class:`ClientData` - one client's images and labels on the training device;
* :func:`train_clients` - train many clients from the same start; returns ``local - start``.

Two interchangeable paths compute the same updates (up to float rounding):
``"loop"`` (:mod:`fl.training.loop`, one client after the other) and ``"batched"``
(:mod:`fl.training.batched`, all clients in one vectorised step). :mod:`fl.training.flops`
gives the analytic cost per example.
"""
from fl.training.config import ClientData, LocalConfig
from fl.training.dispatch import PATHS, train_clients

__all__ = ["LocalConfig", "ClientData", "train_clients", "PATHS"]
