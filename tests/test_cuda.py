"""CUDA smoke test: a few training steps with mixed precision, an exact resume, inference against the CPU's, and
augmentation on the GPU (issue #18).

Skips, naming the reason, where torch cannot use a GPU. bench/gpu.sh runs it first on a GPU machine.

Tolerances. Mixed precision runs convolutions in float16, whose unit roundoff is 2**-11 (about 4.9e-4); through a
few layers of sums over 27 * channels terms the logits carry relative errors of order 1e-3 to 1e-2, and softmax
moves a probability by at most half the largest logit change. So the CUDA probabilities may differ from the CPU's
float32 ones by about 1e-2 in the worst voxel: the test allows 0.05 at any voxel and 0.005 on average, and the
loss of one batch within 2% (a mean over all voxels, where the rounding errors mostly cancel). Exactness is asked
only where it is promised: a resumed CUDA run with `train.deterministic` equals the uninterrupted one bit for bit.
"""

import copy
import shutil

import numpy as np
import pytest
import torch

from abdoseg import checkpoint as C
from abdoseg import vnet
from abdoseg.device import cuda_problem
from abdoseg.inference import load_model, sliding_window_probs
from abdoseg.train import train, training_loss
from test_train import CASES, setup  # noqa: F401  (setup: the processed cases, a module fixture)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason=f"needs a GPU: {cuda_problem()}")


def _train_on(device: str, root, params, out, **train_params):
    p = copy.deepcopy(params)
    p["train"].update(device=device, **train_params)
    return train(p, CASES[:3], CASES[3:], str(root / "{case}.img.npy"), str(root / "{case}.lab.npy"), out, threads=1)


def test_amp_training_resumes_exactly_on_cuda(setup, tmp_path, monkeypatch, capsys):  # noqa: F811
    root, params = setup
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    save = C.save

    def save_and_keep_epoch_2(obj, path, kind):  # resume.pt as an interruption after epoch 2 would leave it
        save(obj, path, kind)
        if kind == "resume" and obj["epoch"] == 2:
            shutil.copy(path, snapshot / "resume.pt")

    monkeypatch.setattr(C, "save", save_and_keep_epoch_2)
    _train_on("cuda", root, params, tmp_path / "straight", epochs=4, val_every=2, deterministic=True)
    assert torch.cuda.get_device_name() in capsys.readouterr().out  # the start-up line names the GPU

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copy(snapshot / "resume.pt", resumed / "resume.pt")
    _train_on("cuda", root, params, resumed, epochs=4, val_every=2, deterministic=True, resume=True)

    for name in ("last.pt", "best.pt"):
        a = torch.load(tmp_path / "straight" / name, weights_only=True)  # no map_location: CPU tensors already
        b = torch.load(resumed / name, weights_only=True)
        assert a["epoch"] == b["epoch"]
        for key, value in a["model_state"].items():
            assert value.device.type == "cpu" and torch.equal(value, b["model_state"][key]), (name, key)
    import pandas as pd

    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "straight" / "train_log.csv").drop(columns="seconds"),
                                  pd.read_csv(resumed / "train_log.csv").drop(columns="seconds"))
    state = torch.load(resumed / "resume.pt", weights_only=True)
    assert state["scaler"]["scale"] > 0  # mixed precision was on


