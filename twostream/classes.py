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
CLASSES = {"stanford40": STANFORD40_CLASSES, "hmdb51": HMDB51_CLASSES}  # by dataset

# The synthetic set's designed pairs (the class table of docs/demo.md): (class, class, the only cue that
# separates them). One program renders both classes of a pair (twostream.data.programs); evaluation
# reports how every model does on them (twostream.report).
DESIGNED_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("clap", "wave", "motion"),
    ("run", "jump", "motion"),
    ("drink", "smoke", "appearance"),
    ("ride_bike", "ride_horse", "appearance"),
)


def label_of(name: str) -> int:
    """Label index of a class given by either dataset's name; unknown names are a KeyError."""
    if name in STANFORD40_CLASSES:
        return STANFORD40_CLASSES.index(name)
    if name in HMDB51_CLASSES:
        return HMDB51_CLASSES.index(name)
    raise KeyError(f"unknown class {name!r}; known: {', '.join(HMDB51_CLASSES)} "
                   f"(HMDB51) or {', '.join(STANFORD40_CLASSES)} (Stanford40)")


def class_problem(dataset: str, name: object, label: object) -> str | None:
    """Why (`name`, `label`) is not a row of `dataset`'s class table, or None when it is."""
    names = CLASSES[dataset]
    if name not in names:
        return f"class {name!r} is not one of the 12 {dataset} classes ({', '.join(names)})"
    expected = names.index(name)
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < NUM_CLASSES:
        return f"label {label!r} is not an integer in 0..{NUM_CLASSES - 1} (class {name} is {expected})"
    if label != expected:
        return f"label {label} contradicts class {name} (label {expected}); re-run the split stage"
    return None
