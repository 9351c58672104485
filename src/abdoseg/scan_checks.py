"""Checks that a scan can be segmented before anything runs: geometry, voxel values, label values.

One module, used by ingest, predict and evaluate, so that the three agree on what a CT is. Each check either
refuses (raises `InputError`, one line naming the file and what to do) or, for a scan that is unusual but can
still be segmented, returns warnings that the caller prints and records beside its output. Why each check
refuses or warns is in docs/reliability.md.
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np

from . import labels as L

# What a CT can be. Clinical CT reconstructs voxels of 0.2-1 mm in-plane and slices of 0.5-10 mm (older
# scanners and thick MPRs); below 0.05 mm or above 20 mm a header is wrong (metres or centimetres written as mm,
# or a pixdim of 0 or 1 left by a converter).
MIN_VOXEL_MM = 0.05
MAX_VOXEL_MM = 20.0
# The gantry bore is 70-85 cm, so no axis of a reconstructed CT spans more than 1000 mm in-plane, and a
# whole-body scan is at most about 2000 mm long; we take 2000 mm for every axis (the array's axes need not be
# the patient's). Below 20 mm the scan is a slab or a single slice: the network needs a volume.
MAX_EXTENT_MM = 2000.0
MIN_EXTENT_MM = 20.0
# Slices much coarser than the model's grid still segment, but organ edges along that axis are guessed.
COARSE_FACTOR = 2.0
# Hounsfield units: air is -1000, water 0. Any CT of a body holds voxels below -500 (air outside the body, in
# the lungs or the bowel) and spans far more than 200 HU; MRI, 8-bit screenshots and rescaled ([0, 1]) data do not.
AIR_HU = -500.0
MIN_HU_RANGE = 200.0
# A scan with less tissue (above the body threshold) than this holds no abdomen: a phantom of air, a blank series.
MIN_BODY_ML = 500.0


class InputError(ValueError):
    """Input the pipeline refuses: the message starts with the user's path or parameter and says what to do."""


def check_header(header: nib.Nifti1Header, name: str | os.PathLike) -> None:
    """Refuse a NIfTI whose qform and sform codes are both 0: its orientation is unknown.

    nibabel then falls back to NIfTI's method 1 (pixdim only, no rotation), which places the patient's right
    and left by guesswork: the kidneys may come back swapped.
    """
    if int(header["qform_code"]) == 0 and int(header["sform_code"]) == 0:
        raise InputError(f"{name}: orientation unknown (qform_code and sform_code are both 0), so the patient's left "
                         f"and right cannot be told apart; convert the scan again from DICOM (dcm2niix) or set the "
                         f"correct sform")


