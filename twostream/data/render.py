"""Rendering of the synthetic action dataset: stills and clips of the 12 classes, as arrays.

`twostream.data.synthetic` writes what this renders into the raw layouts of Stanford 40 and
HMDB51. Everything is a pure function of the seed: each class and each image/clip draws from its own
`SeedSequence(seed, spawn_key=...)`, and each clip splits that into independent streams for
layout, background, actor, motion, distractor, camera and noise.

Scenes are a stick figure with thick limbs, a prop, a random background and nuisance. The
classes are built so that two-stream recognition matters:

| class (HMDB51 / Stanford40) | appearance | motion | separable only by |
|---|---|---|---|
| clap / applauding | front view, hands raised in front, big mitts | hands swing sideways, towards each other | motion (vs wave) |
| wave / waving_hands | the same figure and hand positions | both hands swing up and down, in phase | motion (vs clap) |
| run / running | side view, running gait | gait + moving sideways | motion (vs jump) |
| jump / jumping | the same sprite, poses and places | gait + hopping up and down in place | motion (vs run) |
| drink / drinking | side view, two-tone block in hand, dark lower half | hand to mouth and back, block tilts | appearance (vs smoke) |
| smoke / smoking | the same block, dark upper half | the same hand-to-mouth program | appearance (vs drink) |
| ride_bike / riding_a_bike | rider on a mount, checkerboard mount | moves sideways, bobbing | appearance (vs ride_horse) |
| ride_horse / riding_a_horse | the same mount, vertical stripes | the same trajectory | appearance (vs ride_bike) |
| climb / climbing | ladder, front view, arms up | moves up the ladder, limbs alternate | - |
| pour / pouring_liquid | dotted jug, bowl on the ground | jug tilts, droplets fall into the bowl | - |
| shoot_bow / shooting_an_arrow | bow, string, arrow, arm extended | string drawn slowly, arrow flies off fast | - |
| throw / throwing_frisby | ring-patterned disc in the hand | arm winds back, swings fast, disc flies | - |

Within a pair the same seed renders the same clip except for what the pair differs in. Clap
and wave share background, actor, colours and the distribution of hand positions (each draws
its fixed coordinate from the other's oscillation, so single frames are identically
distributed); run and jump share the gait and the distribution of places (run's height is a
random hop height, jump's place a random point of a run). Drink/smoke and bike/horse share
motion and silhouette and differ in a coarse pattern inside it (visible at 64 px; drink and
smoke blocks even have the same edges, only the dark half differs, so optical flow cannot tell
them apart). Pattern colours differ in lightness and have random hues, so the cue survives
colour jitter and grayscale where a hue cue would not.

Nuisance: textured backgrounds (gradient, blotches, horizon or bricks, always with fine
texture) with textured clutter (stripes, checks, dots), in 30% of clips a shape crossing the
scene; random actor position, size, colours and facing; upper-body framing ('u') for some
classes (most clap and wave clips); camera shake (stronger in 'cm' clips); sensor noise by the
'goo/med/bad' tag; MPEG-4 and JPEG compression. Every clip begins with a lead-in (10-30% of its frames) in which the actor
stands still in a neutral pose with props at rest, half of the time in another scene (a cut);
half of the clips end with a lead-out (5-25%) in the same pose. So the first frame is the least
informative, the middle frame always shows the action, and the 9 flow frames around the middle
see (almost only) the action. Stills are the same renderer at a random instant of the action
(no lead-in), in random sizes and aspect ratios, so a model trained on them transfers to frames.
"""
from __future__ import annotations

import colorsys
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from twostream.classes import HMDB51_CLASSES
from twostream.params import SyntheticParams

# Clip timing: lead-in (neutral pose) and optional lead-out, as fractions of the clip.
LEAD_IN = (0.10, 0.22)
LEAD_OUT = (0.05, 0.25)
LEAD_OUT_P = 0.5

# Classes whose clips and stills may be framed as upper body ('u': larger actor, legs cut off), and how
# often. Clap and wave are mostly close-ups: their cue is the hands' motion, and hands a few pixels wide
# at 64 px leave the flow stream too little to learn it from (docs/demo.md, the flow study).
UPPER_BODY_P = {"clap": 0.6, "wave": 0.6, "drink": 0.25, "smoke": 0.25, "shoot_bow": 0.25, "throw": 0.25}

Color = tuple[int, int, int]
Vec = np.ndarray


# ----------------------------------------------------------------------------- drawing

_SHIFT = 4  # cv2 fractional bits: sub-pixel positions give smooth motion
_ONE = 1 << _SHIFT


def _v(x: float, y: float) -> Vec:
    return np.array([x, y], dtype=np.float64)


