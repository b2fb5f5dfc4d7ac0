"""Rendering of the synthetic action dataset: stills and clips of the 12 classes, as arrays.

`twostream.data.synthetic` writes what this renders into the raw layouts of Stanford 40 and
HMDB51. Everything is a pure function of the seed: each class and each image/clip draws from its own
`SeedSequence(seed, spawn_key=...)`, and each clip splits that into independent streams for
layout, background, actor, motion, distractor, camera and noise.

Scenes are a stick figure with thick limbs, a prop, a random background and nuisance. The
classes are built so that two-stream recognition matters: the class table is in docs/demo.md, its
designed pairs are `twostream.classes.DESIGNED_PAIRS`. The drawing primitives are in
`twostream.data.draw`, the actor and the class programs in `twostream.data.programs`; this module
composes them into clips (timing, background, camera, noise) and stills.

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

import math
from dataclasses import dataclass

import cv2
import numpy as np

from twostream.classes import HMDB51_CLASSES
from twostream.data.draw import Color, Vec, vec, Pen, block_shape, ellipse_shape, pattern_fill, hsv_bgr, random_color, pattern_colors, soft_colors
from twostream.data.programs import Style, Stage, PROGRAMS
from twostream.params import SyntheticParams

# Clip timing: lead-in (neutral pose) and optional lead-out, as fractions of the clip.
LEAD_IN = (0.10, 0.22)
LEAD_OUT = (0.05, 0.25)
LEAD_OUT_P = 0.5

# Classes whose clips and stills may be framed as upper body ('u': larger actor, legs cut off), and how
# often. Clap and wave are mostly close-ups: their cue is the hands' motion, and hands a few pixels wide
# at 64 px leave the flow stream too little to learn it from (docs/demo.md, the flow study).
UPPER_BODY_P = {"clap": 0.6, "wave": 0.6, "drink": 0.25, "smoke": 0.25, "shoot_bow": 0.25, "throw": 0.25}


# ----------------------------------------------------------------------------- backgrounds

_DISTRACTOR_PATTERNS = ("plain", "hstripes", "vstripes", "checker", "dots")


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random scene: gradient, blotches, horizon or bricks, plus textured distractor shapes."""
    kind = int(rng.integers(4))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c0 = np.array(random_color(rng), np.float32)
    c1 = np.array(random_color(rng), np.float32)
    if kind == 0:  # linear gradient
        a = rng.uniform(0, 2 * math.pi)
        ramp = xx * math.cos(a) + yy * math.sin(a)
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1.0)
        img = c0 + ramp[..., None] * (c1 - c0)
    elif kind == 1:  # smooth blotches
        gh, gw = int(rng.integers(3, 8)), int(rng.integers(3, 10))
        small = np.array([[random_color(rng, s=(0.1, 0.7)) for _ in range(gw)] for _ in range(gh)], np.float32)
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
    pen = Pen(img)
    for _ in range(int(rng.integers(0, 4))):
        size = rng.uniform(0.06, 0.16) * height
        half = (size * rng.uniform(0.5, 1.5), size * rng.uniform(0.5, 1.5))
        shape = block_shape(*half) if rng.uniform() < 0.5 else ellipse_shape(*half)
        pattern = pattern_fill(str(rng.choice(_DISTRACTOR_PATTERNS)), rng.uniform(0.1, 0.3) * size * 2,
                           (rng.uniform(0, 20), rng.uniform(0, 20)))
        center = vec(rng.uniform(0, width), rng.uniform(0, height))
        pen.paint(center, rng.uniform(-0.5, 0.5), half, shape, pattern, soft_colors(rng))
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
        return cls(vec(rng.uniform(0, width), rng.uniform(0.05, 0.6) * height),
                   speed * vec(math.cos(angle), math.sin(angle)), half,
                   ellipse_shape(*half) if rng.uniform() < 0.5 else block_shape(*half),
                   pattern_fill(str(rng.choice(_DISTRACTOR_PATTERNS)), rng.uniform(0.3, 0.6) * size,
                            (0.0, 0.0)),
                   soft_colors(rng))

    def draw(self, pen: Pen, frame: int) -> None:
        pen.paint(self.start + frame * self.velocity, 0.0, self.half, self.shape, self.pattern, self.colors)


# ----------------------------------------------------------------------------- clips and stills

def _stage(rng: np.random.Generator, width: int, height: int, upper_body: bool, still: bool) -> Stage:
    style = Style(shirt=random_color(rng), pants=random_color(rng, v=(0.15, 0.8)),
                   skin=hsv_bgr(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.7), rng.uniform(0.35, 0.95)),
                   prop=pattern_colors(rng), accent=random_color(rng, v=(0.2, 0.8)),
                   accent2=random_color(rng, s=(0.0, 0.6), v=(0.6, 1.0)),
                   pattern_phase=(float(rng.uniform(0, 50)), float(rng.uniform(0, 50))))
    frac = rng.uniform(0.5, 0.8) if still else rng.uniform(0.5, 0.78)
    ground = rng.uniform(0.85, 0.97)
    if upper_body:
        h = rng.uniform(0.85, 1.05) * min(height, 1.3 * width)
        return Stage(width, height, h, height + rng.uniform(0.2, 0.3) * h, style)
    h = frac * (min(height, 1.2 * width) if still else height)
    return Stage(width, height, h, ground * height, style)


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
    if hmdb_class not in PROGRAMS:
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
    program = PROGRAMS[hmdb_class](r_prog, stage, length)
    for scene in {id(bg): bg, id(bg_intro): bg_intro}.values():
        program.static(Pen(scene, margin))
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
        pen = Pen(canvas, margin)
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
    if hmdb_class not in PROGRAMS:
        raise KeyError(f"unknown HMDB51 class {hmdb_class!r}; known: {', '.join(HMDB51_CLASSES)}")
    r_size, r_bg, r_actor, r_prog, r_noise = _streams(seed, 5)
    width = int(r_size.integers(params.min_image_side, params.max_image_side + 1))
    height = int(r_size.integers(params.min_image_side, params.max_image_side + 1))
    length = int(r_size.integers(params.min_frames, params.max_frames + 1))
    t = float(r_size.uniform(0, length))
    upper = bool(r_size.uniform() < UPPER_BODY_P.get(hmdb_class, 0.0))
    img = _background(r_bg, height, width)
    stage = _stage(r_actor, width, height, upper, still=True)
    program = PROGRAMS[hmdb_class](r_prog, stage, length)
    pen = Pen(img)
    program.static(pen)
    program.draw(pen, t)
    sigma = r_noise.uniform(1.0, 5.0)
    noise = r_noise.standard_normal(img.shape, dtype=np.float32) * sigma
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)

