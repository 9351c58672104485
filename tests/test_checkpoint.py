"""Checkpoints: CPU tensors and plain values only, loaded with weights_only; foreign or malicious files refused."""

import ast
import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from abdoseg import checkpoint as C
from abdoseg import vnet
from abdoseg.train import checkpoint_meta
from conftest import REPO


class _Touch:
    """A pickle that runs a shell command (creating a file) when it is unpickled: what a malicious checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"].update(base_channels=4, depth=2, deep_supervision=0)
    params["train"]["patch_size"] = [16, 16, 16]
    return params


@pytest.fixture
def model_ckpt(tmp_path) -> Path:
    path = tmp_path / "best.pt"
    C.save({**checkpoint_meta(_params(), ["a"], ["b"]), "model_state": vnet.build(_params()["model"]).state_dict()}, path, "model")
    return path


def test_a_saved_checkpoint_is_plain_and_on_the_cpu(model_ckpt):
    raw = torch.load(model_ckpt, weights_only=True)  # no map_location: a GPU tensor would need one on a CPU machine
    assert raw["format"] == C.FORMAT and raw["kind"] == "model"
    assert all(t.device.type == "cpu" for t in raw["model_state"].values())
    assert C.load_model_checkpoint(model_ckpt)["train_cases"] == ["a"]


def test_to_plain_copies_tensors_and_converts_numpy():
    t = torch.ones(3)
    state = np.random.default_rng(0).bit_generator.state
    out = C.to_plain({"t": t, "a": np.arange(3), "n": np.float32(1.5), "rng": state, "tuple": (1, None)})
    assert out["t"] is not t and torch.equal(out["t"], t)
    assert torch.equal(out["a"], torch.arange(3)) and out["n"] == 1.5 and type(out["n"]) is float
    assert out["rng"] == state and out["tuple"] == (1, None)
    with pytest.raises(TypeError, match=r"checkpoint\['bad'\]: a \w*Path cannot go into a checkpoint"):
        C.to_plain({"bad": Path("x")})


def test_only_the_checkpoint_module_calls_torch_load_and_always_with_weights_only():
    for path in sorted((REPO / "src" / "abdoseg").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                assert path.name == "checkpoint.py", f"{path.name} calls torch.load: go through abdoseg.checkpoint"
                assert any(k.arg == "weights_only" and ast.unparse(k.value) == "True" for k in node.keywords)


def test_a_malicious_pickle_given_to_predict_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model_state": _Touch(marker)}, evil)
    torch.load(evil, weights_only=False)  # loaded the unsafe way, the file does what it says
    assert marker.exists()
    marker.unlink()
    image = tmp_path / "ct.nii.gz"
    from abdoseg import nifti

    nifti.save(np.zeros((8, 8, 8), np.int16), np.eye(4), image)
    run = subprocess.run([sys.executable, "-m", "abdoseg.cli", "predict", str(image), "-o", str(tmp_path / "seg.nii.gz"),
                          "--model", str(evil), "--threads", "1", "--device", "cpu"], capture_output=True, text=True)
    assert run.returncode != 0
    assert not marker.exists() and not (tmp_path / "seg.nii.gz").exists()
    error = [line for line in run.stderr.splitlines() if not line.startswith("device ")]
    assert len(error) == 1, run.stderr
    assert f"{evil}: refused: it asks to run posix.system" in error[0] and "weights_only=True" in error[0]


def test_a_malicious_resume_file_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"optimiser": _Touch(marker)}, tmp_path / "resume.pt")
    with pytest.raises(C.CheckpointError, match=r"resume\.pt: refused: it asks to run posix.system"):
        C.load(tmp_path / "resume.pt", "resume")
    assert not marker.exists()


def test_a_raw_pickle_and_junk_are_refused_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "raw.pt", "wb") as fh:
        pickle.dump(_Touch(marker), fh)
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    for name in ("raw.pt", "junk.pt"):
        with pytest.raises(C.CheckpointError) as err:
            C.load(tmp_path / name, "model")
        assert str(err.value).startswith(f"{tmp_path / name}: ") and "\n" not in str(err.value)
    assert not marker.exists()
    with pytest.raises(C.CheckpointError, match="no such checkpoint file"):
        C.load(tmp_path / "absent.pt", "model")


def test_foreign_checkpoints_are_refused_naming_the_difference(model_ckpt, tmp_path):
    good = torch.load(model_ckpt, weights_only=True)
    cases = {
        "not ours": ({"state_dict": {}}, r"not an abdoseg model checkpoint \(no 'model_state'"),
        "newer format": ({**good, "format_version": C.VERSION + 1}, "this code reads 'abdoseg-checkpoint' up to version"),
        "resume as model": ({**good, "kind": "resume"}, "a resume checkpoint, a model one is needed"),
        "kidneys swapped": ({**good, "labels": [dict(r, name={"kidney_right": "kidney_left", "kidney_left": "kidney_right"}
                                                             .get(r["name"], r["name"])) for r in good["labels"]]},
                            r"another label set \(2: kidney_left there, kidney_right here; 3: kidney_right there"),
        "preprocess field": ({**good, "preprocess": {**{k: v for k, v in good["preprocess"].items() if k != "clip"},
                                                     "bias_field": True}},
                             r"another preprocessing version \(it has bias_field, which this code does not know; it lacks clip\)"),
    }
    for name, (obj, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.pt"
        torch.save(obj, path)
        with pytest.raises(C.CheckpointError, match=message) as err:
            C.load_model_checkpoint(path)
        assert str(err.value).startswith(str(path)), name


def test_weights_that_do_not_fit_are_a_clear_error(model_ckpt, tmp_path):
    from abdoseg.inference import load_model

    ckpt = torch.load(model_ckpt, weights_only=True)
    bad = copy.deepcopy(ckpt)
    bad["model"]["base_channels"] = 8
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(C.CheckpointError, match="its weights do not fit the model it describes"):
        load_model(tmp_path / "bad.pt", torch.device("cpu"))
