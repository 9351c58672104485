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
from . import masks, nifti, runlog, scan_checks, scan_io
from .device import describe, pick_device
from .inference import Model, load_model, mirrored_probs, sliding_window_probs
from .preprocess import PreprocessSpec, invert_probabilities, preprocess, processed_shape
from .specs import PredictSpec


LIBRARIES_BYTES = 1 << 30  # torch, MONAI, the network and its activations: a fixed share of predict's peak


@dataclass(frozen=True)
class Cost:
    """What segmenting one scan will take, known from its header before any voxel is read."""

    memory_bytes: int  # estimated peak (an upper bound: the grid before the crop to the body)
    windows: int  # network evaluations; time grows in proportion
    grid: tuple[int, int, int]  # the processed grid


def estimate_cost(shape: tuple[int, ...], affine: np.ndarray, spec: PreprocessSpec, patch: tuple[int, int, int],
                  overlap: float, mirror_axes: tuple[int, ...] = ()) -> Cost:
    """Peak memory and number of network windows of `predict_array` for a scan of this shape and affine.

    Memory: 1 GB for the libraries and the network (torch and MONAI alone take about 0.45 GB), 28 bytes per
    original voxel (the stored scan, its float32 canonical copy and the resampling's intermediates, then the
    inversion's running arg-max) and 16 bytes per class and processed voxel (logits, blending weights, softmax
    and the mirrored sum). docs/reliability.md compares it with measured peaks; it is meant as an upper bound.
    """
    order = np.argsort(nib.orientations.io_orientation(affine)[:, 0])  # array axis along R-L, A-P, S-I
    spacing = nifti.spacing(affine)
    grid = processed_shape(tuple(int(shape[a]) for a in order), tuple(spacing[a] for a in order), spec.spacing)
    n_orig, n_proc = int(np.prod(shape[:3], dtype=np.int64)), int(np.prod(grid, dtype=np.int64))
    memory = LIBRARIES_BYTES + 28 * n_orig + 16 * L.NUM_CLASSES * n_proc
    step = [max(1, int(p * (1 - overlap))) for p in patch]
    windows = int(np.prod([1 + max(0, -(-(g - p) // s)) for g, p, s in zip(grid, patch, step)]))
    return Cost(memory, windows * 2 ** len(mirror_axes), grid)


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
        probs = mirrored_probs(lambda x: sliding_window_probs(model.net, x, model.patch, spec.overlap, device,
                                                              spec.sw_batch_size).numpy(), processed, spec.mirror_axes)
    with timer("postprocess"):
        if spec.largest_component:
            drop = keep_largest_component(probs.argmax(0))
            probs[1:, drop] = 0.0
            probs[0, drop] = 1.0
    with timer("invert"):
        return invert_probabilities(probs, geom)


def check_cost(shape: tuple[int, ...], affine: np.ndarray, name: str | os.PathLike, model: Model,
               spec: PredictSpec) -> Cost:
    """Refuse a scan whose estimated peak memory is over `spec.max_memory_gb`, saying the estimate; else print it."""
    cost = estimate_cost(shape, affine, model.spec, model.patch, spec.overlap, spec.mirror_axes)
    if cost.memory_bytes > spec.max_memory_gb * 1e9:
        raise scan_checks.InputError(
            f"{name}: segmenting it would need about {cost.memory_bytes / 1e9:.1f} GB of memory "
            f"({'x'.join(map(str, shape))} voxels, a {'x'.join(map(str, cost.grid))} grid, {cost.windows} "
            f"windows), over the limit of {spec.max_memory_gb:g} GB; check its voxel size, crop it, or raise "
            f"predict.max_memory_gb (--max-memory-gb)")
    print(f"{name}: {'x'.join(map(str, cost.grid))} grid, {cost.windows} windows, about "
          f"{cost.memory_bytes / 1e9:.2f} GB at peak", flush=True)
    return cost


def predict_file(image_path: str | os.PathLike, out_path: str | os.PathLike, model: Model, device: torch.device,
                 spec: PredictSpec = PredictSpec(), timer: StageTimer | None = None) -> np.ndarray:
    """Segment a NIfTI file or DICOM folder; write the label map (uint8) with the input's exact affine and shape, and
    return it."""
    timer = timer if timer is not None else StageTimer()

    def check_header(img: nib.Nifti1Image) -> None:  # a NIfTI header tells the cost before any voxel is read
        scan_checks.check_geometry(img.shape, img.affine, image_path)
        check_cost(img.shape, img.affine, image_path, model, spec)

    with timer("read"):
        array, affine, header = scan_io.read_scan(image_path, check_header=check_header)
    if header is None:  # a DICOM series: its cost is known once it is read
        check_cost(array.shape, affine, image_path, model, spec)
    warnings = scan_checks.check_scan(array, affine, image_path, header, model.spec.spacing, model.spec.body_threshold)
    for warning in warnings:
        runlog.warn(f"{image_path}: {warning}")
    labels = predict_array(array, affine, model, device, spec, timer)
    with timer("write"):
        if header is not None:
            header = header.copy()
            header.set_data_dtype(np.uint8)
            header["scl_slope"], header["scl_inter"] = 1.0, 0.0
        nifti.save(labels.astype(np.uint8), affine, out_path, header=header,
                   comments=[f"abdoseg warning: {w}" for w in warnings])
    return labels


def refuse_overwriting_inputs(inputs: list[str | os.PathLike], outputs: list[str | os.PathLike]) -> None:
    """Refuse an output path that is one of the inputs (or the same file under another name): it would be destroyed."""
    sources = {Path(p).resolve() for p in inputs}
    for out in outputs:
        out_path = Path(out)
        if out_path.resolve() in sources or any(out_path.exists() and Path(p).exists() and os.path.samefile(out_path, p)
                                                for p in inputs):
            raise scan_checks.InputError(f"{out}: the output would overwrite an input; choose another output path")


def start(checkpoint: str | os.PathLike, spec: PredictSpec, threads: int = 1) -> tuple[Model, torch.device]:
    """Set torch's CPU threads, pick the device (said in the log) and load the model: once per predicting process."""
    torch.set_num_threads(max(1, threads))
    device = pick_device(spec.device)
    print(describe(device, spec.device), flush=True)
    return load_model(checkpoint, device), device


def predict_cases(image_paths: list[str], out_paths: list[str], checkpoint: str, spec: PredictSpec = PredictSpec(),
                  threads: int = 1) -> None:
    """Load the model once and segment each image; what the pipeline's predict rule and the CLI call."""
    refuse_overwriting_inputs([*image_paths, checkpoint], out_paths)
    model, device = start(checkpoint, spec, threads)
    for src, dst in zip(image_paths, out_paths):
        predict_file(src, dst, model, device, spec)