def _smooth(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Pen:
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
def _block(hw: float, hh: float) -> Callable:
    return lambda u, v: (u / hw) ** 4 + (v / hh) ** 4 <= 1.0


def _ellipse(hw: float, hh: float) -> Callable:
    return lambda u, v: (u / hw) ** 2 + (v / hh) ** 2 <= 1.0


def _mount(h: float, f: int) -> Callable:
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


def _jug(h: float, f: int) -> Callable:
    hw, hh = 0.095 * h, 0.13 * h
    def shape(u, v):
        u = u * f
        body = (u / hw) ** 4 + (v / hh) ** 4 <= 1.0
        spout = (u >= hw * 0.8) & (u <= hw + 0.07 * h) & (v <= -hh + 0.07 * h) & (v >= -hh + (u - hw) * 0.6)
        return body | spout
    return shape


# patterns: True where the second colour goes
def _pattern(kind: str, period: float, phase: tuple[float, float]) -> Callable:
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

def _bgr(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (int(b * 255), int(g * 255), int(r * 255))


def _color(rng: np.random.Generator, s=(0.2, 1.0), v=(0.25, 1.0)) -> Color:
    return _bgr(rng.uniform(), rng.uniform(*s), rng.uniform(*v))


def _pattern_colors(rng: np.random.Generator) -> tuple[Color, Color]:
    """Two colours of random hue that differ in lightness, so the pattern survives grayscale."""
    dark = _color(rng, s=(0.2, 1.0), v=(0.05, 0.35))
    light = _color(rng, s=(0.0, 0.7), v=(0.75, 1.0))
    return (dark, light) if rng.uniform() < 0.5 else (light, dark)


def _soft_colors(rng: np.random.Generator) -> tuple[Color, Color]:
    """Two colours of lower contrast than a prop's: background clutter, not a class cue."""
    hue, sat, val = rng.uniform(), rng.uniform(0.1, 0.8), rng.uniform(0.3, 0.8)
    step = rng.uniform(0.1, 0.25)
    return _bgr(hue, sat, val - step), _bgr(hue + rng.uniform(-0.1, 0.1), sat, min(val + step, 1.0))


def _darker(c: Color, k: float = 0.75) -> Color:
    return (int(c[0] * k), int(c[1] * k), int(c[2] * k))


# ----------------------------------------------------------------------------- stage and figure

@dataclass
class _Style:
    shirt: Color
    pants: Color
    skin: Color
    prop: tuple[Color, Color]   # the pattern colours of the class's textured object
    accent: Color               # bow, ladder, bowl
    accent2: Color              # string, liquid, arrow
    pattern_phase: tuple[float, float]


@dataclass
class _Stage:
    width: int
    height: int
    h: float          # actor height in pixels
    ground: float     # y of the feet when standing
    style: _Style

    def place(self, rng: np.random.Generator, back: float, front: float, f: int) -> float:
        """An x for the actor so that [x - back, x + front] (in facing terms) stays in frame."""
        lo, hi = back if f > 0 else front, self.width - (front if f > 0 else back)
        if hi <= lo:
            return self.width / 2.0 + (back - front) / 2.0 * f
        return float(rng.uniform(lo, hi))


# body proportions, in actor heights
_THIGH, _SHIN, _UPPER, _FORE = 0.25, 0.24, 0.17, 0.17
_TORSO, _NECK_HEAD, _HEAD_R, _HAND_R = 0.30, 0.115, 0.085, 0.055


def _skeleton(hip: Vec, h: float, f: int, view: str, lean: float = 0.0) -> dict[str, Vec]:
    up = _v(f * math.sin(lean), -math.cos(lean))
    neck = hip + _TORSO * h * up
    j = {"hip": hip, "neck": neck, "head": neck + _NECK_HEAD * h * up}
    if view == "front":
        j["sh_b"], j["sh_f"] = neck + _v(-0.11 * h, 0.03 * h), neck + _v(0.11 * h, 0.03 * h)
        j["hip_b"], j["hip_f"] = hip + _v(-0.055 * h, 0), hip + _v(0.055 * h, 0)
    else:
        j["sh_b"] = j["sh_f"] = neck + 0.03 * h * -up
        j["hip_b"] = j["hip_f"] = hip
    return j


def _ik(root: Vec, target: Vec, l1: float, l2: float, hint: Vec) -> tuple[Vec, Vec]:
    """Two-link chain from `root` towards `target`; the joint bends towards `hint`."""
    d = target - root
    dist = float(np.hypot(*d))
    if dist < 1e-6:
        d, dist = _v(0, 1), 1e-6
    direction = d / dist
    dist = min(max(dist, abs(l1 - l2) + 1e-3), l1 + l2 - 1e-3)
    a = (l1 * l1 - l2 * l2 + dist * dist) / (2 * dist)
    k = math.sqrt(max(l1 * l1 - a * a, 0.0))
    perp = _v(-direction[1], direction[0])
    if float(perp @ hint) < 0:
        perp = -perp
    return root + direction * a + perp * k, root + direction * dist


def _angle_limb(root: Vec, a1: float, l1: float, a2: float, l2: float, f: int) -> tuple[Vec, Vec]:
    """Limb from angles measured from straight down, positive = forward (towards facing)."""
    mid = root + l1 * _v(f * math.sin(a1), math.cos(a1))
    return mid, mid + l2 * _v(f * math.sin(a2), math.cos(a2))


def _set_arm(j: dict, side: str, target: Vec, h: float, hint: Vec) -> None:
    j[f"el_{side}"], j[f"ha_{side}"] = _ik(j[f"sh_{side}"], target, _UPPER * h, _FORE * h, hint)


def _set_leg(j: dict, side: str, target: Vec, h: float, hint: Vec) -> None:
    j[f"kn_{side}"], j[f"ft_{side}"] = _ik(j[f"hip_{side}"], target, _THIGH * h, _SHIN * h, hint)


def _neutral(x: float, ground: float, h: float, f: int, view: str) -> dict[str, Vec]:
    """Standing still, arms hanging: the pose of lead-in and lead-out."""
    j = _skeleton(_v(x, ground - (_THIGH + _SHIN - 0.005) * h), h, f, view)
    if view == "front":
        _set_arm(j, "b", j["sh_b"] + _v(-0.06 * h, 0.32 * h), h, _v(-1, 0))
        _set_arm(j, "f", j["sh_f"] + _v(0.06 * h, 0.32 * h), h, _v(1, 0))
        _set_leg(j, "b", _v(j["hip_b"][0] - 0.03 * h, ground), h, _v(0, -1))
        _set_leg(j, "f", _v(j["hip_f"][0] + 0.03 * h, ground), h, _v(0, -1))
    else:
        _set_arm(j, "b", j["sh_b"] + _v(-f * 0.03 * h, 0.32 * h), h, _v(-f, 0))
        _set_arm(j, "f", j["sh_f"] + _v(f * 0.04 * h, 0.32 * h), h, _v(-f, 0))
        _set_leg(j, "b", _v(x - f * 0.04 * h, ground), h, _v(f, 0))
        _set_leg(j, "f", _v(x + f * 0.04 * h, ground), h, _v(f, 0))
    return j


def _draw_back(pen: _Pen, j: dict, st: _Stage, view: str) -> None:
    """Limbs behind the torso (the far side in side view)."""
    h, s = st.h, st.style
    k = 0.72 if view == "side" else 1.0
    pen.line(j["hip_b"], j["kn_b"], _darker(s.pants, k), 0.075 * h)
    pen.line(j["kn_b"], j["ft_b"], _darker(s.pants, k), 0.07 * h)
    pen.line(j["sh_b"], j["el_b"], _darker(s.shirt, k), 0.07 * h)
    pen.line(j["el_b"], j["ha_b"], _darker(s.skin, k), 0.065 * h)
    pen.circle(j["ha_b"], _HAND_R * h, _darker(s.skin, k))


def _draw_front(pen: _Pen, j: dict, st: _Stage, view: str, arm: bool = True) -> None:
    """Torso, near leg, head and (unless `arm` is False) the near arm."""
    h, s = st.h, st.style
    pen.line(j["hip_f"], j["kn_f"], s.pants, 0.075 * h)
    pen.line(j["kn_f"], j["ft_f"], s.pants, 0.07 * h)
    pen.line(j["hip"], j["neck"], s.shirt, (0.2 if view == "front" else 0.14) * h)
    pen.circle(j["head"], _HEAD_R * h, s.skin)
    if arm:
        _draw_arm(pen, j, st)


def _draw_arm(pen: _Pen, j: dict, st: _Stage) -> None:
    h, s = st.h, st.style
    pen.line(j["sh_f"], j["el_f"], s.shirt, 0.07 * h)
    pen.line(j["el_f"], j["ha_f"], s.skin, 0.065 * h)
    pen.circle(j["ha_f"], _HAND_R * h, s.skin)


def _draw_figure(pen: _Pen, j: dict, st: _Stage, view: str) -> None:
    _draw_back(pen, j, st, view)
    _draw_front(pen, j, st, view)


# ----------------------------------------------------------------------------- class programs
#
# A program draws its class at action time t (frames since the action began; stills use a
# random t) and, for lead-in/lead-out, the neutral pose with props at rest. Paired classes are
# one program with a switch, drawing the same random numbers in the same order, so the same
# seed renders the same clip except for what the pair differs in.

class _Program:
    view = "side"
    f = 1

    def static(self, pen: _Pen) -> None:
        """Scenery that does not move (drawn onto the background)."""

    def draw(self, pen: _Pen, t: float) -> None:
        raise NotImplementedError

    def rest(self, pen: _Pen, end: bool) -> None:
        """Lead-in (end=False) / lead-out (end=True): neutral pose, props at rest."""
        x, ground = self.anchor(end)
        _draw_figure(pen, _neutral(x, ground, self.st.h, self.f, self.view), self.st, self.view)

    def anchor(self, end: bool) -> tuple[float, float]:
        return self.x, self.st.ground


class _Hands(_Program):
    """clap (axis 'h': hands swing towards each other) and wave (axis 'v': hands swing up and down).

    The fixed coordinate of one class is drawn from the other's oscillation, so single frames
    of both classes have the same distribution of hand positions. Both wear big mitts, so the
    moving hands stay visible to optical flow at 64 px.
    """
    view = "front"

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int, axis: str):
        self.st, self.axis = st, axis
        self.x = st.place(rng, 0.3 * st.h, 0.3 * st.h, 1)
        self.period = rng.uniform(14, 22)
        self.phi = rng.uniform(0, 2 * math.pi)
        self.psi = rng.uniform(0, 2 * math.pi)

    def _hands(self, t: float) -> tuple[float, float]:
        osc = math.sin(2 * math.pi * t / self.period + self.phi)
        fixed = math.sin(self.psi)
        a, b = (osc, fixed) if self.axis == "h" else (fixed, osc)
        return 0.21 + 0.17 * a, -0.08 + 0.2 * b  # half separation, height (actor heights)

    def _draw(self, pen: _Pen, j: dict) -> None:
        _draw_figure(pen, j, self.st, self.view)
        for side in ("b", "f"):
            pen.circle(j[f"ha_{side}"], 0.15 * self.st.h, self.st.style.accent)

    def draw(self, pen: _Pen, t: float) -> None:
        h = self.st.h
        j = _neutral(self.x, self.st.ground, h, 1, "front")
        sep, up = self._hands(t)
        chest = j["neck"] + _v(0, 0.12 * h)
        _set_arm(j, "b", chest + _v(-sep * h, up * h), h, _v(-1, 0.6))
        _set_arm(j, "f", chest + _v(sep * h, up * h), h, _v(1, 0.6))
        self._draw(pen, j)

    def rest(self, pen: _Pen, end: bool) -> None:
        self._draw(pen, _neutral(self.x, self.st.ground, self.st.h, 1, "front"))


def _gait(hip: Vec, h: float, f: int, theta: float) -> dict[str, Vec]:
    j = _skeleton(hip, h, f, "side", lean=0.2)
    for side, offset in (("f", 0.0), ("b", math.pi)):
        ph = theta + offset
        a = 0.55 * math.sin(ph)
        bend = 0.25 + 0.95 * max(0.0, math.cos(ph))
        j[f"kn_{side}"], j[f"ft_{side}"] = _angle_limb(j[f"hip_{side}"], a, _THIGH * h,
                                                       a - bend, _SHIN * h, f)
        c = -0.65 * math.sin(ph)
        j[f"el_{side}"], j[f"ha_{side}"] = _angle_limb(j[f"sh_{side}"], c, _UPPER * h, c + 1.4, _FORE * h, f)
    return j


class _Gait(_Program):
    """run (translates sideways) and jump (hops in place): the same sprite and running gait.

    Run's height above ground is a random hop height, jump's place a random point of a run,
    so single frames of both classes have the same distribution of places and poses.
    """

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int, mode: str):
        self.st, self.mode, h = st, mode, st.h
        self.f = int(rng.choice([-1, 1]))
        self.gait_period = rng.uniform(12, 18)
        self.theta0 = rng.uniform(0, 2 * math.pi)
        margin = 0.25 * h
        self.speed = min(rng.uniform(0.028, 0.042) * h, (st.width - 2 * margin) / max(length, 1))
        path = self.speed * length
        self.x0 = st.place(rng, margin, margin + path, self.f)
        self.hop = rng.uniform(0.2, 0.3) * h
        self.hop_period = rng.uniform(14, 22)
        self.hop_phase = rng.uniform(0, math.pi)
        self.t_virtual = rng.uniform(0, length)
        self.lift_virtual = self.hop * abs(math.sin(rng.uniform(0, math.pi)))
        self.length = length

    def _place(self, t: float) -> tuple[float, float]:
        if self.mode == "run":
            return self.x0 + self.f * self.speed * t, self.lift_virtual
        lift = self.hop * abs(math.sin(math.pi * t / self.hop_period + self.hop_phase))
        return self.x0 + self.f * self.speed * self.t_virtual, lift

    def draw(self, pen: _Pen, t: float) -> None:
        h = self.st.h
        x, lift = self._place(t)
        j = _gait(_v(x, 0.0), h, self.f, 2 * math.pi * t / self.gait_period + self.theta0)
        dy = self.st.ground - lift - max(j["ft_f"][1], j["ft_b"][1])
        j = {k: p + _v(0, dy) for k, p in j.items()}
        _draw_figure(pen, j, self.st, self.view)

    def anchor(self, end: bool) -> tuple[float, float]:
        x, _ = self._place(self.length if end else 0.0)
        return x, self.st.ground


