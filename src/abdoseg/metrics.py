"""Per-organ segmentation metrics in physical space, with the conventions written down.

Conventions (tested in tests/test_metrics.py):
- reference and prediction both empty: Dice 1, NSD 1, HD95 0 (and flagged `both_empty` in the tables);
- reference empty and prediction not (or the reverse): Dice 0, NSD 0, HD95 infinite (stored as NaN in the tables;
  `abdoseg.evaluate.summarize` counts these and penalises them with the scan's diagonal, see `fov_diagonal_mm`);
- an organ the source does not annotate is not scored at all.

NSD is the published one (Nikolov et al. 2021; MSD, FLARE): surface elements of a 2x2x2 marching-cubes
neighbourhood, weighted by their area in mm^2 (DeepMind's surface-distance, through MONAI's
`compute_surface_dice(use_subvoxels=True)`). HD95 is MONAI's default `compute_hausdorff_distance(percentile=95)`:
boundary voxels, unweighted.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import masks


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    p, r = int(pred.sum()), int(ref.sum())
    if p + r == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, ref).sum()) / (p + r)


def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels of a mask (face connectivity)."""
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)


def _surface_distances(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Distances (mm) from a's surface voxels to b's surface, and from b's to a's.

    The distance transforms run on the masks' joint bounding box (plus a margin), not the whole scan: same
    result, a fraction of the time on a 512x512x300 CT.
    """
    box = masks.bounding_box(a | b, margin=2)
    sa, sb = _surface(a[box]), _surface(b[box])
    da = ndimage.distance_transform_edt(~sb, sampling=spacing)
    db = ndimage.distance_transform_edt(~sa, sampling=spacing)
    return da[sa], db[sb]


def hd95(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...]) -> float:
    """95th-percentile symmetric Hausdorff distance in mm (the larger of the two directed 95th percentiles)."""
    if not pred.any() and not ref.any():
        return 0.0
    if not pred.any() or not ref.any():
        return float("inf")
    d_pr, d_rp = _surface_distances(pred, ref, spacing)
    return float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)))


def surface_dice(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], tolerance_mm: float) -> float:
    """Normalised surface Dice as published: the area share of both surfaces within `tolerance_mm` of the other.

    MONAI's `compute_surface_dice(use_subvoxels=True)` on the masks' joint bounding box (MONAI pads it by one
    voxel itself, so masks touching the scan's border keep that face). Imported here, not at module level:
    torch and MONAI take seconds to import, which every job importing this module would pay.
    """
    if not pred.any() and not ref.any():
        return 1.0
    if not pred.any() or not ref.any():
        return 0.0
    import warnings

    import torch
    from monai.metrics import compute_surface_dice

    box = masks.bounding_box(pred | ref, margin=1)
    p = torch.from_numpy(np.ascontiguousarray(pred[box]))[None, None]
    r = torch.from_numpy(np.ascontiguousarray(ref[box]))[None, None]
    onehot = lambda m: torch.cat([~m, m], 1).to(torch.uint8)  # noqa: E731 [background, organ]
    with warnings.catch_warnings():  # MONAI 1.6 warns about an argument it passes to itself
        warnings.simplefilter("ignore", FutureWarning)
        nsd = compute_surface_dice(onehot(p), onehot(r), [float(tolerance_mm)], spacing=[float(s) for s in spacing],
                                   use_subvoxels=True)
    return float(nsd[0, 0])


def fov_diagonal_mm(shape: tuple[int, ...], spacing: tuple[float, ...]) -> float:
    """The diagonal of a scan's field of view (mm): no finite distance within the scan exceeds it, so it is the
    worst-case HD95 that stands in for an infinite one (BraTS's 373.13 mm is this for 240x240x155 at 1 mm)."""
    return float(np.linalg.norm(np.asarray(shape, float) * np.asarray(spacing, float)))


def organ_metrics(pred: np.ndarray, ref: np.ndarray, organ_id: int, spacing: tuple[float, ...], tolerance_mm: float) -> dict:
    """All metrics of one organ in one case."""
    p, r = pred == organ_id, ref == organ_id
    voxel_ml = float(np.prod(spacing)) / 1000.0
    h = hd95(p, r, spacing)
    return {
        "dice": dice(p, r),
        "nsd": surface_dice(p, r, spacing, tolerance_mm),
        "hd95": h if np.isfinite(h) else float("nan"),
        "volume_pred_ml": float(p.sum()) * voxel_ml,
        "volume_ref_ml": float(r.sum()) * voxel_ml,
        "both_empty": bool(not p.any() and not r.any()),
    }
