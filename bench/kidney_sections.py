"""How C-shaped the kidneys' axial sections are, in phantoms and in the bundled real CT's reference (issue #15).

At the hilum a real kidney's section is a C open towards the spine and the front, the renal sinus's fat and vessels
in its mouth. Per kidney this prints the height (mm) over which its axial sections are clearly concave (area under
0.85 of their convex hull's) and the deepest concavity (mm from the hull's edge into the gap), for phantoms 0 to
N-1 of the generator on PYTHONPATH and for the real scan's reference labels. A measurement of shape, not a tuning
target: nothing here feeds the generator, and nothing asserts a number.

    python bench/kidney_sections.py [--cases 10]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, Delaunay

from abdoseg import labels as L
from abdoseg import nifti, real_ct
from abdoseg.preprocess import to_canonical
from abdoseg.synthetic import SyntheticConfig, generate_case

CONCAVE = 0.85  # a section's area over its convex hull's below this is a clear C, not a bean's shallow dent


def _hull(section: np.ndarray) -> np.ndarray:
    """The section's convex hull as a mask on its own grid."""
    pts = np.argwhere(section)
    tri = Delaunay(pts[ConvexHull(pts).vertices])
    grid = np.indices(section.shape).reshape(2, -1).T
    return (tri.find_simplex(grid) >= 0).reshape(section.shape) | section


def sections(mask: np.ndarray, spacing: np.ndarray) -> tuple[float, float]:
    """(height in mm of the clearly concave axial sections, deepest concavity in mm) of one kidney's mask (RAS)."""
    height, deepest = 0.0, 0.0
    for z in np.flatnonzero(mask.any((0, 1))):
        s = mask[:, :, z]
        if s.sum() < 20:  # a pole's last few voxels have no shape to speak of
            continue
        hull = _hull(s)
        gap = hull & ~s
        if s.sum() / hull.sum() < CONCAVE:
            height += float(spacing[2])
        if gap.any():
            deepest = max(deepest, float(ndimage.distance_transform_edt(hull, sampling=spacing[:2])[gap].max()))
    return height, deepest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10)
    args = ap.parse_args()
    print("| kidneys of | C-shaped height, mm (median; range) | deepest concavity, mm (median; range) |\n|---|---|---|")
    rows = []
    for i in range(args.cases):
        case = generate_case(i, SyntheticConfig())
        lab, aff, _ = to_canonical(case.labels, case.affine)
        spacing = np.asarray(nifti.spacing(aff))
        rows += [sections(lab == o, spacing) for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT) if (lab == o).sum() >= 200]
    scan = real_ct.load()
    lab, aff, _ = to_canonical(scan.labels, scan.affine)
    real = [sections(lab == o, np.asarray(nifti.spacing(aff))) for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT)]
    for name, r in ((f"phantoms 0-{args.cases - 1} ({len(rows)} kidneys)", np.array(rows)),
                    ("the real CT's reference (right, left)", np.array(real))):
        print(f"| {name} | " + " | ".join(f"{np.median(r[:, j]):.0f}; {r[:, j].min():.0f}-{r[:, j].max():.0f}"
                                          for j in range(2)) + " |")


if __name__ == "__main__":
    main()
