"""The actor and the 12 class programs of the synthetic scenes: a stage (actor size and place, colours),
a stick figure posed by inverse kinematics, and per class a program that draws the action at a time t
and the neutral pose of the lead-in and lead-out. What each class looks like and how it moves, and the
designed pairs: docs/demo.md (the class table) and `twostream.classes.DESIGNED_PAIRS`."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from twostream.classes import HMDB51_CLASSES
from twostream.data.draw import Color, Vec, vec, ease, Pen, block_shape, ellipse_shape, mount_shape, jug_shape, pattern_fill, darker


@dataclass
class Style:
    shirt: Color
    pants: Color
    skin: Color
    prop: tuple[Color, Color]   # the pattern colours of the class's textured object
    accent: Color               # bow, ladder, bowl
    accent2: Color              # string, liquid, arrow
    pattern_phase: tuple[float, float]


@dataclass
class Stage:
    width: int
    height: int
    h: float          # actor height in pixels
    ground: float     # y of the feet when standing
    style: Style

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
    up = vec(f * math.sin(lean), -math.cos(lean))
    neck = hip + _TORSO * h * up
    j = {"hip": hip, "neck": neck, "head": neck + _NECK_HEAD * h * up}
    if view == "front":
        j["sh_b"], j["sh_f"] = neck + vec(-0.11 * h, 0.03 * h), neck + vec(0.11 * h, 0.03 * h)
        j["hip_b"], j["hip_f"] = hip + vec(-0.055 * h, 0), hip + vec(0.055 * h, 0)
    else:
        j["sh_b"] = j["sh_f"] = neck + 0.03 * h * -up
        j["hip_b"] = j["hip_f"] = hip
    return j


def _ik(root: Vec, target: Vec, l1: float, l2: float, hint: Vec) -> tuple[Vec, Vec]:
    """Two-link chain from `root` towards `target`; the joint bends towards `hint`."""
    d = target - root
    dist = float(np.hypot(*d))
    if dist < 1e-6:
        d, dist = vec(0, 1), 1e-6
    direction = d / dist
    dist = min(max(dist, abs(l1 - l2) + 1e-3), l1 + l2 - 1e-3)
    a = (l1 * l1 - l2 * l2 + dist * dist) / (2 * dist)
    k = math.sqrt(max(l1 * l1 - a * a, 0.0))
    perp = vec(-direction[1], direction[0])
    if float(perp @ hint) < 0:
        perp = -perp
    return root + direction * a + perp * k, root + direction * dist


def _angle_limb(root: Vec, a1: float, l1: float, a2: float, l2: float, f: int) -> tuple[Vec, Vec]:
    """Limb from angles measured from straight down, positive = forward (towards facing)."""
    mid = root + l1 * vec(f * math.sin(a1), math.cos(a1))
    return mid, mid + l2 * vec(f * math.sin(a2), math.cos(a2))


def _set_arm(j: dict, side: str, target: Vec, h: float, hint: Vec) -> None:
    j[f"el_{side}"], j[f"ha_{side}"] = _ik(j[f"sh_{side}"], target, _UPPER * h, _FORE * h, hint)


def _set_leg(j: dict, side: str, target: Vec, h: float, hint: Vec) -> None:
    j[f"kn_{side}"], j[f"ft_{side}"] = _ik(j[f"hip_{side}"], target, _THIGH * h, _SHIN * h, hint)


def _neutral(x: float, ground: float, h: float, f: int, view: str) -> dict[str, Vec]:
    """Standing still, arms hanging: the pose of lead-in and lead-out."""
    j = _skeleton(vec(x, ground - (_THIGH + _SHIN - 0.005) * h), h, f, view)
    if view == "front":
        _set_arm(j, "b", j["sh_b"] + vec(-0.06 * h, 0.32 * h), h, vec(-1, 0))
        _set_arm(j, "f", j["sh_f"] + vec(0.06 * h, 0.32 * h), h, vec(1, 0))
        _set_leg(j, "b", vec(j["hip_b"][0] - 0.03 * h, ground), h, vec(0, -1))
        _set_leg(j, "f", vec(j["hip_f"][0] + 0.03 * h, ground), h, vec(0, -1))
    else:
        _set_arm(j, "b", j["sh_b"] + vec(-f * 0.03 * h, 0.32 * h), h, vec(-f, 0))
        _set_arm(j, "f", j["sh_f"] + vec(f * 0.04 * h, 0.32 * h), h, vec(-f, 0))
        _set_leg(j, "b", vec(x - f * 0.04 * h, ground), h, vec(f, 0))
        _set_leg(j, "f", vec(x + f * 0.04 * h, ground), h, vec(f, 0))
    return j


def _draw_back(pen: Pen, j: dict, st: Stage, view: str) -> None:
    """Limbs behind the torso (the far side in side view)."""
    h, s = st.h, st.style
    k = 0.72 if view == "side" else 1.0
    pen.line(j["hip_b"], j["kn_b"], darker(s.pants, k), 0.075 * h)
    pen.line(j["kn_b"], j["ft_b"], darker(s.pants, k), 0.07 * h)
    pen.line(j["sh_b"], j["el_b"], darker(s.shirt, k), 0.07 * h)
    pen.line(j["el_b"], j["ha_b"], darker(s.skin, k), 0.065 * h)
    pen.circle(j["ha_b"], _HAND_R * h, darker(s.skin, k))


def _draw_front(pen: Pen, j: dict, st: Stage, view: str, arm: bool = True) -> None:
    """Torso, near leg, head and (unless `arm` is False) the near arm."""
    h, s = st.h, st.style
    pen.line(j["hip_f"], j["kn_f"], s.pants, 0.075 * h)
    pen.line(j["kn_f"], j["ft_f"], s.pants, 0.07 * h)
    pen.line(j["hip"], j["neck"], s.shirt, (0.2 if view == "front" else 0.14) * h)
    pen.circle(j["head"], _HEAD_R * h, s.skin)
    if arm:
        _draw_arm(pen, j, st)


def _draw_arm(pen: Pen, j: dict, st: Stage) -> None:
    h, s = st.h, st.style
    pen.line(j["sh_f"], j["el_f"], s.shirt, 0.07 * h)
    pen.line(j["el_f"], j["ha_f"], s.skin, 0.065 * h)
    pen.circle(j["ha_f"], _HAND_R * h, s.skin)


def _draw_figure(pen: Pen, j: dict, st: Stage, view: str) -> None:
    _draw_back(pen, j, st, view)
    _draw_front(pen, j, st, view)


# ----------------------------------------------------------------------------- class programs
#
# A program draws its class at action time t (frames since the action began; stills use a
# random t) and, for lead-in/lead-out, the neutral pose with props at rest. Paired classes are
# one program with a switch, drawing the same random numbers in the same order, so the same
# seed renders the same clip except for what the pair differs in.

class Program:
    view = "side"
    f = 1

    def static(self, pen: Pen) -> None:
        """Scenery that does not move (drawn onto the background)."""

    def draw(self, pen: Pen, t: float) -> None:
        raise NotImplementedError

    def rest(self, pen: Pen, end: bool) -> None:
        """Lead-in (end=False) / lead-out (end=True): neutral pose, props at rest."""
        x, ground = self.anchor(end)
        _draw_figure(pen, _neutral(x, ground, self.st.h, self.f, self.view), self.st, self.view)

    def anchor(self, end: bool) -> tuple[float, float]:
        return self.x, self.st.ground


class _Hands(Program):
    """clap (axis 'h': hands swing towards each other) and wave (axis 'v': hands swing up and down).

    The fixed coordinate of one class is drawn from the other's oscillation, so single frames
    of both classes have the same distribution of hand positions. Both wear big mitts, so the
    moving hands stay visible to optical flow at 64 px.
    """
    view = "front"

    def __init__(self, rng: np.random.Generator, st: Stage, length: int, axis: str):
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

    def _draw(self, pen: Pen, j: dict) -> None:
        _draw_figure(pen, j, self.st, self.view)
        for side in ("b", "f"):
            pen.circle(j[f"ha_{side}"], 0.15 * self.st.h, self.st.style.accent)

    def draw(self, pen: Pen, t: float) -> None:
        h = self.st.h
        j = _neutral(self.x, self.st.ground, h, 1, "front")
        sep, up = self._hands(t)
        chest = j["neck"] + vec(0, 0.12 * h)
        _set_arm(j, "b", chest + vec(-sep * h, up * h), h, vec(-1, 0.6))
        _set_arm(j, "f", chest + vec(sep * h, up * h), h, vec(1, 0.6))
        self._draw(pen, j)

    def rest(self, pen: Pen, end: bool) -> None:
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


class _Gait(Program):
    """run (translates sideways) and jump (hops in place): the same sprite and running gait.

    Run's height above ground is a random hop height, jump's place a random point of a run,
    so single frames of both classes have the same distribution of places and poses.
    """

    def __init__(self, rng: np.random.Generator, st: Stage, length: int, mode: str):
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

    def draw(self, pen: Pen, t: float) -> None:
        h = self.st.h
        x, lift = self._place(t)
        j = _gait(vec(x, 0.0), h, self.f, 2 * math.pi * t / self.gait_period + self.theta0)
        dy = self.st.ground - lift - max(j["ft_f"][1], j["ft_b"][1])
        j = {k: p + vec(0, dy) for k, p in j.items()}
        _draw_figure(pen, j, self.st, self.view)

    def anchor(self, end: bool) -> tuple[float, float]:
        x, _ = self._place(self.length if end else 0.0)
        return x, self.st.ground


def _cycle(t: float, period: float, phase: float) -> float:
    return ((t + phase) % period) / period


class _HandToMouth(Program):
    """drink (block with a dark lower half, like a filled cup) and smoke (dark upper half, like
    a cigarette pack's top): one silhouette, the same edges, one motion."""

    def __init__(self, rng: np.random.Generator, st: Stage, length: int, pattern: str):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.2 * h, 0.35 * h, self.f)
        self.period = rng.uniform(28, 40)
        self.phase = rng.uniform(0, self.period)
        self.half = (0.12 * h, 0.18 * h)
        self.shape = block_shape(*self.half)
        self.pattern = pattern_fill(pattern, 0.36 * h, (0.0, 0.0))
        # the dark colour fills one half: the same edges (so the same flow), another pattern
        self.colors = tuple(sorted(st.style.prop, key=lambda c: -sum(c)))

    def _u(self, t: float) -> float:
        c = _cycle(t, self.period, self.phase)
        if c < 0.3:
            return ease(c / 0.3)
        if c < 0.55:
            return 1.0
        if c < 0.85:
            return 1.0 - ease((c - 0.55) / 0.3)
        return 0.0

    def _draw(self, pen: Pen, u: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        rest = j["sh_f"] + vec(f * 0.14 * h, 0.28 * h)
        mouth = j["head"] + vec(f * 0.17 * h, 0.12 * h)
        hand = rest + u * (mouth - rest) + vec(f * 0.07 * h * math.sin(math.pi * u), 0)
        _set_arm(j, "f", hand, h, vec(-f * 0.3, 1))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side", arm=False)
        _draw_arm(pen, j, st)
        angle = -f * 0.5 * u
        center = hand + vec(-math.sin(angle), -math.cos(angle)) * (0.1 * h)
        pen.paint(center, angle, self.half, self.shape, self.pattern, self.colors)
        pen.circle(hand, _HAND_R * h, st.style.skin)

    def draw(self, pen: Pen, t: float) -> None:
        self._draw(pen, self._u(t))

    def rest(self, pen: Pen, end: bool) -> None:
        self._draw(pen, 0.0)


class _Ride(Program):
    """ride_bike (checkerboard mount) and ride_horse (striped mount): one silhouette, one trajectory."""

    def __init__(self, rng: np.random.Generator, st: Stage, length: int, pattern: str):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        margin = 0.6 * h
        self.speed = min(rng.uniform(0.028, 0.042) * h, (st.width - 2 * margin) / max(length, 1))
        self.x0 = st.place(rng, margin, margin + self.speed * length, self.f)
        self.bob_period = rng.uniform(8, 14)
        self.bob_phase = rng.uniform(0, math.pi)
        self.shape = mount_shape(h, self.f)
        self.pattern = pattern_fill(pattern, 0.15 * h, st.style.pattern_phase)
        self.length = length

    def _draw(self, pen: Pen, x: float, bob: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        c = vec(x, st.ground - 0.37 * h - bob)
        hip = c + vec(-f * 0.05 * h, -0.17 * h)
        j = _skeleton(hip, h, f, "side", lean=0.25)
        for side, dx in (("b", -0.03), ("f", 0.03)):
            j[f"kn_{side}"], j[f"ft_{side}"] = _angle_limb(hip, 1.35, _THIGH * h, 0.1 + dx, _SHIN * h, f)
            _set_arm(j, side, c + vec(f * (0.36 + dx) * h, -0.3 * h), h, vec(0, 1))
        _draw_back(pen, j, st, "side")
        pen.paint(c, 0.0, (0.56 * h, 0.38 * h), self.shape, self.pattern, st.style.prop)
        _draw_front(pen, j, st, "side")

    def draw(self, pen: Pen, t: float) -> None:
        bob = 0.03 * self.st.h * abs(math.sin(math.pi * t / self.bob_period + self.bob_phase))
        self._draw(pen, self.x0 + self.f * self.speed * t, bob)

    def rest(self, pen: Pen, end: bool) -> None:
        self._draw(pen, self.x0 + self.f * self.speed * (self.length if end else 0), 0.0)


class _Climb(Program):
    """climb: a ladder; the actor moves up it, hands and feet alternating."""
    view = "front"

    def __init__(self, rng: np.random.Generator, st: Stage, length: int):
        self.st, h = st, st.h
        self.x = st.place(rng, 0.3 * h, 0.3 * h, 1)
        self.ground = st.ground + rng.uniform(0.0, 0.15) * h  # may start below the frame
        self.period = rng.uniform(16, 24)
        self.theta0 = rng.uniform(0, 2 * math.pi)
        room = max(self.ground - 0.95 * h, 0.0)
        self.speed = min(rng.uniform(0.02, 0.032) * h, room / max(length, 1))
        self.rung = rng.uniform(0.15, 0.19) * h
        self.length = length

    def static(self, pen: Pen) -> None:
        h, s = self.st.h, self.st.style
        top, bottom = -0.2 * self.st.height, self.ground
        for dx in (-0.21 * h, 0.21 * h):
            pen.line(vec(self.x + dx, top), vec(self.x + dx, bottom), s.accent, 0.045 * h)
        y = bottom - 0.06 * h
        while y > top:
            pen.line(vec(self.x - 0.21 * h, y), vec(self.x + 0.21 * h, y), s.accent, 0.035 * h)
            y -= self.rung

    def draw(self, pen: Pen, t: float) -> None:
        h = self.st.h
        feet = self.ground - self.speed * t
        th = 2 * math.pi * t / self.period + self.theta0
        j = _skeleton(vec(self.x, feet - 0.45 * h), h, 1, "front")
        s = math.sin(th)
        _set_arm(j, "b", j["sh_b"] + vec(-0.07 * h, -(0.23 + 0.09 * s) * h), h, vec(-1, 0))
        _set_arm(j, "f", j["sh_f"] + vec(0.07 * h, -(0.23 - 0.09 * s) * h), h, vec(1, 0))
        _set_leg(j, "b", j["hip_b"] + vec(-0.06 * h, (0.45 - 0.12 * max(0.0, s)) * h), h, vec(-1, 0))
        _set_leg(j, "f", j["hip_f"] + vec(0.06 * h, (0.45 - 0.12 * max(0.0, -s)) * h), h, vec(1, 0))
        _draw_figure(pen, j, self.st, self.view)

    def anchor(self, end: bool) -> tuple[float, float]:
        return self.x, self.ground - (self.speed * self.length if end else 0.0)


class _Pour(Program):
    """pour: a dotted jug tilts; droplets fall into a bowl on the ground."""

    def __init__(self, rng: np.random.Generator, st: Stage, length: int):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.2 * h, 0.65 * h, self.f)
        self.period = rng.uniform(32, 44)
        self.phase = rng.uniform(0, self.period)
        self.tilt = rng.uniform(1.0, 1.4)
        self.drop_speed = rng.uniform(0.05, 0.075) * h
        self.bowl_x = self.x + self.f * rng.uniform(0.4, 0.46) * h
        self.shape = jug_shape(h, self.f)
        self.pattern = pattern_fill("dots", 0.09 * h, st.style.pattern_phase)

    def static(self, pen: Pen) -> None:
        h = self.st.h
        c = vec(self.bowl_x, self.st.ground - 0.11 * h)
        pts = [c + vec(0.17 * h * math.cos(a), 0.11 * h * math.sin(a)) for a in np.linspace(0, math.pi, 13)]
        pen.fill(pts, self.st.style.accent)

    def _u(self, t: float) -> float:
        c = _cycle(t, self.period, self.phase)
        if c < 0.25:
            return ease(c / 0.25)
        if c < 0.6:
            return 1.0
        if c < 0.85:
            return 1.0 - ease((c - 0.6) / 0.25)
        return 0.0

    def _draw(self, pen: Pen, u: float, t: float, rest: bool) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        if rest:
            hand = j["ha_f"]
        else:
            hand = j["sh_f"] + vec(f * (0.22 + 0.04 * u) * h, (0.1 - 0.06 * u) * h)
            _set_arm(j, "f", hand, h, vec(-f * 0.3, 1))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side")
        angle = f * self.tilt * u
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        center = hand + rot @ vec(0, -0.1 * h)
        pen.paint(center, angle, (0.17 * h, 0.14 * h), self.shape, self.pattern, st.style.prop)
        pen.circle(hand, _HAND_R * h, st.style.skin)
        if u > 0.55:
            tip = center + rot @ vec(f * 0.16 * h, -0.12 * h)
            bottom = st.ground - 0.12 * h
            fall = bottom - tip[1]
            if fall > 0.05 * h:
                n = 5
                for i in range(n):
                    y = tip[1] + (t * self.drop_speed + i * fall / n) % fall
                    pen.circle(vec(tip[0], y), 0.028 * h, st.style.accent2)

    def draw(self, pen: Pen, t: float) -> None:
        self._draw(pen, self._u(t), t, False)

    def rest(self, pen: Pen, end: bool) -> None:
        self._draw(pen, 0.0, 0.0, True)


def _bow(pen: Pen, grip: Vec, h: float, f: int, nock: Vec | None, st: Stage) -> None:
    pts = [grip + vec(-f * 0.1 * h * s * s, 0.3 * h * s) for s in np.linspace(-1, 1, 11)]
    pen.polyline(pts, st.style.accent, 0.035 * h)
    top, bottom = pts[0], pts[-1]
    if nock is None:
        pen.line(top, bottom, st.style.accent2, 0.012 * h)
    else:
        pen.line(top, nock, st.style.accent2, 0.012 * h)
        pen.line(nock, bottom, st.style.accent2, 0.012 * h)


def _arrow(pen: Pen, tail: Vec, h: float, f: int, st: Stage) -> None:
    tip = tail + vec(f * 0.45 * h, 0)
    pen.line(tail, tip, st.style.accent2, 0.022 * h)
    pen.fill([tip + vec(f * 0.05 * h, 0), tip + vec(0, -0.03 * h), tip + vec(0, 0.03 * h)], st.style.accent2)


class _ShootBow(Program):
    """shoot_bow: the string is drawn back slowly, held, released; the arrow flies off fast."""

    def __init__(self, rng: np.random.Generator, st: Stage, length: int):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.25 * h, 0.5 * h, self.f)
        self.period = rng.uniform(30, 44)
        self.phase = rng.uniform(0, self.period)
        self.arrow_speed = rng.uniform(0.14, 0.18) * h

    def draw(self, pen: Pen, t: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        grip = j["sh_f"] + vec(f * 0.33 * h, -0.01 * h)
        j["el_f"], j["ha_f"] = (j["sh_f"] + grip) / 2, grip
        rest = grip + vec(-f * 0.1 * h, 0)
        anchor = j["head"] + vec(f * 0.03 * h, 0.1 * h)
        c = _cycle(t, self.period, self.phase)
        if c < 0.4:
            u, nocked = ease(c / 0.4), True
        elif c < 0.6:
            u, nocked = 1.0, True
        elif c < 0.75:
            u, nocked = 1.0 - ease((c - 0.6) / 0.15), False
        else:
            u, nocked = 0.0, False
        hand = rest + u * (anchor - rest)
        _set_arm(j, "b", hand, h, vec(-f, -0.4))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side")
        _bow(pen, grip, h, f, hand if nocked else None, st)
        if nocked:
            _arrow(pen, hand, h, f, st)
        else:
            _arrow(pen, anchor + vec(f * self.arrow_speed * (c - 0.6) * self.period, 0), h, f, st)

    def rest(self, pen: Pen, end: bool) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        _draw_figure(pen, j, st, "side")
        _bow(pen, j["ha_f"] + vec(f * 0.05 * h, 0), h, f, None, st)


class _Throw(Program):
    """throw: the arm winds back, swings fast, releases a ring-patterned disc that flies off."""

    def __init__(self, rng: np.random.Generator, st: Stage, length: int):
        self.st, h = st, st.h
        self.f = int(rng.choice([-1, 1]))
        self.x = st.place(rng, 0.35 * h, 0.45 * h, self.f)
        self.period = rng.uniform(30, 42)
        self.phase = rng.uniform(0, self.period)
        self.disc_speed = rng.uniform(0.12, 0.16) * h
        self.half = (0.17 * h, 0.065 * h)
        self.shape = ellipse_shape(*self.half)
        self.pattern = pattern_fill("rings", 0.07 * h, (0.0, 0.0))

    @staticmethod
    def _beta(c: float) -> float:
        if c < 0.35:
            return 0.25 - 2.25 * ease(c / 0.35)
        if c < 0.45:
            return -2.0
        if c < 0.6:
            s = (c - 0.45) / 0.15
            return -2.0 + 3.7 * s * s
        if c < 0.82:
            return 1.7 - 1.45 * ease((c - 0.6) / 0.22)
        return 0.25

    def _hand(self, j: dict, beta: float) -> Vec:
        return j["sh_f"] + 0.33 * self.st.h * vec(self.f * math.sin(beta), math.cos(beta))

    def draw(self, pen: Pen, t: float) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        _set_leg(j, "f", vec(self.x + f * 0.14 * h, st.ground), h, vec(f, 0))
        _set_leg(j, "b", vec(self.x - f * 0.12 * h, st.ground), h, vec(f, 0))
        c = _cycle(t, self.period, self.phase)
        beta = self._beta(c)
        hand = self._hand(j, beta)
        j["el_f"], j["ha_f"] = (j["sh_f"] + hand) / 2 + vec(0, 0.01 * h), hand
        _set_arm(j, "b", j["sh_b"] + vec(-f * 0.15 * h * math.sin(beta), 0.28 * h), h, vec(-f, 0))
        _draw_back(pen, j, st, "side")
        _draw_front(pen, j, st, "side")
        if c < 0.6:
            disc = hand
        else:
            dt = (c - 0.6) * self.period
            disc = self._hand(j, 1.7) + vec(f * self.disc_speed * dt, -0.015 * h * dt)
        pen.paint(disc, 0.0, self.half, self.shape, self.pattern, st.style.prop)

    def rest(self, pen: Pen, end: bool) -> None:
        h, f, st = self.st.h, self.f, self.st
        j = _neutral(self.x, st.ground, h, f, "side")
        _draw_figure(pen, j, st, "side")
        pen.paint(j["ha_f"], 0.0, self.half, self.shape, self.pattern, st.style.prop)


PROGRAMS: dict[str, Callable[[np.random.Generator, Stage, int], Program]] = {
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
assert set(PROGRAMS) == set(HMDB51_CLASSES)
