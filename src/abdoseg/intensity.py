"""Foreground intensity statistics of the training cases, for nnU-Net's CT normalisation.

With `preprocess.normalize: percentile`, every case is clipped to the 0.5th and 99.5th percentiles (params) of the
HU values inside the organ labels of the training cases, then z-scored with their mean and standard deviation, as
nnU-Net does for CT. The statistics come from training cases only, so the validation and test cases never leak
into the preprocessing; they are written once (data/processed/intensity.json) and embedded in every checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import files, nifti

SAMPLES_PER_CASE = 10_000  # foreground voxels drawn per case, as nnU-Net does: big organs do not drown small cases


def foreground_stats(images: list[str], labels: list[str], percentiles: tuple[float, float], seed: int = 0) -> dict:
    """Percentiles, mean and sd of HU values sampled from the labelled voxels of each (image, labels) pair."""
    rng = np.random.default_rng(seed)
    samples = []
    for image_path, label_path in zip(images, labels, strict=True):
        hu = np.asanyarray(nifti.load(image_path).dataobj)
        fg = np.asanyarray(nifti.load(label_path).dataobj) > 0
        values = hu[fg].astype(np.float64)
        if values.size == 0:
            continue
        samples.append(rng.choice(values, min(SAMPLES_PER_CASE, values.size), replace=False))
    if not samples:
        raise ValueError("no labelled voxel in any training case: the percentile normalisation has nothing to learn from")
    values = np.concatenate(samples)
    lo, hi = np.percentile(values, percentiles)
    return {"percentiles": [float(p) for p in percentiles], "clip": [float(lo), float(hi)],
            "mean": float(values.mean()), "sd": float(values.std()), "n_cases": len(samples), "n_voxels": int(values.size)}


def write_stats(stats: dict, path: str | os.PathLike) -> None:
    """Write the statistics JSON atomically."""
    with files.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(stats, indent=1))


def read_stats(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())


def stats_if_needed(preprocess_params: dict, path: str | os.PathLike) -> dict | None:
    """The statistics at `path` when `preprocess.normalize` is `percentile`, else None (the window needs none)."""
    return read_stats(path) if preprocess_params.get("normalize", "window") == "percentile" else None
