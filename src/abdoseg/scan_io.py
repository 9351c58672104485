"""Reading a scan in patient geometry: a NIfTI file or a folder holding one DICOM series, whoever asks.

Ingest (the download rule) and predict both read scans through `read_scan`, so that the two agree on what a file
holds. A NIfTI's header is checked before its voxels are read: its orientation must be known (scan_checks), and
each caller adds the header checks of its own job (ingest: a size no CT has; predict: geometry and memory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np

from . import dicom, nifti, scan_checks


def read_scan(path: str | os.PathLike, name: str | os.PathLike | None = None,
              check_header: Callable[[nib.Nifti1Image], None] | None = None,
              ) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Header | None]:
    """(voxels, affine, NIfTI header or None for a DICOM series) of a NIfTI file or a DICOM series folder.

    Stored integers stay integers. A NIfTI of unknown orientation is refused, then `check_header` sees the image
    (header only), both before any voxel is read. Errors name `name` (default: the path).
    """
    name = name or path
    if Path(path).is_dir():
        array, affine = dicom.read_series(path)
        return array, affine, None
    img = nifti.load(path)
    scan_checks.check_header(img.header, name)
    if check_header is not None:
        check_header(img)
    return nifti.voxels(img, name), img.affine, img.header
