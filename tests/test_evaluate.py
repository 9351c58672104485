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
    # the false kidney has an infinite HD95: counted, and penalised with the scan's diagonal, not left out
    diagonal = np.sqrt((40 * 1.5) ** 2 + (40 * 1.5) ** 2 + (20 * 3.0) ** 2)
    assert back["kidney_right"]["hd95_n_inf"] == 1 and back["kidney_right"]["hd95_mean_finite"] is None
    assert back["kidney_right"]["hd95_mean"] == pytest.approx(diagonal)
    assert back["liver"]["hd95_n_inf"] == 0 and back["liver"]["hd95_mean"] == 0.0


def test_a_missed_organ_makes_the_mean_hd95_worse_not_better():
    """Issue #17: a case that misses the left kidney used to drop out of hd95_mean and improve it."""
    rows = [{"case": c, "organ": "kidney_left", "dice": d, "nsd": n, "hd95": h, "volume_pred_ml": 1.0, "volume_ref_ml": 1.0,
             "both_empty": False, "fov_diagonal_mm": 500.0} for c, d, n, h in [("a", 0.9, 0.9, 4.0), ("b", 0.8, 0.8, 8.0)]]
    good = summarize(pd.DataFrame(rows))["kidney_left"]
    missed = summarize(pd.DataFrame(rows + [{**rows[0], "case": "c", "dice": 0.0, "nsd": 0.0, "hd95": float("nan"),
                                             "volume_pred_ml": 0.0}]))["kidney_left"]
    assert good["hd95_mean"] == pytest.approx(6.0) and good["hd95_n_inf"] == 0
    assert missed["hd95_mean"] == pytest.approx((4.0 + 8.0 + 500.0) / 3) and missed["hd95_mean"] > good["hd95_mean"]
    assert missed["hd95_mean_finite"] == pytest.approx(6.0) and missed["hd95_n_inf"] == 1 and missed["n"] == 3


def test_per_case_tables_without_the_diagonal_are_a_clear_error():
    old = pd.DataFrame([{"case": "a", "organ": "liver", "dice": 1.0, "nsd": 1.0, "hd95": 0.0, "volume_pred_ml": 1.0,
                         "volume_ref_ml": 1.0, "both_empty": False}])
    with pytest.raises(ValueError, match="no fov_diagonal_mm column .* rerun the evaluate step"):
        summarize(old)


def test_prediction_off_the_reference_grid_is_a_clear_error(tmp_path):
    lab = np.zeros((10, 10, 10), np.uint8)
    a = _write(tmp_path, "a", lab, np.eye(4))
    b = _write(tmp_path, "b", lab, np.diag([2.0, 2.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="case c9: prediction .* does not lie on the grid"):
        evaluate_case("c9", a, b, list(L.ORGANS.values()), 2.0)
