"""Run numpy's BLAS on the calling thread only, for the projection passes.

The projection passes (:mod:`.projection`) are a few float32 matrix products per 4096-column
block. OpenBLAS splits each over every core and its worker threads spin while they wait; on a
machine whose other cores are busy (a training run next to the prover, the usual case here)
that made the passes two to three times slower than on one thread. :func:`single_threaded`
sets OpenBLAS's thread-local thread count to 1 for the duration of a ``with`` block
(``openblas_set_num_threads_local``, OpenBLAS 0.3.27 and later) and restores it after; other
threads of the process are not affected. Where numpy's BLAS is not an OpenBLAS with that
function, it does nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from typing import Iterator

import numpy as np

__all__ = ["single_threaded"]

_SETTER = None
_LOOKED = False


def _find_setter():
    global _SETTER, _LOOKED
    if _LOOKED:
        return _SETTER
    _LOOKED = True
    candidates: list[str] = []
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            candidates += sorted({line.split()[-1] for line in fh if "openblas" in line.lower()})
    except OSError:
        pass
    libs_dir = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    candidates += sorted(glob.glob(os.path.join(libs_dir, "*openblas*")))
    for path in candidates:
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        _SETTER = fn
        break
    return _SETTER


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Within the block, numpy's OpenBLAS uses one thread for calls made by this thread."""
    setter = _find_setter()
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        if previous > 0:
            setter(previous)