def _cycle(t: float, period: float, phase: float) -> float:
    return ((t + phase) % period) / period


class _HandToMouth(_Program):
    """drink (block with a dark lower half, like a filled cup) and smoke (dark upper half, like
    a cigarette pack's top): one silhouette, the same edges, one motion."""

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int, pattern: str):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.2 * h, 0.35 * h, self.f)
        self.period = rng.uniform(28, 40)
        self.phase = rng.uniform(0, self.period)
        self.half = (0.12 * h, 0.18 * h)
        self.shape = _block(*self.half)
        self.pattern = _pattern(pattern, 0.36 * h, (0.0, 0.0))
        # the dark colour fills one half: the same edges (so the same flow), another pattern
        self.colors = tuple(sorted(st.style.prop, key=lambda c: -sum(c)))

    def _u(self, t: float) -> float:
        c = _cycle(t, self.period, self.phase)
        if c < 0.3:
            return _smooth(c / 0.3)
        if c < 0.55:
            return 1.0
        if c < 0.85:
            return 1.0 - _smooth((c - 0.55) / 0.3)
        return 0.0

    def _draw(self, pen: _Pen, u: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        rest = j["sh_f"] + _v(f * 0.14 * h, 0.28 * h)
        mouth = j["head"] + _v(f * 0.17 * h, 0.12 * h)
        hand = rest + u * (mouth - rest) + _v(f * 0.07 * h * math.sin(math.pi * u), 0)
        _set_arm(j, "f", hand, h, _v(-f * 0.3, 1))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side", arm=False)
        _draw_arm(pen, j, st)
        angle = -f * 0.5 * u
        center = hand + _v(-math.sin(angle), -math.cos(angle)) * (0.1 * h)
        pen.paint(center, angle, self.half, self.shape, self.pattern, self.colors)
        pen.circle(hand, _HAND_R * h, st.style.skin)

    def draw(self, pen: _Pen, t: float) -> None:
        self._draw(pen, self._u(t))

    def rest(self, pen: _Pen, end: bool) -> None:
        self._draw(pen, 0.0)


class _Ride(_Program):
    """ride_bike (checkerboard mount) and ride_horse (striped mount): one silhouette, one trajectory."""

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int, pattern: str):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        margin = 0.6 * h
        self.speed = min(rng.uniform(0.028, 0.042) * h, (st.width - 2 * margin) / max(length, 1))
        self.x0 = st.place(rng, margin, margin + self.speed * length, self.f)
        self.bob_period = rng.uniform(8, 14)
        self.bob_phase = rng.uniform(0, math.pi)
        self.shape = _mount(h, self.f)
        self.pattern = _pattern(pattern, 0.15 * h, st.style.pattern_phase)
        self.length = length

    def _draw(self, pen: _Pen, x: float, bob: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        c = _v(x, st.ground - 0.37 * h - bob)
        hip = c + _v(-f * 0.05 * h, -0.17 * h)
        j = _skeleton(hip, h, f, "side", lean=0.25)
        for side, dx in (("b", -0.03), ("f", 0.03)):
            j[f"kn_{side}"], j[f"ft_{side}"] = _angle_limb(hip, 1.35, _THIGH * h, 0.1 + dx, _SHIN * h, f)
            _set_arm(j, side, c + _v(f * (0.36 + dx) * h, -0.3 * h), h, _v(0, 1))
        _draw_back(pen, j, st, "side")
        pen.paint(c, 0.0, (0.56 * h, 0.38 * h), self.shape, self.pattern, st.style.prop)
        _draw_front(pen, j, st, "side")

    def draw(self, pen: _Pen, t: float) -> None:
        bob = 0.03 * self.st.h * abs(math.sin(math.pi * t / self.bob_period + self.bob_phase))
        self._draw(pen, self.x0 + self.f * self.speed * t, bob)

    def rest(self, pen: _Pen, end: bool) -> None:
        self._draw(pen, self.x0 + self.f * self.speed * (self.length if end else 0), 0.0)


class _Climb(_Program):
    """climb: a ladder; the actor moves up it, hands and feet alternating."""
    view = "front"

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int):
        self.st, h = st, st.h
        self.x = st.place(rng, 0.3 * h, 0.3 * h, 1)
        self.ground = st.ground + rng.uniform(0.0, 0.15) * h  # may start below the frame
        self.period = rng.uniform(16, 24)
        self.theta0 = rng.uniform(0, 2 * math.pi)
        room = max(self.ground - 0.95 * h, 0.0)
        self.speed = min(rng.uniform(0.02, 0.032) * h, room / max(length, 1))
        self.rung = rng.uniform(0.15, 0.19) * h
        self.length = length

    def static(self, pen: _Pen) -> None:
        h, s = self.st.h, self.st.style
        top, bottom = -0.2 * self.st.height, self.ground
        for dx in (-0.21 * h, 0.21 * h):
            pen.line(_v(self.x + dx, top), _v(self.x + dx, bottom), s.accent, 0.045 * h)
        y = bottom - 0.06 * h
        while y > top:
            pen.line(_v(self.x - 0.21 * h, y), _v(self.x + 0.21 * h, y), s.accent, 0.035 * h)
            y -= self.rung

    def draw(self, pen: _Pen, t: float) -> None:
        h = self.st.h
        feet = self.ground - self.speed * t
        th = 2 * math.pi * t / self.period + self.theta0
        j = _skeleton(_v(self.x, feet - 0.45 * h), h, 1, "front")
        s = math.sin(th)
        _set_arm(j, "b", j["sh_b"] + _v(-0.07 * h, -(0.23 + 0.09 * s) * h), h, _v(-1, 0))
        _set_arm(j, "f", j["sh_f"] + _v(0.07 * h, -(0.23 - 0.09 * s) * h), h, _v(1, 0))
        _set_leg(j, "b", j["hip_b"] + _v(-0.06 * h, (0.45 - 0.12 * max(0.0, s)) * h), h, _v(-1, 0))
        _set_leg(j, "f", j["hip_f"] + _v(0.06 * h, (0.45 - 0.12 * max(0.0, -s)) * h), h, _v(1, 0))
        _draw_figure(pen, j, self.st, self.view)

    def anchor(self, end: bool) -> tuple[float, float]:
        return self.x, self.ground - (self.speed * self.length if end else 0.0)


