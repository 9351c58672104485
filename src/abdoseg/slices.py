"""Slice views of a scan with labels on top (matplotlib only, no VTK): what a reader checks first in a CT viewer.

Views follow the radiological convention: axial and coronal put the patient's right on the viewer's left.
"""

from __future__ import annotations

import os
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import files, nifti  # noqa: E402
from . import labels as L  # noqa: E402
from .preprocess import to_canonical  # noqa: E402

WINDOW_HU = (-160, 240)  # a soft-tissue window: organs and fat apart, bone white


def label_colours(alpha: float = 0.45) -> np.ndarray:
    """RGBA per class ID (background transparent), from the label table's colours."""
    colours = np.zeros((L.NUM_CLASSES, 4))
    for oid, rgb in L.COLOURS.items():
        colours[oid] = (*rgb, alpha)
    return colours


def canonical_views(shape: tuple[int, int, int], centre: tuple[int, int, int], spacing: tuple[float, ...]
                    ) -> list[tuple[str, Callable[[np.ndarray], np.ndarray], float]]:
    """(name, cut, aspect) of the axial, coronal and sagittal planes through `centre` of a RAS+ volume."""
    cx, cy, cz = centre
    return [
        ("axial", lambda v: v[::-1, ::-1, cz].T, spacing[1] / spacing[0]),   # anterior up, patient right on the left
        ("coronal", lambda v: v[::-1, cy, ::-1].T, spacing[2] / spacing[0]),  # superior up, patient right on the left
        ("sagittal", lambda v: v[cx, ::-1, ::-1].T, spacing[2] / spacing[1]),  # superior up, anterior on the left
    ]


def kidney_centre(labels: np.ndarray) -> tuple[int, int, int]:
    """Voxel through which to cut: the kidneys' centre (the organs whose side a reader checks), else any organ's."""
    for found in (np.isin(labels, [L.KIDNEY_RIGHT, L.KIDNEY_LEFT]), labels > 0, np.ones(labels.shape, bool)):
        if found.any():
            return tuple(int(c) for c in np.argwhere(found).mean(0))
    raise AssertionError("unreachable")


def side_by_side(image: np.ndarray, prediction: np.ndarray, reference: np.ndarray, affine: np.ndarray,
                 path: str | os.PathLike, title: str = "", reference_name: str = "reference") -> None:
    """Axial and coronal slices (rows) of the prediction and the reference (columns), both filled in colour."""
    img, aff, _ = to_canonical(np.asarray(image, np.float32), affine)
    prd = to_canonical(prediction.astype(np.uint8), affine)[0]
    ref = to_canonical(reference.astype(np.uint8), affine)[0]
    views = canonical_views(img.shape, kidney_centre(ref), nifti.spacing(aff))[:2]
    colours = label_colours()
    heights = [cut(img).shape[0] * aspect / cut(img).shape[1] for _, cut, aspect in views]  # per unit of width
    fig, axes = plt.subplots(2, 2, figsize=(9, 4.5 * sum(heights) + 1.2), gridspec_kw={"height_ratios": heights},
                             squeeze=False)
    for row, (name, cut, aspect) in enumerate(views):
        for col, (what, lab) in enumerate((("prediction", prd), (reference_name, ref))):
            ax = axes[row, col]
            ax.imshow(cut(img), cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], aspect=aspect, interpolation="nearest")
            ax.imshow(colours[cut(lab)], aspect=aspect, interpolation="nearest")
            ax.set_title(f"{name}: {what}", fontsize=10)
            ax.axis("off")
            _mark_sides(ax)
    _finish(fig, path, title)


def overlay(image: np.ndarray, pred: np.ndarray, affine: np.ndarray, path: str | os.PathLike,
            reference: np.ndarray | None = None, title: str = "") -> None:
    """Axial, coronal and sagittal slices through the kidneys' centre, prediction filled, reference outlined."""
    img, aff, _ = to_canonical(np.asarray(image, np.float32), affine)
    prd = to_canonical(pred.astype(np.uint8), affine)[0]
    ref = to_canonical(reference.astype(np.uint8), affine)[0] if reference is not None else None
    cx, cy, cz = kidney_centre(prd)
    if (prd == L.LIVER).any():
        cx = int(np.argwhere(prd == L.LIVER)[:, 0].mean())  # sagittal through the liver
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    colours = label_colours()
    for ax, (name, cut, aspect) in zip(axes, canonical_views(img.shape, (cx, cy, cz), nifti.spacing(aff))):
        ax.imshow(cut(img), cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], aspect=aspect, interpolation="nearest")
        ax.imshow(colours[cut(prd)], aspect=aspect, interpolation="nearest")
        if ref is not None:
            ax.contour(cut(ref), levels=[o + 0.5 for o in range(L.NUM_CLASSES - 1)], colors="black", linewidths=0.6)
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    _mark_sides(axes[0])
    _finish(fig, path, title)


def _mark_sides(ax: plt.Axes) -> None:
    ax.text(0.01, 0.5, "R", transform=ax.transAxes, color="yellow", fontsize=11, va="center")
    ax.text(0.96, 0.5, "L", transform=ax.transAxes, color="yellow", fontsize=11, va="center")


def _finish(fig: plt.Figure, path: str | os.PathLike, title: str) -> None:
    """Legend of the organs, title, atomic PNG write."""
    handles = [plt.Rectangle((0, 0), 1, 1, color=L.COLOURS[o]) for o in L.ORGANS]
    fig.legend(handles, list(L.ORGANS.values()), loc="lower center", ncol=4, fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, bbox_inches="tight", format="png")
    plt.close(fig)