def test_cuda_matches_the_cpu_within_float16_tolerance(setup, tmp_path):  # noqa: F811
    root, params = setup
    _train_on("cuda", root, params, tmp_path, epochs=2, val_every=1, deterministic=True)
    cpu, cuda = load_model(tmp_path / "best.pt", torch.device("cpu")), load_model(tmp_path / "best.pt", torch.device("cuda"))
    image = np.load(root / f"{CASES[3]}.img.npy")
    windows = int(params["predict"]["sw_batch_size"])  # as predict and training's validation run them
    p_cpu = sliding_window_probs(cpu.net, image, cpu.patch, 0.25, torch.device("cpu"), windows)
    p_cuda = sliding_window_probs(cuda.net, image, cuda.patch, 0.25, torch.device("cuda"), windows)
    assert p_cuda.device.type == "cpu" and p_cuda.shape == p_cpu.shape
    diff = (p_cuda - p_cpu).abs()
    assert float(diff.max()) <= 0.05 and float(diff.mean()) <= 0.005

    torch.manual_seed(0)
    net = vnet.build({**params["model"], "deep_supervision": 0}).train()
    x = torch.from_numpy(np.ascontiguousarray(image[None, None, :16, :16, :16]))
    y = torch.from_numpy(np.load(root / f"{CASES[3]}.lab.npy")[None, None, :16, :16, :16].astype(np.float32))
    loss_fn = training_loss({"deep_supervision": 0})
    with torch.no_grad():
        loss_cpu = float(loss_fn(net(x), y))
        net = net.cuda()
        with torch.autocast("cuda"):
            loss_cuda = float(loss_fn(net(x.cuda()), y.cuda()))
    assert loss_cuda == pytest.approx(loss_cpu, rel=0.02)


def test_predict_on_cuda_writes_the_input_grid(setup, tmp_path):  # noqa: F811
    from abdoseg import nifti
    from abdoseg.predict import predict_cases
    from abdoseg.specs import PredictSpec
    from abdoseg.synthetic import SyntheticConfig, generate_case

    root, params = setup
    _train_on("cuda", root, params, tmp_path, epochs=1, val_every=1)
    case = generate_case(7, SyntheticConfig(spacing_inplane=(3.0, 3.5), slice_thickness=(4.0, 5.0)))
    nifti.save(case.image, case.affine, tmp_path / "ct.nii.gz")
    outs = [tmp_path / "cpu.nii.gz", tmp_path / "cuda.nii.gz"]
    for device, out in zip(("cpu", "cuda"), outs):
        predict_cases([str(tmp_path / "ct.nii.gz")], [str(out)], str(tmp_path / "best.pt"), PredictSpec(device=device), threads=1)
    a, b = (nifti.load(p) for p in outs)
    assert a.shape == b.shape == case.image.shape and np.allclose(b.affine, case.affine)
    assert b.get_data_dtype() == np.uint8


def test_augment_runs_on_the_gpu_from_a_cuda_generator():
    from abdoseg import labels as L
    from abdoseg.augment import AugmentSpec, augment

    lab = torch.zeros(2, 32, 32, 24, dtype=torch.long, device="cuda")
    lab[:, 18:26, 8:20, 6:18] = L.KIDNEY_RIGHT
    lab[:, 4:12, 8:20, 6:18] = L.KIDNEY_LEFT
    img = (lab > 0).float()[:, None] * 0.6 + 0.2
    spec = AugmentSpec(probability=1.0, mirror_axes=(0,), intensity_curve=0.05, bias_field=0.1, domain_probability=1.0)
    runs = [augment(img, lab, spec, torch.Generator("cuda").manual_seed(3), (2.5, 2.5, 4.0)) for _ in range(2)]
    (x, y), (x2, y2) = runs
    assert x.device.type == y.device.type == "cuda" and x.shape == img.shape and y.shape == lab.shape
    assert torch.equal(x, x2) and torch.equal(y, y2)  # the same CUDA seed, the same augmentation
    assert set(torch.unique(y).tolist()) <= {0, L.KIDNEY_RIGHT, L.KIDNEY_LEFT} and not torch.equal(x, img)


def test_training_with_augmentation_on_the_gpu_and_workers(setup, tmp_path):  # noqa: F811
    root, params = setup
    _train_on("cuda", root, params, tmp_path, epochs=2, val_every=1, workers=2, augment_on="device")
    import pandas as pd

    log = pd.read_csv(tmp_path / "train_log.csv")
    assert list(log.epoch) == [1, 2] and np.isfinite(log.train_loss).all() and log.dice_mean.notna().all()