class _Pour(_Program):
    """pour: a dotted jug tilts; droplets fall into a bowl on the ground."""

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.2 * h, 0.65 * h, self.f)
        self.period = rng.uniform(32, 44)
        self.phase = rng.uniform(0, self.period)
        self.tilt = rng.uniform(1.0, 1.4)
        self.drop_speed = rng.uniform(0.05, 0.075) * h
        self.bowl_x = self.x + self.f * rng.uniform(0.4, 0.46) * h
        self.shape = _jug(h, self.f)
        self.pattern = _pattern("dots", 0.09 * h, st.style.pattern_phase)

    def static(self, pen: _Pen) -> None:
        h = self.st.h
        c = _v(self.bowl_x, self.st.ground - 0.11 * h)
        pts = [c + _v(0.17 * h * math.cos(a), 0.11 * h * math.sin(a)) for a in np.linspace(0, math.pi, 13)]
        pen.fill(pts, self.st.style.accent)

    def _u(self, t: float) -> float:
        c = _cycle(t, self.period, self.phase)
        if c < 0.25:
            return _smooth(c / 0.25)
        if c < 0.6:
            return 1.0
        if c < 0.85:
            return 1.0 - _smooth((c - 0.6) / 0.25)
        return 0.0

    def _draw(self, pen: _Pen, u: float, t: float, rest: bool) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        if rest:
            hand = j["ha_f"]
        else:
            hand = j["sh_f"] + _v(f * (0.22 + 0.04 * u) * h, (0.1 - 0.06 * u) * h)
            _set_arm(j, "f", hand, h, _v(-f * 0.3, 1))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side")
        angle = f * self.tilt * u
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        center = hand + rot @ _v(0, -0.1 * h)
        pen.paint(center, angle, (0.17 * h, 0.14 * h), self.shape, self.pattern, st.style.prop)
        pen.circle(hand, _HAND_R * h, st.style.skin)
        if u > 0.55:
            tip = center + rot @ _v(f * 0.16 * h, -0.12 * h)
            bottom = st.ground - 0.12 * h
            fall = bottom - tip[1]
            if fall > 0.05 * h:
                n = 5
                for i in range(n):
                    y = tip[1] + (t * self.drop_speed + i * fall / n) % fall
                    pen.circle(_v(tip[0], y), 0.028 * h, st.style.accent2)

    def draw(self, pen: _Pen, t: float) -> None:
        self._draw(pen, self._u(t), t, False)

    def rest(self, pen: _Pen, end: bool) -> None:
        self._draw(pen, 0.0, 0.0, True)


