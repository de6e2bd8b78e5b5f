"""Readers shared by the tests that inspect a run directory's records and its accountant."""
from __future__ import annotations

import csv

from fl.experiment import _prepare


def rows(path):
    """The rows of a CSV record, as dicts."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def accounting(cfg):
    """The accountant of the pipeline ``cfg`` builds (the outermost stage that has one)."""
    stage = _prepare(cfg).pipeline
    while getattr(stage, "accounting", None) is None:
        stage = stage.inner
    return stage.accounting
