"""Reading and writing NIfTI volumes with their affine (writes are atomic: see abdoseg.files)."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from .files import atomic_path


GRID_TOLERANCE_MM = 1e-2  # two affines of one grid may differ by float rounding (written by other tools), not by a shift


def same_grid(a: nib.Nifti1Image, b: nib.Nifti1Image) -> bool:
    """Whether two images lie on one voxel grid: same shape, affines equal within GRID_TOLERANCE_MM."""
    return a.shape == b.shape and np.allclose(a.affine, b.affine, atol=GRID_TOLERANCE_MM)


def load(path: str | os.PathLike) -> nib.Nifti1Image:
    """Load a NIfTI image, naming the file in the error if it is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"{path}: abdoseg reads NIfTI (.nii, .nii.gz) files and DICOM folders; convert it first "
                         f"(e.g. SimpleITK or 3D Slicer for NRRD and MHA)")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for corrupt files
        raise ValueError(f"{path}: not a readable NIfTI file ({exc})") from exc
    if img.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {img.shape}")
    return img


READ_ERRORS = (OSError, EOFError, zlib.error, ValueError)  # what nibabel and gzip raise on a broken file


class CorruptFile(ValueError):
    """A NIfTI whose voxels cannot be read (truncated, corrupt); the message names the file, the cause is nibabel's."""


def voxels(img: nib.Nifti1Image, name: str | os.PathLike) -> np.ndarray:
    """The voxels of a loaded NIfTI: stored integers stay integers, scaled values (scl_slope, scl_inter) become
    float32 (nibabel's float64 would double the memory); a truncated or corrupt file is an error naming `name`."""
    scaled = img.dataobj.slope != 1 or img.dataobj.inter != 0
    try:
        return img.get_fdata(dtype=np.float32) if scaled else np.asanyarray(img.dataobj)
    except READ_ERRORS as exc:
        raise CorruptFile(f"{name}: truncated or corrupt NIfTI file ({exc}); download or convert it again") from exc


def read(path: str | os.PathLike, name: str | os.PathLike | None = None) -> tuple[np.ndarray, nib.Nifti1Image]:
    """(voxels, image) of a NIfTI file (voxels as `voxels` returns them); errors name the file (or `name`)."""
    img = load(path)
    return voxels(img, name or path), img


def save(array: np.ndarray, affine: np.ndarray, path: str | os.PathLike, header: nib.Nifti1Header | None = None,
         comments: list[str] = ()) -> None:
    """Write `array` with `affine` to `path` atomically; the array's dtype is kept on disk. `comments` (warnings
    about the input) go into the header as NIfTI comment extensions, readable with `img.header.extensions`."""
    img = nib.Nifti1Image(array, affine, header=header)
    for comment in comments:
        img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", comment.encode()))
    img.header.set_data_dtype(array.dtype)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    if header is None:
        img.header.set_xyzt_units("mm", "sec")
    # gzip embeds a modification time; nibabel writes mtime 0, so same data -> same bytes.
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def axcodes(affine: np.ndarray) -> str:
    """The orientation of an affine as a three-letter code, e.g. 'RAS' or 'LPS'."""
    return "".join(nib.aff2axcodes(affine))


def spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm along each array axis."""
    return tuple(float(s) for s in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))
