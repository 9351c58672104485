"""The one label table: target class IDs, names and display colours, used by every step.

Right and left are the patient's. Any operation that mirrors the left-right axis of an image must
swap KIDNEY_RIGHT and KIDNEY_LEFT with it (see :func:`swap_left_right`).
"""

from __future__ import annotations

import numpy as np

BACKGROUND = 0
LIVER = 1
KIDNEY_RIGHT = 2
KIDNEY_LEFT = 3
SPLEEN = 4

#: class ID -> organ name, background excluded.
ORGANS: dict[int, str] = {
    LIVER: "liver",
    KIDNEY_RIGHT: "kidney_right",
    KIDNEY_LEFT: "kidney_left",
    SPLEEN: "spleen",
}

#: every class, background included, in ID order.
CLASS_NAMES: list[str] = ["background", *ORGANS.values()]
NUM_CLASSES = len(CLASS_NAMES)

#: RGB colours (0-1) for renders and overlays, one per organ.
COLOURS: dict[int, tuple[float, float, float]] = {
    LIVER: (0.80, 0.33, 0.25),
    KIDNEY_RIGHT: (0.95, 0.78, 0.20),
    KIDNEY_LEFT: (0.30, 0.75, 0.35),
    SPLEEN: (0.35, 0.45, 0.90),
}


#: class order with the two kidneys exchanged: `probs[SWAP_LEFT_RIGHT]` swaps their channels.
SWAP_LEFT_RIGHT: list[int] = [BACKGROUND, LIVER, KIDNEY_LEFT, KIDNEY_RIGHT, SPLEEN]


def organ_id(name: str) -> int:
    """The class ID of an organ name; raises a clear error for an unknown name."""
    for idx, organ in ORGANS.items():
        if organ == name:
            return idx
    raise KeyError(f"unknown organ {name!r}; known: {', '.join(ORGANS.values())}")


def swap_left_right(labels: np.ndarray) -> np.ndarray:
    """Swap the right and left kidney IDs: the companion of any left-right mirror of the image."""
    return np.asarray(SWAP_LEFT_RIGHT, dtype=labels.dtype)[labels]


def as_table() -> list[dict[str, object]]:
    """The label table as rows (id, name, colour) for the report, the README and checkpoints."""
    return [{"id": i, "name": CLASS_NAMES[i], "colour": COLOURS.get(i)} for i in range(NUM_CLASSES)]
