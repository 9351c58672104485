"""The device is said, never guessed: CPU builds and old drivers are named, `cuda` fails at once, cards are shared."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from abdoseg import device as D
from conftest import REPO

FAKE_SMI = """#!/bin/sh
echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)"
"""


@pytest.fixture
def fake_gpu(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that lists one H100, and no CUDA_VISIBLE_DEVICES: a machine with a GPU."""
    exe = tmp_path / "bin" / "nvidia-smi"
    exe.parent.mkdir()
    exe.write_text(FAKE_SMI)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_visible_cards_follow_cuda_visible_devices_then_nvidia_smi(fake_gpu, monkeypatch):
    assert D.nvidia_smi_gpus() == [("NVIDIA H100 80GB HBM3", "GPU-11111111-2222-3333-4444-555555555555")]
    assert D.visible_cards() == ["GPU-11111111-2222-3333-4444-555555555555"]
    for value, cards in [("0,1", ["0", "1"]), ("", []), ("-1", []), ("2,-1,3", ["2"])]:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
        assert D.visible_cards() == cards, value
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not D.uses_gpu("auto") and D.uses_gpu("cuda") and not D.uses_gpu("cpu") and D.gpu_job_slots() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert D.uses_gpu("auto") and D.gpu_job_slots() == 3


def test_a_cpu_build_on_a_gpu_machine_is_named(fake_gpu, monkeypatch, capsys):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert D.pick_device("auto") == torch.device("cpu")
    warning = capsys.readouterr().err
    assert "abdoseg: warning: nvidia-smi lists 1 GPU(s) (NVIDIA H100 80GB HBM3) but torch cannot use them" in warning
    assert f"torch {torch.__version__} is a CPU build" in warning
    with pytest.raises(D.DeviceError, match=r"device 'cuda' asked, but CUDA is not usable: torch .* is a CPU build"):
        D.pick_device("cuda")
    line = D.describe(torch.device("cpu"), "auto")
    assert line.startswith("device cpu (asked auto)") and "CUDA none (CPU build)" in line and "nvidia-smi lists NVIDIA H100" in line


def test_a_driver_too_old_for_the_wheel_is_named(fake_gpu, monkeypatch):
    def unavailable():
        warnings.warn("CUDA initialization: The NVIDIA driver on your system is too old (found version 11040).\nPlease update")
        return False

    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", unavailable)
    with pytest.raises(D.DeviceError, match=r"built for CUDA 13.0\) cannot use the GPU: CUDA initialization: The NVIDIA driver "
                                            r"on your system is too old \(found version 11040\)\.$"):
        D.pick_device("cuda")


def test_no_gpu_anywhere_is_quiet(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    monkeypatch.setattr(torch.version, "cuda", None)
    assert D.pick_device("auto") == torch.device("cpu") and capsys.readouterr().err == ""
    assert D.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(D.DeviceError, match="expected auto, cpu, cuda or cuda:N"):
        D.pick_device("gpu")


def test_cli_predict_with_cuda_asked_and_no_cuda_fails_in_one_line(tmp_path):
    from abdoseg import nifti

    image = tmp_path / "ct.nii.gz"
    nifti.save(np.zeros((8, 8, 8), np.int16), np.eye(4), image)
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO / "src")}  # every card hidden
    run = subprocess.run([sys.executable, "-m", "abdoseg.cli", "predict", str(image), "-o", str(tmp_path / "seg.nii.gz"),
                          "--model", str(tmp_path / "absent.pt"), "--device", "cuda", "--threads", "1"],
                         capture_output=True, text=True, env=env)
    assert run.returncode != 0 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("abdoseg: device 'cuda' asked, but CUDA is not usable: ")


CLAIM = """
import sys
from abdoseg.device import claim_card
print(claim_card(sys.argv[1], poll_s=0.05), flush=True)
sys.stdin.readline()  # hold the card until told to finish
"""


def test_each_job_claims_its_own_card_and_waits_when_all_are_held(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": "0,1", "PYTHONPATH": str(REPO / "src")}

    def start():
        return subprocess.Popen([sys.executable, "-c", CLAIM, str(tmp_path / "locks")], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    a, b = start(), start()
    card_a, card_b = a.stdout.readline().strip(), b.stdout.readline().strip()
    assert {card_a, card_b} == {"0", "1"}
    c = start()
    assert c.stderr.readline().startswith("waiting for a free GPU: all 2 visible cards are held")
    a.stdin.write("\n")
    a.stdin.flush()
    assert a.wait(60) == 0
    assert c.stdout.readline().strip() == card_a  # the card that a released
    for p in (b, c):
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.wait(60) == 0


def test_training_autocast_is_float16_on_cuda_and_bf16_on_the_cpu_only_when_asked(monkeypatch):
    """CUDA trains in float16 autocast whatever train.cpu_bf16 says; the CPU in bfloat16 with it, else in float32,
    and a CPU without native bf16 is warned that the emulation is slow."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert D.training_autocast(cuda, True) is D.training_autocast(cuda, False) is torch.float16
    assert D.training_autocast(cpu, False) is None
    monkeypatch.setattr(D, "cpu_has_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert D.training_autocast(cpu, True) is torch.bfloat16
    monkeypatch.setattr(D, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert D.training_autocast(cpu, True) is torch.bfloat16
