"""Preprocessing (the preprocess rule): canonical orientation, target spacing, intensity window, crop to the body; and its exact inverse.

Forward, per case: reorient the array to RAS+ by axis permutations and flips only (no interpolation, the patient's
left stays left), resample to `spacing` (images trilinear, labels by interpolating one-hot channels and taking the
arg-max, so no ID is ever blended into another), clip and scale HU (a fixed window to [0, 1], or nnU-Net's
percentiles and z-score from the training cases), and crop to the body found from the CT itself. The arrays are saved uncompressed (`.npy`, memory-mappable) with a JSON `Geometry` that holds
everything the inverse needs: a prediction in processed space goes back onto the case's exact original grid.

Why our own code and not MONAI's Spacingd: our grid maps voxel j to input coordinate (j + 0.5) * n_in / n_out - 0.5
(the same closed form as torch's `interpolate(align_corners=False)`), so the processed affine and the inverse are
exact; and it is separable linear interpolation in numpy, three 1D passes, so a per-case job needs neither torch
(seconds of import per Snakemake job) nor a dense 3D sampling grid. bench/ compares it with MONAI's chain.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

import nibabel as nib
import numpy as np
from scipy import ndimage

from . import labels as L
from . import files, masks, nifti


@dataclass(frozen=True)
class PreprocessSpec:
    """What preprocessing does, recorded in every checkpoint so that inference repeats it exactly.

    Intensities are clipped to `clip` HU, then mapped to (HU - center) / scale: with `normalize: window` (the
    default) clip is the HU window and the result spans [0, 1]; with `normalize: percentile` (nnU-Net's CT
    scheme) clip holds the training foreground's percentiles and center, scale its mean and sd.
    """

    spacing: tuple[float, float, float]  # mm; the values live in params.yaml (preprocess), the one source
    normalize: str  # "window" or "percentile"
    clip: tuple[float, float]  # HU
    center: float
    scale: float
    body_threshold: float  # HU above which a voxel may belong to the body
    crop_margin_mm: float

    @classmethod
    def from_params(cls, params: dict, stats: dict | None = None) -> "PreprocessSpec":
        """From the `preprocess` section of params.yaml (and, for `percentile`, the training-set statistics)."""
        mode = params.get("normalize", "window")
        if mode == "window":
            lo, hi = (float(w) for w in params["window"])
            clip, center, scale = (lo, hi), lo, hi - lo
        elif mode == "percentile":
            if stats is None:
                raise ValueError("preprocess.normalize: percentile needs the training cases' intensity statistics")
            clip, center, scale = tuple(stats["clip"]), float(stats["mean"]), max(float(stats["sd"]), 1e-6)
        else:
            raise ValueError(f"preprocess.normalize must be 'window' or 'percentile', not {mode!r}")
        return cls(tuple(float(s) for s in params["spacing"]), mode, tuple(float(c) for c in clip), float(center),
                   float(scale), float(params["body_threshold"]), float(params["crop_margin_mm"]))

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSpec":
        """From `asdict(spec)`, as a checkpoint stores it."""
        return cls(**{**d, "spacing": tuple(d["spacing"]), "clip": tuple(d["clip"])})

    def normalise(self, hu: np.ndarray) -> np.ndarray:
        """Clip and scale HU values (float32)."""
        return ((np.clip(hu, *self.clip) - self.center) / self.scale).astype(np.float32)


@dataclass
class Geometry:
    """The mapping between a case's original grid and its processed (cropped) grid."""

    original_shape: list[int]
    original_affine: list[list[float]]
    original_orientation: str  # axis codes of the stored array, e.g. "LPS" (the inverse flips back to it)
    original_spacing: list[float]  # mm
    spacing: list[float]  # mm, of the processed grid (the target spacing, stretched to fit the field of view)
    canonical_shape: list[int]
    processed_shape: list[int]  # full resampled grid, before the crop
    crop_lo: list[int]
    crop_hi: list[int]
    processed_affine: list[list[float]]  # affine of the cropped processed array

    def save(self, path: str | os.PathLike) -> None:
        with files.atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Geometry":
        return cls(**json.loads(Path(path).read_text()))


