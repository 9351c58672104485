"""Inference: any stored orientation in, a label map on the input's exact grid out; the CLI does the same."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from abdoseg import nifti, vnet
from abdoseg.checkpoint import CheckpointError, save as save_checkpoint
from abdoseg import labels as L
from abdoseg.inference import load_model, mirrored_probs
from abdoseg.metrics import dice
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
    save_checkpoint({**checkpoint_meta(params, [], []), "model_state": net.state_dict()}, path, "model")
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
    with pytest.raises(CheckpointError, match="not an abdoseg model checkpoint"):
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


KIDNEYS = {L.KIDNEY_RIGHT: ((55.0, -25.0, 10.0), (22.0, 26.0, 40.0)),  # world RAS mm: centre, semi-axes
           L.KIDNEY_LEFT: ((-50.0, -20.0, -5.0), (20.0, 24.0, 35.0))}  # unequal, so a mirror cannot pass for the truth


def _world_phantom(shape, affine):
    """HU and labels of a body (40 HU, an ellipse in x-y) holding two kidneys (150 HU), sampled on any grid."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    x, y, z = np.moveaxis(ijk @ affine[:3, :3].T + affine[:3, 3], -1, 0)
    hu = np.where((x / 130) ** 2 + (y / 100) ** 2 < 1, 40, -1000).astype(np.int16)
    labels = np.zeros(shape, np.uint8)
    for organ, ((cx, cy, cz), (rx, ry, rz)) in KIDNEYS.items():
        inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 < 1
        hu[inside], labels[inside] = 150, organ
    return hu, labels


class _SideOracle(torch.nn.Module):
    """A stand-in for a trained network, whose answer is known from the anatomy: in the processed (RAS) array a
    kidney (bright voxels) on the high-x half of the body is the patient's right one, as a network trained on
    RAS arrays learns it. Fed the whole volume at once (its patch is larger than any processed test volume)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body, kidney = x > 0.3, x > 0.6  # 40 HU and 150 HU in the [-200, 300] window
        i = torch.arange(x.shape[2], dtype=x.dtype).view(1, 1, -1, 1, 1).expand_as(x)
        centre = (i * body).sum() / body.sum()
        right = kidney & (i > centre)
        onehot = torch.stack([~kidney, torch.zeros_like(kidney), right, kidney & ~right, torch.zeros_like(kidney)], 1)
        return 20.0 * onehot[:, :, 0].float()


def _oracle_model():
    from abdoseg.inference import Model
    from abdoseg.preprocess import PreprocessSpec

    spec = PreprocessSpec((6.0, 6.0, 6.0), "window", (-200.0, 300.0), -200.0, 500.0, -500.0, 6.0)
    return Model(_SideOracle(), spec, (64, 64, 64), {})


def _storage(kind: str, tmp_path):
    """(path to give predict, the RAS affine that path's grid has, computed here from the geometry as written)."""
    shape, sp = (100, 80, 24), np.array([3.0, 3.5, 5.0])
    if kind in ("RAS", "LPS"):
        sign = [1.0, 1.0, 1.0] if kind == "RAS" else [-1.0, -1.0, 1.0]
        affine = np.diag([*(sign * sp), 1.0])
        affine[:3, 3] = -np.asarray(sign) * (np.array(shape) - 1) / 2 * sp
        hu, _ = _world_phantom(shape, affine)
        assert nifti.axcodes(affine) == kind
        nifti.save(hu, affine, tmp_path / f"{kind}.nii.gz")
        return tmp_path / f"{kind}.nii.gz", affine
    from test_dicom import write_series

    # a standard axial series: i (columns) towards the patient's left, j (rows) posterior, slices going up (LPS mm)
    row_dir, col_dir, origin = np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([-150.0, -140.0, -60.0])
    affine = np.eye(4)  # by DICOM's definition, then LPS -> RAS (x and y change sign): no abdoseg code involved
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = row_dir * sp[0], col_dir * sp[1], np.cross(row_dir, col_dir) * sp[2]
    affine[:3, 3] = origin
    affine[:2] *= -1
    hu, _ = _world_phantom(shape, affine)
    write_series(tmp_path / "dcm", hu, row_dir, col_dir, sp, origin, np.random.default_rng(0))
    return tmp_path / "dcm", affine


@pytest.mark.parametrize("kind", ["RAS", "LPS", "DICOM"])
def test_kidneys_land_on_the_patients_side_through_predict(kind, tmp_path):
    """Issue #17, left and right end to end: through predict_file (reading, reorienting, resampling, inference,
    inverting, writing), the right kidney's world x is on the patient's right (+x) for each storage, and the
    prediction overlaps the kidney that was drawn there."""
    path, affine = _storage(kind, tmp_path)
    out = tmp_path / "seg.nii.gz"
    predict_file(path, out, _oracle_model(), torch.device("cpu"))
    res = nifti.load(out)
    np.testing.assert_allclose(res.affine, affine, atol=1e-5)  # the output's grid is the input's, as DICOM defines it
    pred = np.asarray(res.dataobj)
    _, truth = _world_phantom(res.shape, affine)
    world_x = {o: (affine[:3, :3] @ np.argwhere(pred == o).mean(0) + affine[:3, 3])[0] for o in KIDNEYS}
    assert world_x[L.KIDNEY_RIGHT] > 0 > world_x[L.KIDNEY_LEFT], (kind, world_x)
    for organ in KIDNEYS:
        assert dice(pred == organ, truth == organ) > 0.8, (kind, L.ORGANS[organ])


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
    from abdoseg.ingest import write_case
    from abdoseg.manifest import write_manifest

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


def test_real_ct_check_scores_the_prediction_it_writes(checkpoint, tmp_path):
    """The real-CT check scores predict's returned labels without reading them back: they are the written file."""
    import json

    from abdoseg import real_ct
    from abdoseg.specs import PredictSpec

    out = {name: tmp_path / name for name in ("prediction.nii.gz", "real_ct.json", "slices.png")}
    result = real_ct.check(checkpoint, out["prediction.nii.gz"], out["real_ct.json"], out["slices.png"],
                           PredictSpec(device="cpu"), tolerance_mm=2.0)
    written = np.asarray(nifti.load(out["prediction.nii.gz"]).dataobj)
    assert written.dtype == np.uint8 and written.shape == real_ct.load().labels.shape
    assert result == real_ct.score(written, real_ct.load(), 2.0) == json.loads(out["real_ct.json"].read_text())
    assert out["slices.png"].stat().st_size > 0