def _bow(pen: _Pen, grip: Vec, h: float, f: int, nock: Vec | None, st: _Stage) -> None:
    pts = [grip + _v(-f * 0.1 * h * s * s, 0.3 * h * s) for s in np.linspace(-1, 1, 11)]
    pen.polyline(pts, st.style.accent, 0.035 * h)
    top, bottom = pts[0], pts[-1]
    if nock is None:
        pen.line(top, bottom, st.style.accent2, 0.012 * h)
    else:
        pen.line(top, nock, st.style.accent2, 0.012 * h)
        pen.line(nock, bottom, st.style.accent2, 0.012 * h)


def _arrow(pen: _Pen, tail: Vec, h: float, f: int, st: _Stage) -> None:
    tip = tail + _v(f * 0.45 * h, 0)
    pen.line(tail, tip, st.style.accent2, 0.022 * h)
    pen.fill([tip + _v(f * 0.05 * h, 0), tip + _v(0, -0.03 * h), tip + _v(0, 0.03 * h)], st.style.accent2)


class _ShootBow(_Program):
    """shoot_bow: the string is drawn back slowly, held, released; the arrow flies off fast."""

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.25 * h, 0.5 * h, self.f)
        self.period = rng.uniform(30, 44)
        self.phase = rng.uniform(0, self.period)
        self.arrow_speed = rng.uniform(0.14, 0.18) * h

    def draw(self, pen: _Pen, t: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        grip = j["sh_f"] + _v(f * 0.33 * h, -0.01 * h)
        j["el_f"], j["ha_f"] = (j["sh_f"] + grip) / 2, grip
        rest = grip + _v(-f * 0.1 * h, 0)
        anchor = j["head"] + _v(f * 0.03 * h, 0.1 * h)
        c = _cycle(t, self.period, self.phase)
        if c < 0.4:
            u, nocked = _smooth(c / 0.4), True
        elif c < 0.6:
            u, nocked = 1.0, True
        elif c < 0.75:
            u, nocked = 1.0 - _smooth((c - 0.6) / 0.15), False
        else:
            u, nocked = 0.0, False
        hand = rest + u * (anchor - rest)
        _set_arm(j, "b", hand, h, _v(-f, -0.4))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side")
        _bow(pen, grip, h, f, hand if nocked else None, st)
        if nocked:
            _arrow(pen, hand, h, f, st)
        else:
            _arrow(pen, anchor + _v(f * self.arrow_speed * (c - 0.6) * self.period, 0), h, f, st)

    def rest(self, pen: _Pen, end: bool) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        _draw_figure(pen, j, st, "side")
        _bow(pen, j["ha_f"] + _v(f * 0.05 * h, 0), h, f, None, st)


class _Throw(_Program):
    """throw: the arm winds back, swings fast, releases a ring-patterned disc that flies off."""

    def __init__(self, rng: np.random.Generator, st: _Stage, length: int):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.35 * h, 0.45 * h, self.f)
        self.period = rng.uniform(30, 42)
        self.phase = rng.uniform(0, self.period)
        self.disc_speed = rng.uniform(0.12, 0.16) * h
        self.half = (0.17 * h, 0.065 * h)
        self.shape = _ellipse(*self.half)
        self.pattern = _pattern("rings", 0.07 * h, (0.0, 0.0))

    @staticmethod
    def _beta(c: float) -> float:
        if c < 0.35:
            return 0.25 - 2.25 * _smooth(c / 0.35)
        if c < 0.45:
            return -2.0
        if c < 0.6:
            s = (c - 0.45) / 0.15
            return -2.0 + 3.7 * s * s
        if c < 0.82:
            return 1.7 - 1.45 * _smooth((c - 0.6) / 0.22)
        return 0.25

    def _hand(self, j: dict, beta: float) -> Vec:
        return j["sh_f"] + 0.33 * self.st.h * _v(self.f * math.sin(beta), math.cos(beta))

    def draw(self, pen: _Pen, t: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        _set_leg(j, "f", _v(self.x + f * 0.14 * h, st.ground), h, _v(f, 0))
        _set_leg(j, "b", _v(self.x - f * 0.12 * h, st.ground), h, _v(f, 0))
        c = _cycle(t, self.period, self.phase)
        beta = self._beta(c)
        hand = self._hand(j, beta)
        j["el_f"], j["ha_f"] = (j["sh_f"] + hand) / 2 + _v(0, 0.01 * h), hand
        _set_arm(j, "b", j["sh_b"] + _v(-f * 0.15 * h * math.sin(beta), 0.28 * h), h, _v(-f, 0))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side")
        if c < 0.6:
            disc = hand
        else:
            dt = (c - 0.6) * self.period
            disc = self._hand(j, 1.7) + _v(f * self.disc_speed * dt, -0.015 * h * dt)
        pen.paint(disc, 0.0, self.half, self.shape, self.pattern, st.style.prop)

    def rest(self, pen: _Pen, end: bool) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        _draw_figure(pen, j, st, "side")
        pen.paint(j["ha_f"], 0.0, self.half, self.shape, self.pattern, st.style.prop)


_PROGRAMS: dict[str, Callable[[np.random.Generator, _Stage, int], _Program]] = {
    "clap": lambda r, s, n: _Hands(r, s, n, "h"),
    "wave": lambda r, s, n: _Hands(r, s, n, "v"),
    "run": lambda r, s, n: _Gait(r, s, n, "run"),
    "jump": lambda r, s, n: _Gait(r, s, n, "jump"),
    "drink": lambda r, s, n: _HandToMouth(r, s, n, "lower"),
    "smoke": lambda r, s, n: _HandToMouth(r, s, n, "upper"),
    "ride_bike": lambda r, s, n: _Ride(r, s, n, "checker"),
    "ride_horse": lambda r, s, n: _Ride(r, s, n, "vstripes"),
    "climb": _Climb,
    "pour": _Pour,
    "shoot_bow": _ShootBow,
    "throw": _Throw,
}
assert set(_PROGRAMS) == set(HMDB51_CLASSES)

# The designed pairs of the table above, (class, class, the only cue that separates them): each pair is
# one program with a switch. Evaluation reports how every model does on them (twostream.report).
DESIGNED_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("clap", "wave", "motion"),
    ("run", "jump", "motion"),
    ("drink", "smoke", "appearance"),
    ("ride_bike", "ride_horse", "appearance"),
)


