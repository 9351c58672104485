"""evaluate + summarize on a case with a missing kidney: the empty-organ conventions, end to end through the files."""

import json

import numpy as np
import pandas as pd
import pytest

from abdoseg import labels as L
from abdoseg import nifti
from abdoseg.evaluate import evaluate_case, summarize, write_csv, write_summary


def _write(tmp_path, name, labels, affine):
    path = tmp_path / f"{name}.nii.gz"
    nifti.save(labels.astype(np.uint8), affine, path)
    return path


def test_missing_kidney_and_unannotated_organ(tmp_path):
    affine = np.diag([1.5, 1.5, 3.0, 1.0])
    ref = np.zeros((40, 40, 20), np.uint8)
    ref[5:20, 5:30, 2:18] = L.LIVER
    ref[25:32, 5:12, 5:12] = L.SPLEEN  # no kidney_left in this patient
    pred = ref.copy()
    pred[30:36, 30:36, 5:10] = L.KIDNEY_RIGHT  # a false right kidney
    df = evaluate_case("c1", _write(tmp_path, "pred", pred, affine), _write(tmp_path, "ref", ref, affine),
                       annotated=["liver", "kidney_right", "kidney_left"], tolerance_mm=2.0)
    rows = df.set_index("organ")
    assert "spleen" not in rows.index  # not annotated by the source: excluded, not scored 0
    assert rows.loc["liver", "dice"] == 1.0
    assert rows.loc["kidney_left", "dice"] == 1.0 and rows.loc["kidney_left", "both_empty"]
    assert rows.loc["kidney_right", "dice"] == 0.0 and not rows.loc["kidney_right", "both_empty"]
    assert rows.loc["kidney_right", "volume_pred_ml"] == pytest.approx(6 * 6 * 5 * 1.5 * 1.5 * 3.0 / 1000)
    write_csv(df, tmp_path / "c1.csv")
    summary = summarize(pd.read_csv(tmp_path / "c1.csv"))
    write_summary(summary, tmp_path / "summary.json")
    back = json.loads((tmp_path / "summary.json").read_text())
    assert back["kidney_left"]["n_both_empty"] == 1 and back["kidney_right"]["n_both_empty"] == 0
    assert "spleen" not in back
    assert back["mean"]["dice"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)


def test_prediction_off_the_reference_grid_is_a_clear_error(tmp_path):
    lab = np.zeros((10, 10, 10), np.uint8)
    a = _write(tmp_path, "a", lab, np.eye(4))
    b = _write(tmp_path, "b", lab, np.diag([2.0, 2.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="case c9: prediction .* does not lie on the grid"):
        evaluate_case("c9", a, b, list(L.ORGANS.values()), 2.0)
