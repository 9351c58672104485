"""The predict step: one scan in, a label map on the scan's own grid out (same shape, same affine, uint8 0-4).

It repeats the preprocessing recorded in the checkpoint, runs Gaussian-blended sliding-window inference,
keeps the largest connected component of each organ (optional), and inverts the resampling exactly.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage

from . import labels as L
from . import dicom, nifti, vnet
from .resample import PreprocessSpec, invert_probabilities, preprocess
from .train import pick_device, sliding_window_probs


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


@dataclass
class Model:
    """A trained network with everything its checkpoint says about how it must be used."""

    net: torch.nn.Module
    spec: PreprocessSpec
    patch: tuple[int, int, int]
    checkpoint: dict


def load_model(path: str | os.PathLike, device: torch.device) -> Model:
    """Load a checkpoint written by the train step; errors name the file and what is missing."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model_state", "model", "preprocess", "patch_size", "labels"):
        if key not in ckpt:
            raise ValueError(f"{path}: not an abdoseg checkpoint (no {key!r})")
    if [row["name"] for row in ckpt["labels"]] != L.CLASS_NAMES:
        raise ValueError(f"{path}: trained with labels {ckpt['labels']}, this code uses {L.CLASS_NAMES}")
    net = vnet.build(ckpt["model"])
    net.load_state_dict(ckpt["model_state"])
    net.to(device).eval()
    spec = PreprocessSpec.from_dict(ckpt["preprocess"])
    return Model(net, spec, tuple(ckpt["patch_size"]), ckpt)


def keep_largest_component(labels: np.ndarray) -> np.ndarray:
    """A mask of the voxels to drop: for each organ, all but its largest 26-connected component."""
    drop = np.zeros(labels.shape, bool)
    for organ in L.ORGANS:
        comps, n = ndimage.label(labels == organ, structure=np.ones((3, 3, 3)))
        if n > 1:
            sizes = np.bincount(comps.ravel())
            sizes[0] = 0
            drop |= (comps > 0) & (comps != int(np.argmax(sizes)))
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


def mirrored_probs(infer: Callable[[np.ndarray], np.ndarray], image: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Average `infer`'s class probabilities over every combination of mirrors along `axes` (nnU-Net's TTA).

    A mirror along axis 0 (the patient's left-right in processed RAS space) shows the network a patient whose
    right kidney lies on the left; what it calls kidney_left there is the right kidney. So after flipping the
    probabilities back, the two kidney channels are swapped: test-time mirroring never mixes left and right.
    Use it with a model trained with the same mirrors (`augment.mirror_axes`), or it averages in nonsense.
    """
    total = infer(image)
    combos = [c for n in range(1, len(axes) + 1) for c in itertools.combinations(axes, n)]
    for combo in combos:
        probs = np.flip(infer(np.ascontiguousarray(np.flip(image, combo))), tuple(a + 1 for a in combo))
        if 0 in combo:
            probs = probs[L.SWAP_LEFT_RIGHT]
        total = total + probs
    return total / (1 + len(combos))


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
