"""Small operations on boolean masks that several steps share: extents and largest connected components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def extent(mask: np.ndarray) -> list[np.ndarray]:
    """Per axis, the indices where the mask has any voxel (empty arrays for an empty mask)."""
    return [np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != d))) for d in range(mask.ndim)]


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """The smallest box holding every voxel of `mask`, grown by `margin` voxels and clipped; None when empty."""
    idx = extent(mask)
    if any(i.size == 0 for i in idx):
        return None
    return tuple(slice(max(int(i[0]) - margin, 0), min(int(i[-1]) + 1 + margin, n)) for i, n in zip(idx, mask.shape))


def largest_component(mask: np.ndarray, full_connectivity: bool = True) -> np.ndarray:
    """The largest connected component of `mask` (26-connected, or 6-connected with full_connectivity=False)."""
    structure = np.ones((3,) * mask.ndim) if full_connectivity else None
    comps, n = ndimage.label(mask, structure=structure)
    if n <= 1:
        return comps > 0
    sizes = np.bincount(comps.ravel())
    sizes[0] = 0
    return comps == int(np.argmax(sizes))
