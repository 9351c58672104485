"""The evaluate step (one case) and the summarize step (all cases): metrics in the scan's original geometry."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from . import labels as L
from . import files, metrics, nifti, scan_checks

CASE_COLUMNS = ["case", "organ", "dice", "nsd", "hd95", "volume_pred_ml", "volume_ref_ml", "both_empty", "fov_diagonal_mm"]


def evaluate_case(case: str, prediction_path: str | os.PathLike, label_path: str | os.PathLike,
                  annotated: list[str], tolerance_mm: float) -> pd.DataFrame:
    """Score one case's prediction against its reference, per annotated organ, on the original grid.

    Label values that are not whole numbers or not in the label table are refused: scored, they would count as
    plain misses (Dice 0) and hide a label map that was never converted.
    """
    pred_img, ref_img = nifti.load(prediction_path), nifti.load(label_path)
    if not nifti.same_grid(pred_img, ref_img):
        raise ValueError(f"case {case}: prediction {prediction_path} {pred_img.shape} does not lie on the grid of "
                         f"its reference {label_path} {ref_img.shape}")
    pred = scan_checks.check_labels(nifti.read(prediction_path)[0], prediction_path)
    ref = scan_checks.check_labels(nifti.read(label_path)[0], label_path)
    spacing = nifti.spacing(ref_img.affine)
    rows = []
    for oid, name in L.ORGANS.items():
        if name not in annotated:
            continue  # not annotated by the source: excluded, never scored 0
        rows.append({"case": case, "organ": name, **metrics.organ_metrics(pred, ref, oid, spacing, tolerance_mm),
                     "fov_diagonal_mm": metrics.fov_diagonal_mm(ref.shape, spacing)})
    return pd.DataFrame(rows, columns=CASE_COLUMNS)


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with files.atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def summarize(per_case: pd.DataFrame) -> dict:
    """Per organ mean, sd, median and n of Dice (plus NSD and HD95 means), and the mean over organs.

    HD95 is infinite (NaN in the table) where one mask is empty and the other is not: a missed organ, or one
    predicted where the reference has none. Leaving those cases out would make a model that misses organs look
    better, so, as BraTS and Metrics Reloaded do, `hd95_mean` counts each of them at the worst finite value the
    scan allows, its field-of-view diagonal; `hd95_n_inf` says how many there were and `hd95_mean_finite`
    is the mean over the others. Flat, one key per organ, so that `dvc metrics diff` shows one row per statistic.
    """
    if "fov_diagonal_mm" not in per_case.columns:
        raise ValueError("per-case metrics have no fov_diagonal_mm column (written by an older abdoseg): "
                         "rerun the evaluate step")
    out: dict = {}
    for name in L.ORGANS.values():
        d = per_case[per_case.organ == name]
        if d.empty:
            continue
        inf = d.hd95.isna()
        out[name] = {
            "dice_mean": float(d.dice.mean()),
            "dice_sd": float(d.dice.std(ddof=1)) if len(d) > 1 else 0.0,
            "dice_median": float(d.dice.median()),
            "nsd_mean": float(d.nsd.mean()),
            "hd95_mean": float(d.hd95.where(~inf, d.fov_diagonal_mm).mean()),
            "hd95_mean_finite": float(d.hd95.mean()) if not inf.all() else None,
            "hd95_n_inf": int(inf.sum()),
            "n": int(len(d)),
            "n_both_empty": int(d.both_empty.astype(bool).sum()),
        }
    means = [v["dice_mean"] for v in out.values()]
    out["mean"] = {"dice": float(np.mean(means)) if means else float("nan")}
    return _finite(out)


def _finite(obj):
    """JSON has no NaN: replace non-finite floats by None."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_summary(summary: dict, path: str | os.PathLike) -> None:
    with files.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