# ----------------------------------------------------------------------------- backgrounds

_DISTRACTOR_PATTERNS = ("plain", "hstripes", "vstripes", "checker", "dots")


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random scene: gradient, blotches, horizon or bricks, plus textured distractor shapes."""
    kind = int(rng.integers(4))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c0 = np.array(_color(rng), np.float32)
    c1 = np.array(_color(rng), np.float32)
    if kind == 0:  # linear gradient
        a = rng.uniform(0, 2 * math.pi)
        ramp = xx * math.cos(a) + yy * math.sin(a)
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
        img = c0 + ramp[..., None] * (c1 - c0)
    elif kind == 1:  # smooth blotches
        gh, gw = int(rng.integers(3, 8)), int(rng.integers(3, 10))
        small = np.array([[_color(rng, s=(0.1, 0.7)) for _ in range(gw)] for _ in range(gh)], np.float32)
        img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    elif kind == 2:  # sky and ground
        horizon = rng.uniform(0.35, 0.75) * height
        sky = c0 + (yy / height)[..., None] * 60.0
        ground = c1 + rng.normal(0, 12, (height, width, 1)).astype(np.float32)
        img = np.where((yy < horizon + 8 * np.sin(xx / rng.uniform(20, 60)))[..., None], sky, ground)
    else:  # bricks / tiles
        bw, bh = rng.uniform(25, 60), rng.uniform(12, 30)
        row = np.floor(yy / bh)
        shifted = xx + (row % 2) * bw / 2
        mortar = (yy % bh < 2.5) | (shifted % bw < 2.5)
        img = np.where(mortar[..., None], c1, c0 + rng.normal(0, 8, (height, width, 1)).astype(np.float32))
    # fine texture everywhere (grain, foliage, plaster): real scenes have no flat areas, and
    # optical flow on flat, noisy areas is noise
    cell = rng.uniform(6, 14) * height / 240
    grain = rng.normal(0, rng.uniform(10, 25), (max(int(height / cell), 2), max(int(width / cell), 2), 1))
    grain = cv2.resize(grain.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    img = img + grain[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    pen = _Pen(img)
    for _ in range(int(rng.integers(0, 4))):
        size = rng.uniform(0.06, 0.16) * height
        half = (size * rng.uniform(0.5, 1.5), size * rng.uniform(0.5, 1.5))
        shape = _block(*half) if rng.uniform() < 0.5 else _ellipse(*half)
        pattern = _pattern(str(rng.choice(_DISTRACTOR_PATTERNS)), rng.uniform(0.1, 0.3) * size * 2,
                           (rng.uniform(0, 20), rng.uniform(0, 20)))
        center = _v(rng.uniform(0, width), rng.uniform(0, height))
        pen.paint(center, rng.uniform(-0.5, 0.5), half, shape, pattern, _soft_colors(rng))
    sigma = rng.uniform(0, 1.5)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return img


@dataclass
class _Mover:
    """A shape crossing the background (motion that is not the action)."""
    start: Vec
    velocity: Vec
    half: tuple[float, float]
    shape: Callable
    pattern: Callable
    colors: tuple[Color, Color]

    @classmethod
    def draw_from(cls, rng: np.random.Generator, width: int, height: int) -> "_Mover":
        size = rng.uniform(0.06, 0.14) * height
        half = (size * rng.uniform(0.6, 1.6), size * rng.uniform(0.6, 1.2))
        speed = rng.uniform(0.5, 2.5) * height / 240
        angle = rng.uniform(-0.4, 0.4) + (math.pi if rng.uniform() < 0.5 else 0.0)
        return cls(_v(rng.uniform(0, width), rng.uniform(0.05, 0.6) * height),
                   speed * _v(math.cos(angle), math.sin(angle)), half,
                   _ellipse(*half) if rng.uniform() < 0.5 else _block(*half),
                   _pattern(str(rng.choice(_DISTRACTOR_PATTERNS)), rng.uniform(0.3, 0.6) * size,
                            (0.0, 0.0)),
                   _soft_colors(rng))

    def draw(self, pen: _Pen, frame: int) -> None:
        pen.paint(self.start + frame * self.velocity, 0.0, self.half, self.shape, self.pattern, self.colors)


# ----------------------------------------------------------------------------- clips and stills

def _stage(rng: np.random.Generator, width: int, height: int, upper_body: bool, still: bool) -> _Stage:
    style = _Style(shirt=_color(rng), pants=_color(rng, v=(0.15, 0.8)),
                   skin=_bgr(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.7), rng.uniform(0.35, 0.95)),
                   prop=_pattern_colors(rng), accent=_color(rng, v=(0.2, 0.8)),
                   accent2=_color(rng, s=(0.0, 0.6), v=(0.6, 1.0)),
                   pattern_phase=(float(rng.uniform(0, 50)), float(rng.uniform(0, 50))))
    frac = rng.uniform(0.5, 0.8) if still else rng.uniform(0.5, 0.78)
    ground = rng.uniform(0.85, 0.97)
    if upper_body:
        h = rng.uniform(0.85, 1.05) * min(height, 1.3 * width)
        return _Stage(width, height, h, height + rng.uniform(0.2, 0.3) * h, style)
    h = frac * (min(height, 1.2 * width) if still else height)
    return _Stage(width, height, h, ground * height, style)


@dataclass
class Clip:
    """A rendered clip (BGR frames) and what its HMDB51-style name says about it."""
    frames: np.ndarray      # (n, height, width, 3) uint8, BGR
    lead_in: int            # frames before the action
    lead_out: int           # frames after it
    body: str               # f (full body) | u (upper body)
    camera: str             # cm (camera motion) | nm
    view: str               # fr | ba | le | ri
    quality: str            # goo | med | bad


_QUALITY_NOISE = {"goo": (1.0, 3.0), "med": (3.0, 6.0), "bad": (6.0, 10.0)}


def _noise_bank(rng: np.random.Generator, sigma: float, shape: tuple[int, ...],
                k: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """k Gaussian noise fields, each as (positive part, negative part) for saturating adds."""
    bank = []
    for _ in range(k):
        n = rng.standard_normal(shape, dtype=np.float32) * sigma
        bank.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
    return bank


def _add_noise(img: np.ndarray, pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return cv2.subtract(cv2.add(img, pair[0]), pair[1])


def _streams(seed: np.random.SeedSequence, count: int) -> list[np.random.Generator]:
    """Independent generators for the parts of one item (like seed.spawn, without mutating seed)."""
    return [np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, i)))
            for i in range(count)]


def render_clip(hmdb_class: str, seed: np.random.SeedSequence, params: SyntheticParams) -> Clip:
    """Render one clip of `hmdb_class` from `seed` (frames in memory, BGR).

    The seed is split into independent streams (timing, background, actor, motion, distractor,
    camera, noise), so two classes rendered from one seed share everything but their program.
    """
    if hmdb_class not in _PROGRAMS:
        raise KeyError(f"unknown HMDB51 class {hmdb_class!r}; known: {', '.join(HMDB51_CLASSES)}")
    r_time, r_bg, r_actor, r_prog, r_mover, r_cam, r_noise = _streams(seed, 7)
    width, height = params.video_width, params.video_height

    n = int(r_time.integers(params.min_frames, params.max_frames + 1))
    lead_in = max(1, int(round(n * r_time.uniform(*LEAD_IN))))
    lead_out = int(round(n * r_time.uniform(*LEAD_OUT))) if r_time.uniform() < LEAD_OUT_P else 0
    lead_out = min(lead_out, max(n - lead_in - n // 2 - 1, 0))  # the middle frame shows the action
    length = n - lead_in - lead_out
    cut = r_time.uniform() < 0.5
    camera = "cm" if r_time.uniform() < 0.4 else "nm"
    quality = str(r_time.choice(["goo", "med", "bad"], p=[0.4, 0.4, 0.2]))
    upper = bool(r_time.uniform() < UPPER_BODY_P.get(hmdb_class, 0.0))

    margin = int(math.ceil(0.05 * height))
    world = (height + 2 * margin, width + 2 * margin)
    bg = _background(r_bg, *world)
    bg_intro = _background(r_bg, *world) if cut else bg
    stage = _stage(r_actor, width, height, upper, still=False)
    program = _PROGRAMS[hmdb_class](r_prog, stage, length)
    for scene in {id(bg): bg, id(bg_intro): bg_intro}.values():
        program.static(_Pen(scene, margin))
    mover = _Mover.draw_from(r_mover, width, height) if r_mover.uniform() < 0.3 else None

    # camera shake: a damped random walk of integer offsets, plus a slow drift for 'cm'
    amp = r_cam.uniform(0.8, 2.0) if camera == "cm" else r_cam.uniform(0.25, 0.7)
    amp *= height / 240
    drift = r_cam.uniform(-0.1, 0.1, 2) * (height / 240) if camera == "cm" else np.zeros(2)
    offsets = np.zeros((n, 2))
    state = r_cam.normal(0, amp, 2)
    for i in range(n):
        state = 0.85 * state + r_cam.normal(0, amp * 0.5, 2)
        offsets[i] = state + drift * (i - n / 2)
    offsets = np.clip(np.round(offsets), -margin, margin).astype(int)

    bank = _noise_bank(r_noise, r_noise.uniform(*_QUALITY_NOISE[quality]), (height, width, 3))
    picks = r_noise.integers(len(bank), size=n)

    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        action = lead_in <= i < n - lead_out
        canvas = (bg_intro if i < lead_in else bg).copy()
        pen = _Pen(canvas, margin)
        if mover is not None:
            mover.draw(pen, i)
        if action:
            program.draw(pen, float(i - lead_in))
        else:
            program.rest(pen, end=i >= lead_in)
        dx, dy = offsets[i]
        crop = canvas[margin + dy:margin + dy + height, margin + dx:margin + dx + width]
        frames[i] = _add_noise(crop, bank[picks[i]])

    if program.view == "front":
        view = "fr" if r_time.uniform() < 0.8 else "ba"
    else:
        view = "ri" if program.f > 0 else "le"
    return Clip(frames, lead_in, lead_out, "u" if upper else "f", camera, view, quality)


def render_still(hmdb_class: str, seed: np.random.SeedSequence, params: SyntheticParams) -> np.ndarray:
    """One Stanford40-style still (BGR): the clip renderer at a random instant of the action."""
    if hmdb_class not in _PROGRAMS:
        raise KeyError(f"unknown HMDB51 class {hmdb_class!r}; known: {', '.join(HMDB51_CLASSES)}")
    r_size, r_bg, r_actor, r_prog, r_noise = _streams(seed, 5)
    width = int(r_size.integers(params.min_image_side, params.max_image_side + 1))
    height = int(r_size.integers(params.min_image_side, params.max_image_side + 1))
    length = int(r_size.integers(params.min_frames, params.max_frames + 1))
    t = float(r_size.uniform(0, length))
    upper = bool(r_size.uniform() < UPPER_BODY_P.get(hmdb_class, 0.0))
    img = _background(r_bg, height, width)
    stage = _stage(r_actor, width, height, upper, still=True)
    program = _PROGRAMS[hmdb_class](r_prog, stage, length)
    pen = _Pen(img)
    program.static(pen)
    program.draw(pen, t)
    sigma = r_noise.uniform(1.0, 5.0)
    noise = r_noise.standard_normal(img.shape, dtype=np.float32) * sigma
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
