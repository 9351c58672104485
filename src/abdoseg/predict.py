"""The predict step: one scan in, a label map on the scan's own grid out (same shape, same affine, uint8 0-4).

It repeats the preprocessing recorded in the checkpoint, runs Gaussian-blended sliding-window inference,
keeps the largest connected component of each organ (optional), and inverts the resampling exactly.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np
import torch

from . import labels as L
from . import dicom, masks, nifti
from .device import pick_device
from .inference import Model, load_model, mirrored_probs, sliding_window_probs
from .preprocess import invert_probabilities, preprocess


@dataclass(frozen=True)
class PredictSpec:
    """How to run inference: the `predict` section of params.yaml."""

    device: str = "auto"
    overlap: float = 0.5
    largest_component: bool = True
    mirror_axes: tuple[int, ...] = ()  # test-time mirroring over these processed (RAS) axes; 0 is left-right

    @classmethod
    def from_params(cls, params: dict) -> "PredictSpec":
        return cls(str(params["device"]), float(params["overlap"]), bool(params["largest_component"]),
                   tuple(int(a) for a in params.get("mirror_axes", [])))


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """A mask of the voxels to drop: for each organ, all but its largest 26-connected component."""
    drop = np.zeros(labels.shape, bool)
    for organ in L.ORGANS:
        mask = labels == organ
        drop |= mask & ~masks.largest_component(mask)
    return drop


class StageTimer(dict):
    """Seconds per named stage, accumulated: `with timer("network"): ...` (bench/ reports them)."""

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[stage] = self.get(stage, 0.0) + time.perf_counter() - start


def predict_array(image: np.ndarray, affine: np.ndarray, model: Model, device: torch.device,
                  spec: PredictSpec = PredictSpec(), timer: StageTimer | None = None) -> np.ndarray:
    """Segment one CT (HU array and affine, any orientation): a uint8 label map of the same shape."""
    timer = timer if timer is not None else StageTimer()
    with timer("preprocess"):
        processed, _, geom = preprocess(image, affine, model.spec)
    with timer("network"):
        probs = mirrored_probs(lambda x: sliding_window_probs(model.net, x, model.patch, spec.overlap, device).numpy(),
                               processed, spec.mirror_axes)
    with timer("postprocess"):
        if spec.largest_component:
            drop = keep_largest_component(probs.argmax(0))
            probs[1:, drop] = 0.0
            probs[0, drop] = 1.0
    with timer("invert"):
        return invert_probabilities(probs, geom)


def read_scan(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Header | None]:
    """A NIfTI file, or a folder holding one DICOM series: (HU array, RAS+ affine, NIfTI header or None)."""
    if Path(path).is_dir():
        array, affine = dicom.read_series(path)
        return array, affine, None
    img = nifti.load(path)
    return np.asanyarray(img.dataobj), img.affine, img.header


def predict_file(image_path: str | os.PathLike, out_path: str | os.PathLike, model: Model, device: torch.device,
                 spec: PredictSpec = PredictSpec(), timer: StageTimer | None = None) -> np.ndarray:
    """Segment a NIfTI file or DICOM folder; write the label map with the input's exact affine and shape."""
    timer = timer if timer is not None else StageTimer()
    with timer("read"):
        array, affine, header = read_scan(image_path)
    labels = predict_array(array, affine, model, device, spec, timer)
    with timer("write"):
        if header is not None:
            header = header.copy()
            header.set_data_dtype(np.uint8)
            header["scl_slope"], header["scl_inter"] = 1.0, 0.0
        nifti.save(labels.astype(np.uint8), affine, out_path, header=header)
    return labels


def predict_cases(image_paths: list[str], out_paths: list[str], checkpoint: str, spec: PredictSpec = PredictSpec(),
                  threads: int = 1) -> None:
    """Load the model once and segment each image; what the pipeline's predict rule and the CLI call."""
    torch.set_num_threads(max(1, threads))
    device = pick_device(spec.device)
    model = load_model(checkpoint, device)
    for src, dst in zip(image_paths, out_paths):
        predict_file(src, dst, model, device, spec)
