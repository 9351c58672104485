"""Reading one DICOM CT series (a folder) into a Hounsfield-unit array with its NIfTI (RAS+) affine.

DICOM places each slice by ImagePositionPatient and ImageOrientationPatient in LPS+ millimetres; the files'
order on disk and their InstanceNumber mean nothing. So slices are sorted by their position along the slice
normal, the spacing between them is measured (and must be regular), and the affine is built from the
geometry itself, then turned from LPS+ to RAS+ (x and y change sign). nibabel and MONAI would do this
through ITK or dicom2nifti, neither of which is a dependency here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def read_series(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(HU array indexed [column, row, slice], RAS+ affine) of the one image series in `folder`."""
    folder = Path(folder)
    slices = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue  # DICOMDIR companions, readme files, thumbnails
        if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
            raise ValueError(f"{path}: a multi-frame (enhanced) DICOM file; abdoseg reads one slice per file, "
                             f"convert the series first (dcm2niix)")
        if "ImagePositionPatient" in ds and "PixelData" in ds:
            slices.append(ds)
    if not slices:
        raise ValueError(f"{folder}: no DICOM image slices found")
    series = {s.SeriesInstanceUID for s in slices}
    if len(series) > 1:
        raise ValueError(f"{folder}: holds {len(series)} series; put one series per case folder")

    iop = np.array(slices[0].ImageOrientationPatient, float)
    row_dir, col_dir = iop[:3], iop[3:]  # direction of increasing column index, and of increasing row index
    normal = np.cross(row_dir, col_dir)
    for s in slices:
        if not np.allclose(np.array(s.ImageOrientationPatient, float), iop, atol=1e-4):
            raise ValueError(f"{folder}: slices differ in orientation (a localizer or a tilted series mixed in)")
    slices.sort(key=lambda s: float(np.dot(np.array(s.ImagePositionPatient, float), normal)))
    positions = np.array([np.dot(np.array(s.ImagePositionPatient, float), normal) for s in slices])
    if len(slices) > 1:
        step = np.array(slices[-1].ImagePositionPatient, float) - np.array(slices[0].ImagePositionPatient, float)
        tilt = np.degrees(np.arccos(np.clip(abs(np.dot(step, normal)) / max(np.linalg.norm(step), 1e-9), 0, 1)))
        if tilt > 0.5:  # slices stacked off their normal: the voxels are sheared (gantry tilt)
            raise ValueError(f"{folder}: slices are stacked {tilt:.1f} degrees off their normal (gantry tilt); "
                             f"resample it onto an orthogonal grid first (dcm2niix does)")
        gaps = np.diff(positions)
        if gaps.min() <= 0:
            raise ValueError(f"{folder}: two slices share a position ({positions[np.argmin(gaps)]:.2f} mm along the normal)")
        if gaps.max() - gaps.min() > 0.1 * np.median(gaps):
            raise ValueError(f"{folder}: irregular slice spacing, {gaps.min():.2f} to {gaps.max():.2f} mm (missing slices?)")
        dz = float(np.median(gaps))
    else:
        dz = float(getattr(slices[0], "SliceThickness", 1.0))
    dy, dx = (float(v) for v in slices[0].PixelSpacing)  # row spacing, column spacing

    volume = np.stack([_hu(s) for s in slices], axis=-1)  # [row, column, slice]
    volume = np.ascontiguousarray(volume.transpose(1, 0, 2))  # [column, row, slice]: i along row_dir
    lps = np.eye(4)
    lps[:3, 0] = row_dir * dx
    lps[:3, 1] = col_dir * dy
    lps[:3, 2] = normal * dz
    lps[:3, 3] = np.array(slices[0].ImagePositionPatient, float)
    return volume, LPS_TO_RAS @ lps


def _hu(ds: pydicom.Dataset) -> np.ndarray:
    """One slice in Hounsfield units (rescale applied), int16 when that is exact, else float32."""
    slope = float(getattr(ds, "RescaleSlope", 1.0))
    intercept = float(getattr(ds, "RescaleIntercept", 0.0))
    try:
        pixels = ds.pixel_array
    except Exception as err:  # pydicom raises RuntimeError, NotImplementedError or ValueError by handler
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        raise ValueError(f"{ds.filename}: pixel data cannot be decoded (transfer syntax "
                         f"{getattr(syntax, 'name', syntax)}: {str(err).splitlines()[0]}); decompress the series "
                         f"first (gdcmconv --raw, or dcm2niix) or install pydicom's decoder for it") from err
    if slope == 1.0 and float(intercept).is_integer():
        return (pixels.astype(np.int32) + int(intercept)).clip(-32768, 32767).astype(np.int16)
    return (pixels.astype(np.float32) * slope + intercept).astype(np.float32)