def to_canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient to RAS+ by flips and permutations; returns the array, its affine and the orientation transform."""
    ornt = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))
    out = nib.orientations.apply_orientation(array, transform)
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, array.shape)
    return np.ascontiguousarray(out), new_affine, transform


def from_canonical(array: np.ndarray, original_affine: np.ndarray) -> np.ndarray:
    """Undo `to_canonical`: put a canonical (RAS+) array back into the original affine's axis order."""
    back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                           nib.orientations.io_orientation(np.asarray(original_affine)))
    return np.ascontiguousarray(nib.orientations.apply_orientation(array, back))


def processed_shape(shape: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float, ...]) -> tuple[int, int, int]:
    """Size of the resampled grid: the same field of view at the target spacing, at least one voxel."""
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target))


def _axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each output voxel samples the input: j -> (j + 0.5) * n_in / n_out - 0.5, edge-clamped; (floor, weight)."""
    coord = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(coord).astype(np.intp)
    return i0, (coord - i0).astype(np.float32)


def _linear_axis(a: np.ndarray, axis: int, n_out: int, n_in: int | None = None, out: slice = slice(None),
                 offset: int = 0) -> np.ndarray:
    """Linear resize along one axis, like torch's trilinear with align_corners=False.

    `a` may be a block of a larger input (`n_in` voxels along `axis`, block starting at `offset`); then only the
    output voxels `out` of the `n_out`-voxel grid are computed.
    """
    n_in = a.shape[axis] if n_in is None else n_in
    if n_in == n_out and a.shape[axis] == n_in:
        return a[(slice(None),) * axis + (out,)]  # identity: just the asked-for voxels (a thin slab's organ box)
    i0, w = _axis_weights(n_in, n_out)
    i0, w = i0[out], w[out]
    i1 = np.minimum(i0 + 1, n_in - 1) - offset
    i0 = i0 - offset
    shape = [1] * a.ndim
    shape[axis] = len(w)
    lo, hi = np.take(a, i0, axis=axis), np.take(a, i1, axis=axis)
    hi -= lo  # lo + w * (hi - lo), in place: two output-sized arrays at the peak instead of five
    hi *= w.reshape(shape)
    lo += hi
    return lo


def resize(volume: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Trilinear resize of a 3D float32 volume (separable, in the order that keeps intermediates smallest)."""
    out = volume.astype(np.float32, copy=False)
    order = sorted(range(3), key=lambda d: size[d] / volume.shape[d])  # shrink first
    for d in order:
        out = _linear_axis(out, d, size[d])
    return out


# A box of a resize, per axis: (input slice, output slice), the output voxels and the input voxels they read.
Box = list[tuple[slice, slice]]


def _support(lo: int, hi: int, n_in: int, n_out: int) -> tuple[slice, slice] | None:
    """Along one axis, the output voxels whose weighted input neighbours touch input voxels lo..hi, and the input
    slice they read; None when no output voxel reads them (a shrink can step over a thin extent)."""
    i0, w = _axis_weights(n_in, n_out)
    touch = np.flatnonzero((i0 + (w > 0) >= lo) & (i0 <= hi))
    if touch.size == 0:
        return None
    return slice(int(i0[touch[0]]), int(min(i0[touch[-1]] + 2, n_in))), slice(int(touch[0]), int(touch[-1]) + 1)


def _resize_box(block: np.ndarray, n_in: tuple[int, ...], size: tuple[int, ...], box: Box) -> np.ndarray:
    """The output box of resizing an `n_in`-shaped volume to `size`, from the input block the box reads: the same
    values to the bit as `resize` of the whole volume there (the same weights, axis order and arithmetic)."""
    out = block.astype(np.float32, copy=False)
    for d in sorted(range(3), key=lambda d: size[d] / n_in[d]):
        out = _linear_axis(out, d, size[d], n_in[d], box[d][1], box[d][0].start)
    return out