def check_geometry(shape: tuple[int, ...], affine: np.ndarray, name: str | os.PathLike,
                   target_spacing: tuple[float, ...] | None = None) -> list[str]:
    """Refuse an affine that is not finite or singular, or voxels and a field of view no CT has; warn on coarse slices."""
    affine = np.asarray(affine, float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise InputError(f"{name}: the affine is not finite ({affine.tolist()}); the header is broken, convert again")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-6 * max(np.abs(affine[:3, :3]).max(), 1e-12) ** 3:
        raise InputError(f"{name}: the affine is singular (two axes point the same way or a voxel size is 0); "
                         f"the header is broken, convert again")
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if spacing.min() < MIN_VOXEL_MM or spacing.max() > MAX_VOXEL_MM:
        raise InputError(f"{name}: voxel size {_mm(spacing)} mm is outside what a CT has ({MIN_VOXEL_MM}-"
                         f"{MAX_VOXEL_MM:g} mm); the header's pixdim or units are probably wrong")
    extent = spacing * np.asarray(shape[:3], float)
    if extent.min() < MIN_EXTENT_MM or extent.max() > MAX_EXTENT_MM:
        raise InputError(f"{name}: field of view {_mm(extent)} mm ({'x'.join(map(str, shape))} voxels of "
                         f"{_mm(spacing)} mm) is outside what a CT covers ({MIN_EXTENT_MM:g}-{MAX_EXTENT_MM:g} mm "
                         f"per axis); check the voxel size in the header")
    warnings = []
    if target_spacing is not None:
        coarse = [i for i in range(3) if spacing[i] > COARSE_FACTOR * target_spacing[i]]
        if coarse:
            warnings.append(f"voxels of {_mm(spacing)} mm are more than {COARSE_FACTOR:g} times coarser than the "
                            f"model's grid ({_mm(target_spacing)} mm) along axis {coarse}: organ edges there are "
                            f"interpolated")
    return warnings


def check_voxels(array: np.ndarray, affine: np.ndarray, name: str | os.PathLike, body_threshold: float = AIR_HU) -> None:
    """Refuse non-finite voxels, intensities that are not Hounsfield units, and a scan with no body in it."""
    array = np.asanyarray(array)
    if np.issubdtype(array.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise InputError(f"{name}: {bad} voxels ({bad / array.size:.2%}) are NaN or infinite; the conversion "
                             f"that wrote the file is broken, convert it again")
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine, float)[:3, :3]))) / 1000.0
    body_ml = float(np.count_nonzero(array > body_threshold)) * voxel_ml
    if body_ml < MIN_BODY_ML:  # first: a scan of air also fails the range test below, but this is the reason
        raise InputError(f"{name}: no body in the scan (only {body_ml:.0f} mL above {body_threshold:g} HU, a body "
                         f"holds litres); is it the right series?")
    lo, hi = float(array.min()), float(array.max())
    if hi - lo < MIN_HU_RANGE:
        hint = "a range that narrow is rescaled or normalised data"
    elif array.dtype == np.uint8 or (lo >= 0 and hi <= 255):
        hint = "8-bit values (a screenshot or a PNG stack?)"
    elif lo > AIR_HU:
        hint = f"no voxel below {AIR_HU:g} HU, so no air: MRI, or CT stored without its rescale intercept?"
    else:
        hint = None
    if hint is not None:
        raise InputError(f"{name}: intensities {lo:g} to {hi:g} do not look like CT Hounsfield units ({hint}); "
                         f"give the CT in HU (air -1000, water 0)")


def check_scan(array: np.ndarray, affine: np.ndarray, name: str | os.PathLike, header: nib.Nifti1Header | None = None,
               target_spacing: tuple[float, ...] | None = None, body_threshold: float = AIR_HU) -> list[str]:
    """Every check of an image that is to be segmented; returns the warnings (refusals raise InputError)."""
    if header is not None:
        check_header(header, name)
    warnings = check_geometry(array.shape, affine, name, target_spacing)
    check_voxels(array, affine, name, body_threshold)
    return warnings


def check_labels(labels: np.ndarray, name: str | os.PathLike) -> np.ndarray:
    """A label map as uint8, refusing values that are not integers or not in the label table (0-4)."""
    labels = np.asanyarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels)):
            raise InputError(f"{name}: label values must be whole numbers, found "
                             f"{_sample(labels[labels != np.round(labels)])}; is this a probability map or an image?")
    values = np.unique(labels)
    unknown = values[(values < 0) | (values >= L.NUM_CLASSES)]
    if unknown.size:
        table = ", ".join(f"{i} {n}" for i, n in enumerate(L.CLASS_NAMES))
        raise InputError(f"{name}: label values {_sample(unknown)} are not in abdoseg's label table ({table}); "
                         f"map your IDs onto it first (data.local.label_map does it for the pipeline)")
    return labels.astype(np.uint8)


def _mm(values) -> str:
    return " x ".join(f"{float(v):.3g}" for v in values)


def _sample(values: np.ndarray, n: int = 5) -> str:
    values = np.unique(values)
    shown = ", ".join(f"{float(v):g}" for v in values[:n])
    return shown + (f" and {values.size - n} more" if values.size > n else "")
