"""Drawing primitives of the synthetic scenes: a pen that draws at sub-pixel positions with OpenCV (so
motion is smooth), patterned shapes (blocks, ellipses, the mount, the jug) and the random colours they
are painted in. No randomness of its own: every random draw comes from a generator passed in."""
from __future__ import annotations

import colorsys
import math
from collections.abc import Callable

import cv2
import numpy as np

Color = tuple[int, int, int]
Vec = np.ndarray

_SHIFT = 4  # cv2 fractional bits: sub-pixel positions give smooth motion
_ONE = 1 << _SHIFT


def vec(x: float, y: float) -> Vec:
    return np.array([x, y], dtype=np.float64)


def ease(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class Pen:
    """Drawing in output coordinates onto a canvas that may carry a margin (for camera shake)."""

    def __init__(self, img: np.ndarray, offset: int = 0):
        self.img = img
        self.o = offset

    def _p(self, p: Vec) -> tuple[int, int]:
        return (int(round((p[0] + self.o) * _ONE)), int(round((p[1] + self.o) * _ONE)))

    def line(self, a: Vec, b: Vec, color: Color, thick: float) -> None:
        cv2.line(self.img, self._p(a), self._p(b), color, max(1, int(round(thick))), cv2.LINE_AA, _SHIFT)

    def circle(self, c: Vec, r: float, color: Color, thick: int = -1) -> None:
        cv2.circle(self.img, self._p(c), max(1, int(round(r * _ONE))), color, thick, cv2.LINE_AA, _SHIFT)

    def polyline(self, pts: list[Vec], color: Color, thick: float) -> None:
        arr = np.array([self._p(p) for p in pts], dtype=np.int32)
        cv2.polylines(self.img, [arr], False, color, max(1, int(round(thick))), cv2.LINE_AA, _SHIFT)

    def fill(self, pts: list[Vec], color: Color) -> None:
        arr = np.array([self._p(p) for p in pts], dtype=np.int32)
        cv2.fillPoly(self.img, [arr], color, cv2.LINE_AA, _SHIFT)

    def paint(self, center: Vec, angle: float, half: tuple[float, float], shape: Callable,
              pattern: Callable, colors: tuple[Color, Color]) -> None:
        """Fill `shape(u, v)` (object coordinates, rotated by `angle`) with `pattern(u, v)`.

        The texture is attached to the object, so it moves and turns with it.
        """
        hw, hh = half
        c, s = math.cos(angle), math.sin(angle)
        ex, ey = abs(c) * hw + abs(s) * hh + 1, abs(s) * hw + abs(c) * hh + 1
        cx, cy = center[0] + self.o, center[1] + self.o
        height, width = self.img.shape[:2]
        x0, x1 = max(int(cx - ex), 0), min(int(cx + ex) + 2, width)
        y0, y1 = max(int(cy - ey), 0), min(int(cy + ey) + 2, height)
        if x0 >= x1 or y0 >= y1:
            return
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        u = c * dx + s * dy
        v = -s * dx + c * dy
        mask = shape(u, v)
        if not mask.any():
            return
        ink = np.broadcast_to(pattern(u, v), mask.shape)
        roi = self.img[y0:y1, x0:x1]
        roi[mask & ink] = colors[1]
        roi[mask & ~ink] = colors[0]


# shapes in object coordinates (pixels)
def block_shape(hw: float, hh: float) -> Callable:
    return lambda u, v: (u / hw) ** 4 + (v / hh) ** 4 <= 1.0


def ellipse_shape(hw: float, hh: float) -> Callable:
    return lambda u, v: (u / hw) ** 2 + (v / hh) ** 2 <= 1.0


def mount_shape(h: float, f: int) -> Callable:
    """Body, head and two round legs/wheels: one silhouette for bike and horse."""
    def shape(u, v):
        u = u * f
        body = (u / (0.42 * h)) ** 2 + (v / (0.15 * h)) ** 2 <= 1.0
        head = ((u - 0.42 * h) / (0.12 * h)) ** 2 + ((v + 0.14 * h) / (0.09 * h)) ** 2 <= 1.0
        r2 = (0.17 * h) ** 2
        front = (u - 0.27 * h) ** 2 + (v - 0.2 * h) ** 2 <= r2
        back = (u + 0.27 * h) ** 2 + (v - 0.2 * h) ** 2 <= r2
        legs = front | back
        return body | head | legs
    return shape


def jug_shape(h: float, f: int) -> Callable:
    hw, hh = 0.095 * h, 0.13 * h
    def shape(u, v):
        u = u * f
        body = (u / hw) ** 4 + (v / hh) ** 4 <= 1.0
        spout = (u >= hw * 0.8) & (u <= hw + 0.07 * h) & (v <= -hh + 0.07 * h) & (v >= -hh + (u - hw) * 0.6)
        return body | spout
    return shape


# patterns: True where the second colour goes
def pattern_fill(kind: str, period: float, phase: tuple[float, float]) -> Callable:
    half = period / 2.0
    pu, pv = phase
    if kind == "lower":  # the lower half of the object
        return lambda u, v: v >= 0
    if kind == "upper":
        return lambda u, v: v < 0
    if kind == "hstripes":
        return lambda u, v: np.floor((v + pv) / half) % 2 == 0
    if kind == "vstripes":
        return lambda u, v: np.floor((u + pu) / half) % 2 == 0
    if kind == "checker":
        return lambda u, v: (np.floor((u + pu) / half) + np.floor((v + pv) / half)) % 2 == 0
    if kind == "dots":
        r2 = (0.3 * period) ** 2
        return lambda u, v: (((u + pu) % period - half) ** 2 + ((v + pv) % period - half) ** 2) < r2
    if kind == "rings":
        return lambda u, v: np.floor(np.sqrt(u * u + (2.5 * v) ** 2) / half) % 2 == 0
    if kind == "plain":
        return lambda u, v: np.zeros((1, 1), dtype=bool)
    raise ValueError(f"unknown pattern {kind!r}")


# ----------------------------------------------------------------------------- colours

def hsv_bgr(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (int(b * 255), int(g * 255), int(r * 255))


def random_color(rng: np.random.Generator, s=(0.2, 1.0), v=(0.25, 1.0)) -> Color:
    return hsv_bgr(rng.uniform(), rng.uniform(*s), rng.uniform(*v))


def pattern_colors(rng: np.random.Generator) -> tuple[Color, Color]:
    """Two colours of random hue that differ in lightness, so the pattern survives grayscale."""
    dark = random_color(rng, s=(0.2, 1.0), v=(0.05, 0.35))
    light = random_color(rng, s=(0.0, 0.7), v=(0.75, 1.0))
    return (dark, light) if rng.uniform() < 0.5 else (light, dark)


def soft_colors(rng: np.random.Generator) -> tuple[Color, Color]:
    """Two colours of lower contrast than a prop's: background clutter, not a class cue."""
    hue, sat, val = rng.uniform(), rng.uniform(0.1, 0.8), rng.uniform(0.3, 0.8)
    step = rng.uniform(0.1, 0.25)
    return hsv_bgr(hue, sat, val - step), hsv_bgr(hue + rng.uniform(-0.1, 0.1), sat, min(val + step, 1.0))


def darker(c: Color, k: float = 0.75) -> Color:
    return (int(c[0] * k), int(c[1] * k), int(c[2] * k))
