"""docs/synthetic_vs_real.png: axial and coronal mid-slices (window -160..240 HU) of three synthetic cases beside
the real CT bundled with the package, so that a reader can judge the likeness. `python bench/figure_synthetic.py`."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from abdoseg import labels as L  # noqa: E402
from abdoseg import real_ct  # noqa: E402
from abdoseg.synthetic import SyntheticConfig, case_name, generate_case  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PICKS = (5, 13, 4)  # non-contrast, arterial, portal-venous with a narrow in-plane field (all whole abdomens)


def canonical(image: np.ndarray, labels: np.ndarray, affine: np.ndarray):
    img = nib.as_closest_canonical(nib.Nifti1Image(image.astype(np.float32), affine))
    lab = nib.as_closest_canonical(nib.Nifti1Image(labels.astype(np.uint8), affine))
    return img.get_fdata(), np.asarray(lab.dataobj), img.header.get_zooms()


def panel(axes, image, labels, zooms, title):
    fg = np.argwhere(labels > 0)
    cz = int(np.argwhere(labels == L.KIDNEY_RIGHT)[:, 2].mean()) if (labels == L.KIDNEY_RIGHT).any() else int(fg[:, 2].mean())
    cy = int(np.argwhere(labels == L.KIDNEY_LEFT)[:, 1].mean()) if (labels == L.KIDNEY_LEFT).any() else int(fg[:, 1].mean())
    axial = image[::-1, ::-1, cz].T  # anterior up, patient's right on the viewer's left
    coronal = image[::-1, cy, ::-1].T  # superior up, patient's right on the viewer's left
    axes[0].imshow(axial, cmap="gray", vmin=-160, vmax=240, aspect=zooms[1] / zooms[0])
    axes[1].imshow(coronal, cmap="gray", vmin=-160, vmax=240, aspect=zooms[2] / zooms[0])
    axes[0].set_title(title, fontsize=9)
    for a in axes:
        a.axis("off")


def main(out: str = str(REPO / "docs" / "synthetic_vs_real.png")) -> None:
    cfg = SyntheticConfig()
    n = len(PICKS) + 1
    fig, axes = plt.subplots(2, n, figsize=(3.3 * n, 6.4))
    for col, i in enumerate(PICKS):
        c = generate_case(i, cfg)
        panel(axes[:, col], *canonical(c.image, c.labels, c.affine), f"{case_name(i)}\n{', '.join(c.notes)}")
    scan = real_ct.load()  # its labels through the package's one TotalSegmentator class map
    panel(axes[:, -1], *canonical(scan.image, scan.labels, scan.affine), "real CT (bundled)\nTotalSegmentator example")
    fig.suptitle("axial (top) and coronal (bottom) through the kidneys; window -160..240 HU; patient's right on the left", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
