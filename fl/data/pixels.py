"""Conversion of LEAF/TFF float pixels (1.0 = white, 0.0 = ink) to the dataset's ``uint8``.

LEAF writes ``x / 255`` for 8-bit grey levels ``x``, so ``round(255 * f)`` recovers the level
exactly (the float error is far below half a level). TFF's ``.h5`` files are derived from the
same preprocessing. Values off the 1/255 grid are rounded to the nearest level.
"""
from __future__ import annotations

import numpy as np

from .errors import DataFormatError

__all__ = ["floats_to_uint8"]

#: how far outside [0, 1] a float pixel may lie (rounding noise) before it is rejected
_RANGE_SLACK = 1e-3


def floats_to_uint8(values: np.ndarray, where: str) -> np.ndarray:
    """Maps float pixels in [0, 1] (1.0 = white) to ``uint8`` levels (255 = white).

    Args:
      values: float array of any shape.
      where: a description for error messages (file and writer).

    Returns:
      ``uint8`` array of the same shape, ``round(255 * values)``.

    Raises:
      DataFormatError: if a value is not finite or lies outside [0, 1].
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size:
        if not np.isfinite(arr).all():
            raise DataFormatError(f"{where}: pixels hold NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
            raise DataFormatError(f"{where}: pixels must be floats in [0, 1] (1.0 = white), "
                                  f"got range [{lo:.4g}, {hi:.4g}]")
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
