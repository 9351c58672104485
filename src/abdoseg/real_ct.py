"""The bundled real CT (TotalSegmentator's example scan, Apache-2.0): the pipeline's check outside the phantom.

The scan is an evaluation case only: never training data, never a template for the generator. Its reference
labels are TotalSegmentator's output (a model's, not an expert's), mapped here from TotalSegmentator's class IDs
to ours. See reference_ct/README.md for the files, their licence and checksums.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import files, nifti, slices
from . import labels as L
from .metrics import organ_metrics
from .sources import TOTALSEGMENTATOR_CLASSES
from .specs import PredictSpec

FOLDER = Path(__file__).resolve().parent / "reference_ct"
IMAGE = FOLDER / "example_ct_sm.nii.gz"
REFERENCE = FOLDER / "example_seg.nii.gz"


@dataclass(frozen=True)
class RealCT:
    """The real scan: HU array, our labels (0-4) and the affine, all on the scan's own grid."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray


def map_totalsegmentator(raw: np.ndarray) -> np.ndarray:
    """TotalSegmentator v2 class IDs -> our label IDs; every other structure becomes background."""
    table = np.zeros(max(int(raw.max()), max(TOTALSEGMENTATOR_CLASSES)) + 1, np.uint8)
    for theirs, ours in TOTALSEGMENTATOR_CLASSES.items():
        table[theirs] = ours
    return table[raw.astype(np.int64)]


def load() -> RealCT:
    """Read the bundled scan and its reference labels (mapped to our table)."""
    img, seg = nifti.load(IMAGE), nifti.load(REFERENCE)
    return RealCT(np.asanyarray(img.dataobj), map_totalsegmentator(np.asarray(seg.dataobj)), img.affine)


def score(prediction: np.ndarray, reference: RealCT, tolerance_mm: float) -> dict:
    """Per organ Dice, NSD, HD95 and both volumes of `prediction` (on the scan's grid); flat, for `dvc metrics`."""
    if prediction.shape != reference.labels.shape:
        raise ValueError(f"real CT: prediction shape {prediction.shape} is not the scan's {reference.labels.shape}")
    spacing = nifti.spacing(reference.affine)
    out: dict = {}
    for oid, name in L.ORGANS.items():
        m = organ_metrics(prediction, reference.labels, oid, spacing, tolerance_mm)
        out[name] = {k: (round(float(v), 4) if isinstance(v, float) and np.isfinite(v) else None)
                     for k, v in m.items() if k != "both_empty"}
    out["mean"] = {"dice": round(float(np.mean([out[n]["dice"] for n in L.ORGANS.values()])), 4)}
    return out


def check(model_path: str | os.PathLike, prediction_path: str | os.PathLike, metrics_path: str | os.PathLike,
          figure_path: str | os.PathLike, spec: PredictSpec, tolerance_mm: float, threads: int = 1) -> dict:
    """The pipeline's real-CT check: predict the bundled scan with the trained model, score it, draw it."""
    from .predict import predict_file, start  # torch and MONAI: only the check needs them, not the report or the tests

    model, device = start(model_path, spec, threads)
    prediction = predict_file(IMAGE, prediction_path, model, device, spec)  # written, and scored from memory
    scan = load()
    result = score(prediction, scan, tolerance_mm)
    files.write_text(metrics_path, json.dumps(result, indent=2) + "\n")
    slices.side_by_side(scan.image, prediction, scan.labels, scan.affine, figure_path,
                        title="real CT: the trained model (left) and TotalSegmentator's labels (right)",
                        reference_name="TotalSegmentator")
    return result
