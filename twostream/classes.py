"""The 12 action classes shared by Stanford 40 Actions and HMDB51, in label order."""
from __future__ import annotations

# (Stanford40 name, HMDB51 name); the index is the label 0..11.
CLASS_PAIRS: tuple[tuple[str, str], ...] = (
    ("applauding", "clap"),
    ("climbing", "climb"),
    ("drinking", "drink"),
    ("jumping", "jump"),
    ("pouring_liquid", "pour"),
    ("riding_a_bike", "ride_bike"),
    ("riding_a_horse", "ride_horse"),
    ("running", "run"),
    ("shooting_an_arrow", "shoot_bow"),
    ("smoking", "smoke"),
    ("throwing_frisby", "throw"),
    ("waving_hands", "wave"),
)

STANFORD40_CLASSES: tuple[str, ...] = tuple(s for s, _ in CLASS_PAIRS)
HMDB51_CLASSES: tuple[str, ...] = tuple(h for _, h in CLASS_PAIRS)
NUM_CLASSES = len(CLASS_PAIRS)

STANFORD40_TO_HMDB51 = dict(CLASS_PAIRS)
HMDB51_TO_STANFORD40 = {h: s for s, h in CLASS_PAIRS}


def label_of(name: str) -> int:
    """Label index of a class given by either dataset's name; unknown names are an error."""
    if name in STANFORD40_CLASSES:
        return STANFORD40_CLASSES.index(name)
    if name in HMDB51_CLASSES:
        return HMDB51_CLASSES.index(name)
    raise KeyError(f"unknown class {name!r}; known: {', '.join(HMDB51_CLASSES)} "
                   f"(HMDB51) or {', '.join(STANFORD40_CLASSES)} (Stanford40)")