def _resized_argmax(channels: Iterable[np.ndarray], n_in: tuple[int, int, int], size: tuple[int, int, int],
                    box: Box | None = None) -> np.ndarray:
    """Arg-max over per-class score volumes of shape `n_in` resized to `size`, one at a time (memory: two volumes
    of the output); with a box, each channel is the input block the box reads and the result the box's part."""
    box = box or [(slice(0, n), slice(0, s)) for n, s in zip(n_in, size)]
    shape = tuple(b[1].stop - b[1].start for b in box)
    best = np.full(shape, -1.0, np.float32)
    out = np.zeros(shape, np.uint8)
    for c, channel in enumerate(channels):
        score = _resize_box(channel, n_in, size, box)
        better = score > best
        out[better] = c
        np.maximum(best, score, out=best)
    return out


def resample_labels(labels: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """Resize a label map without inventing IDs: interpolate each class's indicator, keep the arg-max.

    Equal to `_resized_argmax` over all one-hot channels, but about ten times faster on the synthetic cases: each
    organ is interpolated only inside its own bounding box, and background needs no pass of its own because
    linear interpolation keeps the channels summing to one (background = 1 - the organs' sum).
    """
    if tuple(labels.shape) == tuple(size):
        return labels.astype(np.uint8)
    organ_sum = np.zeros(size, np.float32)
    best = np.zeros(size, np.float32)
    out = np.zeros(size, np.uint8)
    for c in range(1, L.NUM_CLASSES):
        mask = labels == c
        if not mask.any():
            continue
        box = [_support(int(i[0]), int(i[-1]), n, s) for i, n, s in zip(masks.extent(mask), labels.shape, size)]
        if None in box:
            continue  # no output voxel reads this organ: its score is 0 everywhere
        score = _resize_box(mask[tuple(b[0] for b in box)], labels.shape, size, box)
        box = tuple(b[1] for b in box)
        organ_sum[box] += score
        better = score > best[box]
        out[box][better] = c
        np.maximum(best[box], score, out=best[box])
    out[best <= 1.0 - organ_sum] = 0  # background wins ties, as it comes first in the arg-max
    return out


def body_box(image_hu: np.ndarray, threshold: float, margin: int) -> tuple[list[int], list[int]]:
    """Bounding box of the body: the largest connected component above `threshold` HU (the couch is left out)."""
    box = masks.bounding_box(masks.largest_component(image_hu > threshold, full_connectivity=False), margin)
    if box is None:
        return [0, 0, 0], list(image_hu.shape)
    return [s.start for s in box], [s.stop for s in box]


def preprocess(image: np.ndarray, affine: np.ndarray, spec: PreprocessSpec,
               labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, Geometry]:
    """Map a raw case onto the processed grid; returns the scaled image, the labels (if given) and the geometry."""
    canon, canon_aff, _ = to_canonical(np.asarray(image), affine)
    src_spacing = nifti.spacing(canon_aff)
    size = processed_shape(canon.shape, src_spacing, spec.spacing)
    img = resize(canon.astype(np.float32), size)
    scale = np.array(canon.shape) / np.array(size)
    to_canon = np.eye(4)
    to_canon[:3, :3] = np.diag(scale)
    to_canon[:3, 3] = (scale - 1) / 2
    proc_aff = canon_aff @ to_canon
    margin = int(np.ceil(spec.crop_margin_mm / min(spec.spacing)))
    lo, hi = body_box(img, spec.body_threshold, margin)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    shift = np.eye(4)
    shift[:3, 3] = lo
    img = spec.normalise(img[crop])
    lab = None
    if labels is not None:
        canon_lab, _, _ = to_canonical(np.asarray(labels), affine)
        lab = resample_labels(canon_lab, size)[crop]
    geom = Geometry(
        original_shape=list(image.shape), original_affine=np.asarray(affine).tolist(),
        original_orientation=nifti.axcodes(affine), original_spacing=list(nifti.spacing(affine)),
        spacing=list(nifti.spacing(proc_aff)),
        canonical_shape=list(canon.shape),
        processed_shape=list(size), crop_lo=lo, crop_hi=hi, processed_affine=(proc_aff @ shift).tolist())
    return np.ascontiguousarray(img), None if lab is None else np.ascontiguousarray(lab), geom


def uncropped_channels(probs: np.ndarray, geom: Geometry) -> Iterator[np.ndarray]:
    """Each class channel of cropped probabilities padded back to the full processed grid, one at a time: outside the
    body crop background is 1 and every organ 0."""
    pad = [(lo, n - hi) for lo, hi, n in zip(geom.crop_lo, geom.crop_hi, geom.processed_shape)]
    return (np.pad(p, pad, constant_values=1.0 if c == 0 else 0.0) for c, p in enumerate(probs))


def invert_probabilities(probs: np.ndarray, geom: Geometry) -> np.ndarray:
    """Class probabilities (C, *cropped processed shape) -> a uint8 label map on the original grid.

    Each class's channel is padded back to the full processed grid (background outside the crop), resized
    to the canonical grid and compared with the running best. Only the box of output voxels that read a processed
    voxel where an organ wins is resized: elsewhere every voxel read has background on top, and so has any convex
    combination of them, so the result is background there and equal to the whole-grid arg-max everywhere (tested).
    On a GPU this inversion was 80% of a prediction (docs/benchmarks.md, "GPU"); the box is the abdomen's organs.
    """
    probs = np.asarray(probs, dtype=np.float32)
    full, size = tuple(geom.processed_shape), tuple(geom.canonical_shape)
    labels = np.zeros(size, np.uint8)
    extent = masks.extent(probs.argmax(0) > 0)
    if all(i.size for i in extent):
        box = [_support(int(i[0]) + lo, int(i[-1]) + lo, n, s) for i, lo, n, s in zip(extent, geom.crop_lo, full, size)]
        if None not in box:
            read = tuple(b[0] for b in box)
            channels = (channel[read] for channel in uncropped_channels(probs, geom))
            labels[tuple(b[1] for b in box)] = _resized_argmax(channels, full, size, box)
    return from_canonical(labels, np.asarray(geom.original_affine))


# Smoothing (in processed voxels) of a hard label map's one-hot channels before they are upsampled: it rounds
# the staircase of the coarse grid, which brings the round trip closer to the raw labels (measured on the
# synthetic cases at 2.5 x 2.5 x 4 mm, smallest organ Dice 0.984 -> 0.986; 0.5 beat 0.3, 0.7 and 1.0).
LABEL_SMOOTHING_SIGMA = 0.5


def invert_labels(labels: np.ndarray, geom: Geometry) -> np.ndarray:
    """A processed-space label map -> the original grid, via its lightly smoothed one-hot channels."""
    onehot = np.stack([ndimage.gaussian_filter((labels == c).astype(np.float32), LABEL_SMOOTHING_SIGMA)
                       for c in range(L.NUM_CLASSES)])
    return invert_probabilities(onehot, geom)


def save_processed(out_image: str | os.PathLike, out_label: str | os.PathLike | None, out_meta: str | os.PathLike,
                   image: np.ndarray, labels: np.ndarray | None, geom: Geometry) -> None:
    """Write the processed arrays (.npy, memory-mappable) and the geometry JSON, each atomically."""
    with files.atomic_path(out_image) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, image)
    if out_label is not None and labels is not None:
        with files.atomic_path(out_label) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, labels)
    geom.save(out_meta)


def preprocess_case(image_path: str | os.PathLike, label_path: str | os.PathLike, spec: PreprocessSpec,
                  out_image: str | os.PathLike, out_label: str | os.PathLike, out_meta: str | os.PathLike) -> Geometry:
    """The pipeline's preprocess rule for one case: read raw NIfTI, write processed arrays and geometry."""
    img = nifti.load(image_path)
    lab = nifti.load(label_path)
    if not nifti.same_grid(img, lab):
        raise ValueError(f"{image_path}: image and labels differ in shape or affine ({img.shape} vs {lab.shape})")
    image, labels, geom = preprocess(np.asanyarray(img.dataobj), img.affine, spec, np.asanyarray(lab.dataobj))
    save_processed(out_image, out_label, out_meta, image, labels, geom)
    return geom
