"""Inference: any stored orientation in, a label map on the input's exact grid out; the CLI does the same."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from abdoseg import nifti, vnet
from abdoseg import labels as L
from abdoseg.inference import load_model, mirrored_probs
from abdoseg.predict import keep_largest_component, predict_file
from abdoseg.synthetic import SyntheticConfig, generate_case
from abdoseg.train import checkpoint_meta
from conftest import REPO


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny model in a real checkpoint (inference plumbing does not need a trained one)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"].update(base_channels=4, depth=2, deep_supervision=1)  # a checkpoint with a training-only head
    params["train"]["patch_size"] = [32, 32, 32]
    params["preprocess"]["spacing"] = [5.0, 5.0, 5.0]
    torch.manual_seed(0)
    net = vnet.build(params["model"])
    path = tmp_path_factory.mktemp("model") / "best.pt"
    torch.save({**checkpoint_meta(params, [], []), "model_state": net.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    cfg = SyntheticConfig(spacing_inplane=(3.0, 3.5), slice_thickness=(4.0, 5.0))
    out = tmp_path_factory.mktemp("raw")
    found = {}
    for i in range(12):
        case = generate_case(i, cfg)
        key = (nifti.axcodes(case.affine), case.image.dtype.name)
        if key not in found:
            path = out / f"{key[0]}_{key[1]}.nii.gz"
            nifti.save(case.image, case.affine, path)
            found[key] = path
    return found


def test_prediction_lies_on_the_input_grid(checkpoint, cases, tmp_path):
    model = load_model(checkpoint, torch.device("cpu"))
    assert {k[0] for k in cases} == {"RAS", "LPS"}
    for (axes, dtype), path in cases.items():
        out = tmp_path / f"pred_{axes}_{dtype}.nii.gz"
        labels = predict_file(path, out, model, torch.device("cpu"))
        src, res = nifti.load(path), nifti.load(out)
        assert res.shape == src.shape == labels.shape
        np.testing.assert_allclose(res.affine, src.affine, atol=1e-6)
        assert res.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(res.dataobj))) <= {0, 1, 2, 3, 4}


def test_largest_component_drops_islands():
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[2:8, 2:8, 2:8] = 1
    lab[15:17, 15:17, 15:17] = 1  # an island of liver
    lab[12:14, 2:4, 2:4] = 2  # one kidney component: kept
    drop = keep_largest_component(lab)
    assert drop[15:17, 15:17, 15:17].all() and not drop[2:8, 2:8, 2:8].any() and not drop[12:14, 2:4, 2:4].any()


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"weights": {}}, bad)
    with pytest.raises(ValueError, match="not an abdoseg checkpoint"):
        load_model(bad, torch.device("cpu"))


def test_cli_predict(checkpoint, cases, tmp_path):
    src = next(iter(cases.values()))
    out = tmp_path / "cli.nii.gz"
    run = subprocess.run([sys.executable, "-m", "abdoseg.cli", "predict", str(src), "-o", str(out), "--model", str(checkpoint),
                          "--threads", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert nifti.load(out).shape == nifti.load(src).shape
    missing = subprocess.run([sys.executable, "-m", "abdoseg.cli", "predict", str(tmp_path / "nope.nii.gz"), "-o", str(out)],
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "nope.nii.gz: no such NIfTI file or DICOM folder" in missing.stderr


def test_predict_a_dicom_folder(checkpoint, tmp_path):
    from abdoseg.dicom import read_series
    from test_dicom import write_series

    case = generate_case(0, SyntheticConfig(spacing_inplane=(3.0, 3.5), slice_thickness=(4.0, 5.0), lps_fraction=0.0))
    hu = case.image[::-1, ::-1].astype(np.int16)  # DICOM's standard axial layout: i towards the patient's left
    sp = nifti.spacing(case.affine)
    write_series(tmp_path / "dcm", hu, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array(sp), np.array([-100.0, -120.0, 0.0]),
                 np.random.default_rng(0))
    out = tmp_path / "seg.nii.gz"
    predict_file(tmp_path / "dcm", out, load_model(checkpoint, torch.device("cpu")), torch.device("cpu"))
    array, affine = read_series(tmp_path / "dcm")
    res = nifti.load(out)
    assert res.shape == array.shape
    np.testing.assert_allclose(res.affine, affine, atol=1e-5)


def _anatomical_oracle(image: np.ndarray) -> np.ndarray:
    """A stand-in for a network trained with left-right mirroring: it calls a kidney right or left by the side
    of the volume it lies on (as the real one does from context), and the liver by its brightness."""
    probs = np.zeros((L.NUM_CLASSES, *image.shape), np.float32)
    kidney = np.isclose(image, 0.5)
    side = (np.arange(image.shape[0]) >= image.shape[0] / 2)[:, None, None]
    probs[L.KIDNEY_RIGHT] = kidney & side
    probs[L.KIDNEY_LEFT] = kidney & ~side
    probs[L.LIVER] = np.isclose(image, 0.9)
    probs[0] = 1 - probs[1:].sum(0)
    return probs


def test_test_time_mirroring_never_mixes_left_and_right():
    image = np.zeros((20, 12, 10), np.float32)
    image[13:18, 3:8, 2:8] = 0.5  # right kidney (+x)
    image[2:7, 3:8, 2:8] = 0.5  # left kidney
    image[8:14, 8:11, 1:9] = 0.9  # liver, off-centre
    plain = _anatomical_oracle(image).argmax(0)
    for axes in [(0,), (1, 2), (0, 1, 2)]:
        assert np.array_equal(mirrored_probs(_anatomical_oracle, image, axes).argmax(0), plain), axes


def test_cli_evaluate_and_visualize(checkpoint, tmp_path):
    from abdoseg.ingest import write_case

    case = generate_case(4, SyntheticConfig(spacing_inplane=(3.0, 3.5), slice_thickness=(4.0, 5.0)))
    write_case(tmp_path / "data", "one", case.image, case.labels, case.affine, source="synthetic")
    table = tmp_path / "metrics.csv"
    run = subprocess.run([sys.executable, "-m", "abdoseg.cli", "evaluate", "--model-path", str(checkpoint), "--data-path",
                          str(tmp_path / "data"), "--output", str(table), "--threads", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "mean Dice per organ" in run.stdout
    import pandas as pd

    df = pd.read_csv(table)
    assert set(df.organ) == {"liver", "kidney_right", "kidney_left", "spleen"} and set(df.case) == {"one"}
    out = tmp_path / "vis"
    run = subprocess.run([sys.executable, "-m", "abdoseg.cli", "visualize", "--model-path", str(checkpoint), "--data-path",
                          str(tmp_path / "data"), "--output-path", str(out), "--frames", "3", "--threads", "1"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (out / "one.mp4").stat().st_size > 0 and (out / "one.png").stat().st_size > 0
    assert nifti.load(out / "one_seg.nii.gz").shape == case.image.shape


def test_cli_evaluate_scores_only_annotated_organs(checkpoint, tmp_path, capsys):
    """Issue #17: on a spleen-only dataset, a predicted liver or kidney is not scored as Dice 0 ("not annotated
    is not absent"). The folder's manifest.tsv decides, else --annotated, else the organs present in the reference."""
    import pandas as pd

    from abdoseg.cli import main
    from abdoseg.ingest import write_case, write_manifest

    case = generate_case(4, SyntheticConfig(spacing_inplane=(3.0, 3.5), slice_thickness=(4.0, 5.0)))
    spleen_only = np.where(case.labels == L.SPLEEN, L.SPLEEN, 0).astype(np.uint8)
    row = write_case(tmp_path / "data", "one", case.image, spleen_only, case.affine, source="synthetic")

    def organs(*extra):
        table = tmp_path / "metrics.csv"
        main(["evaluate", "--model-path", str(checkpoint), "--data-path", str(tmp_path / "data"), "--output", str(table),
              "--threads", "1", *extra])
        return set(pd.read_csv(table).organ)

    assert organs() == {"spleen"}  # plain folder: the liver and kidneys are absent from the reference, so not scored
    assert organs("--annotated", "spleen", "liver") == {"spleen", "liver"}  # the user says the liver is annotated
    write_manifest(tmp_path / "data", [{**row, "annotated": "spleen,kidney_left"}])
    assert organs() == {"spleen", "kidney_left"}  # the manifest says so
    assert "organs scored" in capsys.readouterr().out
