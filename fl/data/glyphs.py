"""Stroke skeletons of the digits 0-9 used by the synthetic generator.

Coordinates are glyph units: ``x`` from 0 (left) to 1 (right), ``y`` from 0 (top) to 1
(bottom); the glyph is drawn in the box ``y in [0, 1]``, roughly ``x in [0.2, 0.8]``. Each
digit has one or more *variants* (a 7 with or without crossbar, a 1 with or without flag, ...);
each synthetic writer picks one variant per digit. A variant is a list of strokes, each stroke
a polyline (arcs are given as finely sampled polylines).

:func:`skeleton_points` resamples every stroke at a uniform arc-length step, which is what the
renderer splats.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["GLYPHS", "skeleton_points", "num_variants"]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> np.ndarray:
    """Points of an elliptic arc from angle ``a0`` to ``a1`` (degrees, counter-clockwise as
    seen on screen, 0 = right, 90 = up)."""
    n = max(2, int(abs(a1 - a0)) + 1)
    t = np.deg2rad(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy - ry * np.sin(t)], axis=1)


def _line(*pts: tuple[float, float]) -> np.ndarray:
    return np.asarray(pts, dtype=np.float64)


def _cat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts, axis=0)


def _figure_eight() -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, 361)
    return np.stack([0.5 + 0.27 * np.sin(2.0 * t), 0.5 - 0.47 * np.cos(t)], axis=1)


#: GLYPHS[digit] = list of variants; a variant = list of strokes; a stroke = float [k, 2]
GLYPHS: dict[int, list[list[np.ndarray]]] = {
    0: [
        [_arc(0.5, 0.5, 0.28, 0.46, 100, 475)],
        [_arc(0.5, 0.5, 0.24, 0.47, 80, -290)],
    ],
    1: [
        [_line((0.5, 0.02), (0.5, 0.98))],
        [_line((0.32, 0.22), (0.52, 0.02), (0.52, 0.98))],
        [_line((0.32, 0.22), (0.52, 0.02), (0.52, 0.98)), _line((0.32, 0.98), (0.72, 0.98))],
    ],
    2: [
        [_cat(_arc(0.5, 0.3, 0.27, 0.27, 160, -30), _line((0.22, 0.98), (0.8, 0.98)))],
        [_cat(_arc(0.5, 0.32, 0.28, 0.3, 170, -40),
              _line((0.24, 0.96), (0.5, 0.9), (0.8, 0.97)))],
    ],
    3: [
        [_cat(_arc(0.5, 0.28, 0.25, 0.25, 150, -90), _arc(0.5, 0.73, 0.28, 0.25, 90, -150))],
        [_cat(_line((0.22, 0.03), (0.78, 0.03), (0.45, 0.42)),
              _arc(0.5, 0.7, 0.29, 0.27, 110, -150))],
    ],
    4: [
        [_line((0.58, 0.02), (0.18, 0.66), (0.84, 0.66)), _line((0.62, 0.02), (0.62, 0.98))],
        [_line((0.25, 0.02), (0.22, 0.62), (0.82, 0.62)), _line((0.66, 0.15), (0.66, 0.98))],
    ],
    5: [
        [_cat(_line((0.78, 0.03), (0.3, 0.03), (0.27, 0.46)),
              _arc(0.48, 0.7, 0.29, 0.27, 140, -150))],
        [_cat(_line((0.3, 0.03), (0.27, 0.46)), _arc(0.48, 0.7, 0.29, 0.27, 140, -150)),
         _line((0.3, 0.03), (0.8, 0.03))],
    ],
    6: [
        [_cat(_arc(0.6, 0.62, 0.37, 0.58, 78, 190), _arc(0.5, 0.72, 0.27, 0.25, 180, 540))],
        [_cat(_line((0.7, 0.02), (0.3, 0.5)), _arc(0.5, 0.72, 0.26, 0.25, 160, 530))],
    ],
    7: [
        [_line((0.2, 0.04), (0.8, 0.04), (0.42, 0.98))],
        [_line((0.2, 0.04), (0.8, 0.04), (0.42, 0.98)), _line((0.45, 0.5), (0.77, 0.5))],
    ],
    8: [
        [_arc(0.5, 0.27, 0.21, 0.23, 90, 450), _arc(0.5, 0.73, 0.26, 0.25, 90, 450)],
        [_figure_eight()],
    ],
    9: [
        [_arc(0.5, 0.3, 0.25, 0.26, 0, 360), _line((0.75, 0.3), (0.7, 0.98))],
        [_arc(0.5, 0.3, 0.25, 0.26, 0, 360),
         _line((0.75, 0.3), (0.73, 0.7), (0.57, 0.95), (0.36, 0.94))],
    ],
}


def num_variants(digit: int) -> int:
    """How many skeleton variants ``digit`` has."""
    return len(GLYPHS[digit])


@functools.lru_cache(maxsize=None)
def skeleton_points(digit: int, variant: int, step: float) -> np.ndarray:
    """All strokes of a variant resampled every ``step`` glyph units along their length.

    Args:
      digit: 0-9.
      variant: index into ``GLYPHS[digit]``.
      step: arc-length spacing of the returned points (glyph units).

    Returns:
      Read-only ``float64 [P, 2]`` points ``(x, y)``; strokes follow one another.
    """
    out = []
    for stroke in GLYPHS[digit][variant]:
        seg = np.diff(stroke, axis=0)
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
        s = np.linspace(0.0, cum[-1], max(2, int(np.ceil(cum[-1] / step)) + 1))
        out.append(np.stack([np.interp(s, cum, stroke[:, 0]), np.interp(s, cum, stroke[:, 1])],
                            axis=1))
    pts = np.concatenate(out, axis=0)
    pts.setflags(write=False)
    return pts
